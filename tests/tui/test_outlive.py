"""A run started in the app is its own process (issue 25 item 1): it outlives ctrl+q -> leave it
running, a SIGHUP and a SIGKILL of the app, an app opened later follows it live, and the monitor
shows a followed run exactly as the run's own events say."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import FAKE_TRAINER, drawn, screen_text, settle, wait_for
from support import train_elsewhere
from textual.widgets import DataTable

from damtui import events
from damtui.config import apply_overrides, find_preset
from damtui.store import launch, runs
from damtui.store.progress import of_event
from damtui.tui import session as ss
from damtui.tui.screens.dialogs import QuitScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.widgets.charts import MetricCharts

HERE = Path(__file__).parent


async def _start(pilot) -> None:
    await settle(pilot)
    pilot.app.screen.query_one("#datasets").focus()
    await pilot.press("S")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen))


def _eventually(predicate, timeout: float = 60.0) -> None:
    """Wait (outside an app) until `predicate()` holds; a hang guard, not a speed test."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def _status(run_dir: Path) -> str:
    return runs.load_run(run_dir).info.status


def _held_run(monkeypatch, tmp_path) -> Path:
    """Fake training processes hold at epoch 2, batch 1 until the returned file exists."""
    release = tmp_path / "release"
    monkeypatch.setenv("FAKE_TRAIN", f"10,0.01,2:1:{release}")
    return release


@pytest.mark.slow
async def test_ctrl_q_leave_it_running_and_the_process_trains_on(make_app, monkeypatch, tmp_path):
    release = _held_run(monkeypatch, tmp_path)
    app = make_app(trainer=FAKE_TRAINER)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.progress is not None and app.session.progress.epoch == 2)
        await drawn(pilot, "ep 2/4 batch 1/10")
        await pilot.press("ctrl+q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("enter")  # the default: leave it running
    assert app.quit_choice == "leave"
    run_dir = Path(app.session.run_dir)
    child = launch.read(run_dir)
    assert child is not None and runs.pid_alive(child.pid) and _status(run_dir) == runs.RUNNING
    release.touch()
    _eventually(lambda: _status(run_dir) == runs.FINISHED)
    assert runs.load_run(run_dir).info.epochs_done == 4


@pytest.mark.slow
async def test_ctrl_q_stop_it_cancels_the_run_resumably(make_app, monkeypatch, tmp_path):
    _held_run(monkeypatch, tmp_path)
    app = make_app(trainer=FAKE_TRAINER)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.progress is not None and app.session.progress.epoch == 2)
        await pilot.press("ctrl+q", "s")
    assert app.quit_choice == "stop"
    run_dir = Path(app.session.run_dir)
    _eventually(lambda: _status(run_dir) == runs.CANCELLED)  # as Ctrl+C: after the batch, marked cancelled
    info = runs.load_run(run_dir).info
    assert info.epochs_done == 1
    assert "stopping after this batch" in "\n".join(launch.output_lines(run_dir))  # the CLI's Ctrl+C handler
    from damtui.train.resume import resume_config

    assert resume_config(run_dir).epochs == 4  # what R / --resume continues with


@pytest.mark.slow
async def test_a_process_that_fails_before_its_run_exists_shows_its_error(make_app, runs_dir):
    config = find_preset("demo", "synthetic2d", "finetune")
    app = make_app(trainer=FAKE_TRAINER)
    async with app.run_test(size=(80, 24)) as pilot:
        app.start_training(config, from_run=runs_dir / "no-such-pretrain")
        await wait_for(pilot, lambda: app.session.done)
        await drawn(pilot, "✗ run failed: no run")
        assert app.session.state == ss.FAILED and "no-such-pretrain" in app.session.message
    assert list(runs_dir.iterdir()) == []  # nothing left behind by the start


