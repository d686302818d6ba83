"""Monitor screen: live updates from the worker, cancel with confirmation, errors, quitting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import FakeEngine, read_json, screen_text, settle, wait_for
from textual.widgets import DataTable, ProgressBar

from damtui.store import runs
from damtui.tui.screens.dialogs import ConfirmScreen, QuitScreen
from damtui.tui.screens.help import HelpScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.widgets.epoch_table import EpochTable


async def _start(pilot) -> None:
    await settle(pilot)
    pilot.app.screen.query_one("#datasets").focus()
    await pilot.press("S")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen))


@pytest.mark.slow
async def test_monitor_follows_the_engine(make_app):
    engine = FakeEngine(batches=4, hold_at=(3, 2))
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: engine.holding.is_set())
        await wait_for(
            pilot,
            lambda: (
                app.session.progress is not None
                and app.session.progress.epoch == 3
                and app.session.progress.batch == 2
            ),
        )
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(EpochTable)
        assert table.row_count == 2
        assert str(table.get_row("2")[0]).strip() == "2*"  # best val epoch so far
        bar = screen.query_one(ProgressBar)
        assert (bar.total, bar.progress) == (4, 2)
        text = screen_text(app)
        assert "▶ running  synthetic2d pretrain" in text
        assert "epoch 3/4" in text and "best val AUC 0.7800 @ ep 2" in text
        assert "batch 2/4" in text and "img/s" in text and "ETA" in text
        engine.release()
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert table.row_count == 4
        assert str(table.get_row("3")[0]).strip() == "3*"
        text = screen_text(app)
        assert "✓ finished: val AUC 0.8300 at pretrain epoch 3" in text
        assert app.session.state == "finished"


async def test_cancel_asks_then_stops_within_one_batch(make_app, runs_dir):
    engine = FakeEngine(batches=200, hold_at=(2, 7))  # waits there until released or stopped
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: len(app.session.rows) >= 1 and engine.holding.is_set())
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # keep training
        assert isinstance(app.screen, MonitorScreen)
        assert not app.session.stop_requested
        await pilot.press("X")
        await pilot.press("y")
        assert app.session.stop_requested
        await wait_for(pilot, lambda: app.session.done)
        assert engine.stopped_at == (2, 8)  # the batch after the one it was in
        assert app.session.state == "cancelled"
        await pilot.pause()
        assert "■ cancelled after epoch" in screen_text(app)
        status = read_json(Path(app.session.run_dir) / runs.STATUS)
        assert status["state"] == runs.CANCELLED


@pytest.mark.slow
async def test_engine_error_is_shown_and_app_keeps_running(make_app):
    engine = FakeEngine(raise_error="no preset 'x' for synthetic2d pretrain; choose one of: demo")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert "✗ run failed: no preset 'x' for synthetic2d" in screen_text(app)
        await pilot.press("r")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("m")
        assert isinstance(app.screen, MonitorScreen)
        # a new run can start after a failure
        await pilot.press("escape")
        engine.raise_error = None
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: app.session.number == 2 and app.session.done)
        assert app.session.state == "finished"


@pytest.mark.slow
async def test_unexpected_engine_exception_is_contained(make_app):
    def broken(config, emit, stop_event, **kwargs):
        raise ZeroDivisionError("division by zero")

    app = make_app(broken)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert "✗ run failed: ZeroDivisionError: division by zero" in screen_text(app)
        assert "Traceback" in app.session.detail


async def test_run_failed_event_is_shown(make_app):
    engine = FakeEngine(fail_at=2)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert "✗ run failed: loss became NaN at epoch 2" in screen_text(app)
        assert app.screen.query_one(EpochTable).row_count == 1


@pytest.mark.slow
async def test_only_one_run_at_a_time_and_monitor_reopens(make_app):
    engine = FakeEngine(batches=4, hold_at=(1, 1))
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: engine.holding.is_set())
        await pilot.press("escape")  # back to launch; training continues
        assert not isinstance(app.screen, MonitorScreen)
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await pilot.pause()
        assert app.session.number == 1 and len(engine.calls) == 1
        await pilot.press("m")
        assert isinstance(app.screen, MonitorScreen)
        engine.release()
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert app.screen.query_one(DataTable).row_count == 4


@pytest.mark.slow
async def test_keys_switch_screens_while_training_floods_progress(make_app):
    """From key to the first frame that shows the answer, with progress events streaming in."""
    # like a real engine: compute releases the GIL (sleep), several progress events per batch
    engine = FakeEngine(batches=1_000_000, batch_delay=0.002, spam=5)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.progress is not None)
        first = app.session.progress.batch
        frames: list[tuple[float, type]] = []
        display = app._display

        def record(screen, renderable):
            if renderable is not None:
                frames.append((time.monotonic(), type(screen)))
            return display(screen, renderable)

        app._display = record  # called with each frame (a headless app then skips the output)
        for key, expect in [("question_mark", HelpScreen), ("escape", MonitorScreen)] * 4:
            frames.clear()
            app.simulate_key(key)
            await wait_for(pilot, lambda: any(kind is expect for _, kind in frames), step=0.002)
        assert app.session.progress.batch > first  # training went on meanwhile, and the monitor saw it
        # how fast the switch is: benchmarks/tui_overhead.py, not a wall-clock assertion here
        await pilot.press("ctrl+q", "ctrl+q")  # the second: the dialog's default, leave it (a thread: stops)
    assert engine.returned.wait(5.0)


@pytest.mark.slow
async def test_ctrl_q_asks_and_stop_cancels_the_run(make_app, runs_dir):
    engine = FakeEngine(batches=1_000_000, batch_delay=0.005)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.progress is not None)
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")  # stay
        assert isinstance(app.screen, MonitorScreen) and app.is_running
        await pilot.press("ctrl+q")
        await pilot.press("s")
    assert app.quit_choice == "stop" and app.session.stop_requested
    assert engine.returned.wait(5.0)
    run = runs.list_runs(runs_dir)[0][0]
    assert run.status == runs.CANCELLED


@pytest.mark.slow
async def test_ctrl_q_without_a_run_training_quits_at_once(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running
