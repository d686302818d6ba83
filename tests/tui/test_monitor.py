"""Monitor screen: live updates from the worker, cancel with confirmation, errors, quitting."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import FakeEngine, read_json, screen_text, settle, wait_for
from textual.widgets import DataTable, ProgressBar

from damtui import events
from damtui.store import runs
from damtui.tui import messages as msg
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.screens.help import HelpScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.widgets.epoch_table import EpochTable

HERE = Path(__file__).parent


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
        assert not app.session.stop_event.is_set()
        await pilot.press("X")
        await pilot.press("y")
        assert app.session.stop_event.is_set()
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
        assert app.session.progress.batch > 10  # training went on meanwhile
        # how fast the switch is: benchmarks/tui_overhead.py, not a wall-clock assertion here
        await pilot.press("ctrl+q")
    assert engine.returned.wait(2.0)


def test_batch_progress_messages_fold():
    a = msg.BatchProgressEvent(1, events.BatchProgress(1, 1, 10, 0.5, 100.0, 9.0))
    b = msg.BatchProgressEvent(1, events.BatchProgress(1, 2, 10, 0.5, 100.0, 8.0))
    other = msg.EngineEvent(1, events.CheckpointSaved(1, "x", "last"))
    assert a.can_replace(b)
    assert not a.can_replace(other)
    assert not a.can_replace(msg.BatchProgressEvent(2, b.event))  # another session


@pytest.mark.slow
async def test_ctrl_q_stops_the_worker(make_app, runs_dir):
    engine = FakeEngine(batches=1_000_000, batch_delay=0.005)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.progress is not None)
        await pilot.press("ctrl+q")
    assert app.session.stop_event.is_set()
    assert engine.returned.wait(2.0)
    run = runs.list_runs(runs_dir)[0][0]
    assert run.status == runs.CANCELLED


@pytest.mark.slow
def test_process_exits_on_ctrl_q_while_training(tmp_path):
    """The real thing: a process running the app, training, exits on ctrl+q (Textual cannot kill
    a thread: the engine must see the stop event)."""
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(HERE)!r})
        from pathlib import Path
        import damtui.config as config
        config.SHIPPED_PRESETS = Path({str(HERE / "presets")!r})
        from fakes import FakeEngine
        from damtui.tui.app import DamtuiApp

        engine = FakeEngine(batches=10**9, batch_delay=0.02)
        app = DamtuiApp({str(tmp_path / "runs")!r}, {str(tmp_path / "data")!r}, engine=engine,
                        devices=lambda: [("cpu", "cpu")])

        async def auto(pilot):
            while getattr(app.screen, "dataset", None) is None:
                await pilot.pause(0.05)
            app.screen.query_one("#datasets").focus()
            await pilot.press("S")
            # the dataset check imports medmnist (and torch) in a worker thread: a quit during
            # that import waits for it, which is not what this test measures
            while (app.session is None or app.session.progress is None or not app.dataset_flags
                   or len(app.dataset_status) < len(app.dataset_flags)):
                await pilot.pause(0.05)
            print("TRAINING", flush=True)
            global t0
            t0 = time.monotonic()
            app.simulate_key("ctrl+q")

        app.run(headless=True, size=(80, 24), auto_pilot=auto)
        print("EXITED", round(time.monotonic() - t0, 2), engine.stopped_at is not None, flush=True)
    """)
    env = {
        **os.environ,
        "DAMTUI_PRESETS": str(tmp_path / "none"),
        "DAMTUI_DATA": str(tmp_path / "data"),
    }
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert "TRAINING" in out.stdout, out.stderr[-2000:]
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("EXITED")][0]
    _, _seconds, stopped = line.split()
    assert stopped == "True", out.stdout