def _app_process(runs_dir: Path, data_root: Path, mode: str, env: dict) -> tuple[subprocess.Popen, str]:
    """`damtui` in a process of its own (app_process.py) and its first line (TRAINING/FOLLOWING)."""
    proc = subprocess.Popen([sys.executable, str(HERE / "app_process.py"), str(runs_dir), str(data_root), mode],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while True:
        line = proc.stdout.readline()
        if line.startswith(("TRAINING", "FOLLOWING")):
            return proc, line.strip()
        assert line and time.monotonic() < deadline, f"the app process said: {line!r}{proc.stdout.read()}"


@pytest.mark.slow
async def test_a_run_outlives_sighup_and_sigkill_of_the_app_and_a_new_app_follows_it(
        make_app, runs_dir, monkeypatch, tmp_path):
    release = _held_run(monkeypatch, tmp_path)
    env = {**os.environ, "DAMTUI_PRESETS": str(tmp_path / "none")}
    app1, line = _app_process(runs_dir, tmp_path / "data", "start", env)
    run_dir = runs_dir / line.split()[1]
    child = launch.read(run_dir)
    app1.send_signal(signal.SIGHUP)  # the SSH connection dropped
    out, _ = app1.communicate(timeout=60)
    assert "EXITED" in out  # the app closed...
    assert runs.pid_alive(child.pid) and _status(run_dir) == runs.RUNNING  # ...the run trains on

    app2, line = _app_process(runs_dir, tmp_path / "data", "follow", env)
    assert line == f"FOLLOWING {run_dir.name} 2"  # found, live, where it is
    app2.kill()
    app2.wait(timeout=60)
    assert runs.pid_alive(child.pid) and _status(run_dir) == runs.RUNNING

    app = make_app(trainer=FAKE_TRAINER)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.session is not None and isinstance(app.screen, MonitorScreen))
        await drawn(pilot, "▶ running synthetic2d pretrain")
        assert app.session.run_id == run_dir.name and [r.epoch for r in app.session.rows] == [1]
        release.touch()
        await wait_for(pilot, lambda: app.session.done)
        await drawn(pilot, "✓ finished")
        assert app.screen.query_one(DataTable).row_count == 4
    _eventually(lambda: not runs.pid_alive(child.pid))


@pytest.mark.slow
async def test_the_monitor_shows_a_followed_run_as_its_own_events_say(make_app, runs_dir):
    """The real engine trains (in a thread, writing its folder); the monitor follows the files. A
    session built from the engine's events (what the monitor showed when the app trained in its
    own process) holds the same rows, best epoch, progress and ending, and draws the same screen."""
    from damtui.train.engine import train

    seen: list = []

    def recording(config, emit, stop, **kw):
        return train(config, lambda ev: (seen.append(ev), emit(ev)), stop, **kw)

    config = apply_overrides(find_preset("demo", "synthetic2d", "pretrain"), {"epochs": 2, "width": 2})
    app = make_app(recording)
    async with app.run_test(size=(100, 34)) as pilot:
        app.start_training(config, device="cpu")
        await wait_for(pilot, lambda: app.session.done, timeout=300)
        followed = app.session
        started = next(ev for ev in seen if isinstance(ev, events.RunStarted))
        ref = ss.Session(followed.number, config, "cpu", started_at=followed.started_at, run_dir=followed.run_dir)
        for ev in seen:
            if isinstance(ev, events.BatchProgress):
                ev = of_event(ev, started.epochs, started.sizes["val"] + started.sizes["test"])
            ref.apply(ev, followed.ended_at)
        ref.finish_following(followed.ended_at)
        assert followed.state == ref.state == ss.FINISHED
        assert followed.rows == ref.rows and len(ref.rows) == 2
        assert (followed.best_epoch, followed.epochs, followed.device) == (ref.best_epoch, ref.epochs, ref.device)
        assert followed.summary == ref.summary
        assert dataclasses.replace(followed.progress, updated=0.0) == ref.progress

        async def drawn_from(session) -> str:
            app.session = session
            app.session_signal.publish("all")
            await pilot.pause()
            await wait_for(pilot, lambda: not app.screen.query_one(MetricCharts).waiting)
            await pilot.pause()
            return screen_text(app)

        assert await drawn_from(followed) == await drawn_from(ref)


@pytest.mark.slow
async def test_x_on_the_run_page_stops_a_run_another_process_trains(make_app, runs_dir, tmp_path):
    from damtui.tui.screens.dialogs import ConfirmScreen
    from damtui.tui.screens.run_view import RunViewScreen

    proc = train_elsewhere(runs_dir, "elsewhere", tmp_path)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("enter")
        assert isinstance(app.screen, RunViewScreen)
        await drawn(pilot, "● following live")
        await drawn(pilot, "X Stop run")
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen) and str(proc.pid) in screen_text(app)
        await pilot.press("y")
        await drawn(pilot, "■ cancelled")
    assert proc.wait(timeout=60) == 130
    assert runs.load_run(runs_dir / "elsewhere").info.status == runs.CANCELLED
