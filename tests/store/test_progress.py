"""The progress record a run's writer leaves for other processes, and the ETA computed from it."""

import json

import pytest

from damtui import events
from damtui.store import progress, runs
from damtui.store.progress import EVALUATING, TRAIN, Progress, epoch_left, run_left
from damtui.records import EpochRow


def row(epoch: int, epoch_s: float, eval_s: float) -> EpochRow:
    return EpochRow.from_json({"epoch": epoch, "train_loss": 0.5, "epoch_s": epoch_s, "eval_s": eval_s})


def p(**over) -> Progress:
    base = dict(epoch=1, epochs=5, batch=10, batches=40, phase=TRAIN, images_per_s=100.0,
                train_elapsed_s=20.0, eval_images=600, updated=1000.0)
    return Progress(**{**base, **over})


def test_record_round_trips_and_rejects_what_is_not_one():
    rec = p()
    assert Progress.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    for bad in ([], {"epoch": 1}, {**rec.to_json(), "batch": "7"}, {**rec.to_json(), "phase": "x"}):
        with pytest.raises(ValueError):
            Progress.from_json(bad)


def test_eta_counts_evaluation_and_gives_a_run_eta_in_epoch_one():
    # 30 batches left at 2 s each; no epoch done yet: evaluation estimated from the speed (600 / 300 img/s)
    assert epoch_left(p(), []) == pytest.approx(60 + 2)
    assert run_left(p(), []) == pytest.approx(62 + 4 * (80 + 2))
    # once epochs are done: their measured evaluation time and their mean length
    done = [row(1, 100.0, 10.0), row(2, 120.0, 14.0)]
    later = p(epoch=3)
    assert epoch_left(later, done) == pytest.approx(60 + 12)
    assert run_left(later, done) == pytest.approx(72 + 2 * 110)
    # read from a file 5 s after it was written: 5 s less to go
    assert epoch_left(later, done, now=1005.0) == pytest.approx(67)
    assert epoch_left(p(batch=0), []) is None


def test_writer_throttles_progress_and_forces_the_last_batch(tmp_path):
    writer = runs.RunWriter(tmp_path)
    writer.write_progress(p(batch=1))
    writer.write_progress(p(batch=2))  # within a second: skipped
    assert runs.read_progress(tmp_path).batch == 1
    writer.write_progress(p(batch=40, phase=EVALUATING), force=True)
    assert runs.read_progress(tmp_path).phase == EVALUATING


def test_reader_shows_none_for_a_missing_or_foreign_file(tmp_path):
    assert runs.read_progress(tmp_path) is None
    (tmp_path / runs.PROGRESS).write_text("{not json")
    assert runs.read_progress(tmp_path) is None


def test_of_event_marks_the_last_batch_as_evaluating():
    ev = events.BatchProgress(2, 40, 40, 0.3, 500.0, 0.0, 12.0)
    rec = progress.of_event(ev, 5, 100)
    assert (rec.phase, rec.epoch, rec.train_elapsed_s, rec.eval_images) == (EVALUATING, 2, 12.0, 100)
    assert progress.of_event(events.BatchProgress(2, 3, 40, 0.3, 500.0, 9.0), 5, 0).phase == TRAIN


@pytest.mark.slow
def test_the_engine_leaves_progress_for_other_processes(tmp_path):
    from support import demo_config, run_stage

    run_stage(demo_config(epochs=1), tmp_path)
    (path,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    rec = runs.read_progress(path)
    assert rec is not None and (rec.epoch, rec.epochs, rec.phase) == (1, 1, EVALUATING)
    assert rec.batch == rec.batches and rec.images_per_s > 0 and rec.eval_images > 0
