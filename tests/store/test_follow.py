"""The run folder as events (damtui.store.follow), what the app's monitor shows of a run that its
own process trains, and the start of such a run (damtui.store.launch)."""

from __future__ import annotations

import json
import time

from damtui import events
from damtui.config import load_preset_file
from damtui.records import EpochRow
from damtui.store import launch, runs
from damtui.store.follow import CRASH_MESSAGE, RunFollower
from damtui.store.progress import Progress
from support import DEAD_PID, demo_config

CONFIG = demo_config(epochs=3).as_dict()


def _row(epoch: int, val: float) -> EpochRow:
    return EpochRow(epoch, train_loss=0.5, val_auc=val, test_auc=val - 0.1)


def test_a_followed_run_reads_as_the_events_of_its_writer(runs_dir):
    since = time.time()
    follower = RunFollower(runs_dir / "run", since=since)
    assert follower.poll() == []  # not created yet
    writer = runs.RunWriter.create(runs_dir, CONFIG, {"device": "cpu (test)"}, name="run")
    (started,) = follower.poll()
    assert isinstance(started, events.RunStarted) and (started.epochs, started.start_epoch) == (3, 0)
    assert started.device == "cpu (test)" and follower.prior == []
    progress = Progress(1, 3, 5, 10, "train", 100.0, 1.0, 40, time.time())
    writer.write_progress(progress, force=True)
    assert follower.poll() == [progress]
    for epoch, val in ((1, 0.7), (2, 0.6)):
        writer.append_metrics(_row(epoch, val))
    assert [(e.epoch, e.best_epoch, e.is_best) for e in follower.poll()] == [(1, 1, True), (2, 1, False)]
    writer.append_metrics(_row(3, 0.8))
    summary = runs.summary_of(runs.load_run(writer.path))
    writer.write_summary(summary)
    writer.write_status(runs.FINISHED, 3, 3)
    metrics, finished = follower.poll()
    assert (metrics.epoch, metrics.is_best) == (3, True)  # the last row comes before the ending
    assert isinstance(finished, events.RunFinished) and finished.summary == runs.read_summary(writer.path)
    assert follower.ended and follower.poll() == []


def test_a_followed_run_costs_its_new_rows_not_its_history(runs_dir, monkeypatch):
    """A run followed for 10,000 epochs is read one row per poll (the whole file each time
    grew with the run: issue 28, item 4); a file rewritten shorter is read again from its start."""
    from damtui.store import files

    writer = runs.RunWriter.create(runs_dir, CONFIG, {}, name="run")
    for epoch in (1, 2):
        writer.append_metrics(_row(epoch, 0.5 + epoch / 10))
    follower = RunFollower(runs_dir / "run", since=None)
    parsed: list[int] = []
    real = files._rows_of
    monkeypatch.setattr(files, "_rows_of", lambda data: parsed.append(len(data)) or real(data))
    follower.poll()
    metrics = runs_dir / "run" / runs.METRICS
    assert [r.epoch for r in follower.rows] == [1, 2] and parsed == [metrics.stat().st_size]
    size = metrics.stat().st_size
    writer.append_metrics(_row(3, 0.9))
    parsed.clear()
    (new,) = follower.poll()
    assert parsed == [metrics.stat().st_size - size] and (new.epoch, new.best_epoch, new.is_best) == (3, 3, True)
    first = metrics.read_bytes().splitlines(keepends=True)[0]
    runs.atomic_write_bytes(metrics, first + (json.dumps(_row(2, 0.95).to_json()) + "\n").encode())
    writer.append_metrics(_row(3, 0.9))
    writer.append_metrics(_row(4, 0.99))
    parsed.clear()
    (four,) = follower.poll()  # the rewrite is read whole: epoch 4 follows the new 2 and 3
    assert parsed == [metrics.stat().st_size] and (four.epoch, four.best_epoch) == (4, 4)


def test_a_resume_is_followed_from_its_reopening_not_by_the_old_ending(runs_dir):
    writer = runs.RunWriter.create(runs_dir, CONFIG, {}, name="run")
    writer.append_metrics(_row(1, 0.7))
    writer.write_status(runs.CANCELLED, 1, 3, "cancelled")
    writer.close()
    follower = RunFollower(runs_dir / "run", since=time.time())
    assert follower.poll() == []  # the cancelled status is the earlier attempt's, not this one's
    runs.RunWriter.reopen(runs_dir / "run", 3, 1)
    (started,) = follower.poll()
    assert started.start_epoch == 1 and [r.epoch for r in follower.prior] == [1]


def test_a_new_run_first_seen_late_started_at_epoch_0(runs_dir):
    """A busy app may first read a new run after some epochs; they were trained by this attempt, not
    before a resume (the monitor's elapsed counted them twice: 'elapsed 0:12' for a run of 0 s)."""
    writer = runs.RunWriter.create(runs_dir, CONFIG, {}, name="run")
    for epoch in (1, 2):
        writer.append_metrics(_row(epoch, 0.7))
    writer.write_status(runs.RUNNING, 2, 3)
    (started,) = RunFollower(runs_dir / "run").poll()
    assert started.start_epoch == 0 and len(RunFollower(runs_dir / "run").poll()) == 1


def test_a_writer_that_died_reads_as_a_failure(runs_dir):
    writer = runs.RunWriter.create(runs_dir, CONFIG, {}, name="run")
    follower = RunFollower(writer.path)
    assert [type(e) for e in follower.poll()] == [events.RunStarted]
    status = runs.read_json(writer.path / runs.STATUS)
    runs.atomic_write_json(writer.path / runs.STATUS, {**status, "pid": DEAD_PID})
    (failed,) = follower.poll()
    assert isinstance(failed, events.RunFailed) and failed.message == CRASH_MESSAGE


def test_a_run_being_started_is_not_listed_and_a_failed_start_leaves_nothing(runs_dir):
    run = runs_dir / "run"
    preset, out, start = launch.prepare(run, demo_config())
    out.write(b"damtui: error: synthetic2d is missing\n")
    out.close()
    assert runs.list_runs(runs_dir) == ([], [])  # loading its data: not a damaged entry
    assert load_preset_file(preset) == demo_config()  # the config the process trains
    assert launch.failure(run, start) == ("synthetic2d is missing", "")
    launch.forget_unstarted(run)
    assert not run.exists()
