"""Batch progress in the app: a run another process writes (progress.json), and the monitor's own
run (evaluating, cancel, 80 columns)."""

from __future__ import annotations

import pytest

import os
import time

from fakes import FakeEngine, make_run, metrics_row, screen_text, settle, wait_for
from test_monitor import _start  # start the preselected run from the launch screen

from damtui import events
from damtui.store import runs
from damtui.store.progress import EVALUATING, TRAIN, Progress
from damtui.records import EpochRow
from damtui.tui import messages as msg
from damtui.tui import session as ss
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets.progress_line import ProgressLine, progress_text


def _progress(epoch: int, batch: int, phase: str = TRAIN) -> Progress:
    return Progress(epoch, 5, batch, 20, phase, 850.0, batch * 1.5, 400, time.time())


async def test_a_run_written_by_another_process_shows_batch_progress(make_app, runs_dir):
    path = make_run(runs_dir, "headless", epochs_done=1, state=runs.RUNNING, pid=os.getpid(), epochs=5)
    writer = runs.RunWriter(path)  # the "other process": only its files reach the app
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(RunViewScreen(path))
        await wait_for(pilot, lambda: "● following live" in screen_text(app))
        assert "batch" not in screen_text(app)  # no progress.json yet: no line
        writer.write_progress(_progress(2, 7), force=True)
        await wait_for(pilot, lambda: "ep 2/5 batch 7/20  850 img/s  ETA" in screen_text(app))
        assert "· run " in screen_text(app)
        writer.write_progress(_progress(2, 20, EVALUATING), force=True)
        await wait_for(pilot, lambda: "ep 2/5 batch 20/20  evaluating…  ETA" in screen_text(app))
        writer.append_metrics(metrics_row(2))
        await wait_for(pilot, lambda: "epoch 2 done; epoch 3 starting…" in screen_text(app))
        assert "evaluating" not in screen_text(app)
        writer.write_status(runs.FINISHED, 2, 2)
        await wait_for(pilot, lambda: "following" not in screen_text(app))
        assert not app.screen.query_one("#run-progress", ProgressLine).has_class("-shown")


def test_progress_text_states():
    rows = [metrics_row(1)]
    p = _progress(2, 10)
    assert progress_text(p, rows, ss.CANCELLED) == "■ cancelled in ep 2/5 batch 10/20"
    assert progress_text(p, rows + [metrics_row(2)], ss.CANCELLED) == "■ cancelled after epoch 2"
    assert progress_text(p, rows, ss.FAILED).startswith("✗ failed in ep 2/5")
    assert progress_text(None, [], ss.STARTING) == "loading data…"
    big = Progress(100, 200, 123, 1234, TRAIN, 12345.0, 60.0, 40000)
    assert len(progress_text(big, [], ss.RUNNING)) <= 65  # what 80 columns leave beside the bar
    last = Progress(5, 5, 20, 20, EVALUATING, 850.0, 30.0, 400)
    assert "· run" not in progress_text(last, [EpochRow.from_json({"epoch": 4, "train_loss": 0.1})], ss.RUNNING)


@pytest.mark.slow
async def test_monitor_line_fits_80_columns_and_shows_the_cancel(make_app):
    engine = FakeEngine(batches=200, hold_at=(2, 7))
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: len(app.session.rows) >= 1 and engine.holding.is_set())
        await wait_for(pilot, lambda: "batch 7/200" in screen_text(app))
        line = next(l for l in screen_text(app).splitlines() if "batch 7/200" in l)
        assert line.rstrip().endswith(f"· run {line.rsplit('· run ', 1)[1].strip()}")
        text = app.screen.query_one("#progress-text").content
        assert str(text) in line  # the whole text is on screen, not cut at the right edge
        app.cancel_training()
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert "■ cancelled in ep 2/" in screen_text(app) and "ETA" not in screen_text(app)
        assert app.screen.query_one("#batch-progress").has_class("-stopped")


async def test_monitor_stops_saying_evaluating_once_the_row_is_there(make_app):
    """It said "evaluating…" until the next epoch's first batch, 10-20 s after the row appeared."""
    engine = FakeEngine(batches=4, hold_at=(1, 4))  # the epoch's last batch: evaluation follows
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: engine.holding.is_set())
        await wait_for(pilot, lambda: "evaluating…" in screen_text(app))
        s = app.session
        row = metrics_row(1)
        app.post_message(msg.EngineEvent(s.number, events.EpochMetrics(1, row, 1, True)))
        await wait_for(pilot, lambda: "epoch 1 done; epoch 2 starting…" in screen_text(app))
        assert "evaluating" not in screen_text(app)
        engine.release()
        await wait_for(pilot, lambda: app.session.done)


@pytest.mark.slow
async def test_80_columns_finish_message_and_footers(make_app, runs_dir):
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=3)
    app = make_app(FakeEngine(batches=2))
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.done and "✓ finished:" in screen_text(app))
        lines = screen_text(app).splitlines()
        first = next(i for i, line in enumerate(lines) if "✓ finished: val AUC" in line)
        assert lines[first].rstrip().endswith("at pretrain epoch 3")  # not wrapped mid-sentence
        assert lines[first + 1].strip().startswith("test AUC")
        assert lines[-1].rstrip().endswith("? Help") or "? Help" in lines[-1]
        await pilot.press("r")
        await wait_for(pilot, lambda: "aaaaaa" in screen_text(app) or "synthetic2d" in screen_text(app))
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "? Help" in footer and "…" not in footer  # the runs keys and Help are whole
