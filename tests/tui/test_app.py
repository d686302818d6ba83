"""App-wide: navigation keys, help, command palette entries, footer, quitting, run_app."""

from __future__ import annotations

import pytest

import inspect

from fakes import FakeEngine, screen_text, settle, wait_for

from damtui.tui.app import DamtuiApp, run_app
from damtui.tui.screens.help import HelpScreen
from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.runs import RunsScreen


@pytest.mark.slow
async def test_navigation_keys(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("m")  # no run yet: nothing happens
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("r")
        assert isinstance(app.screen, RunsScreen)
        await pilot.press("n")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "Deep AUC Maximization" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("question_mark")
        assert isinstance(app.screen, LaunchScreen)


async def test_footer_shows_the_keys_that_apply(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footer = screen_text(app).splitlines()[-1]
        assert "S Start" in footer and "^q Quit" in footer and "? Help" in footer
        assert "r Runs" in footer
        assert "n New run" not in footer and "m Monitor" not in footer  # already here / no run
        await pilot.press("r")
        await wait_for(pilot, lambda: "Select" in screen_text(app).splitlines()[-1])
        footer = screen_text(app).splitlines()[-1]
        assert "space Select" in footer and "c Compare" in footer and "r Runs" not in footer


@pytest.mark.slow
async def test_command_palette_entries(make_app):
    engine = FakeEngine(batches=2, hold_at=(1, 1))
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"New run", "Runs", "Compare selected runs", "Help"} <= set(titles)
        assert "Monitor" not in titles
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: engine.holding.is_set())
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Monitor" in titles and "Cancel run" in titles
        # the palette opens and finds an entry by typing
        await pilot.press("ctrl+p")
        await pilot.press(*"runs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("m")
        assert isinstance(app.screen, MonitorScreen)
        engine.release()


async def test_monitor_hides_cancel_once_the_run_ended(make_app):
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: app.session is not None and app.session.done)
        await pilot.pause()
        assert "X Cancel run" not in screen_text(app).splitlines()[-1]
        await pilot.press("X")
        assert isinstance(app.screen, MonitorScreen)


async def test_start_screen_runs(make_app):
    app = make_app(start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RunsScreen)
        assert app.runs_dir.name == "runs"


def test_run_app_signature():
    params = inspect.signature(run_app).parameters
    assert list(params)[:2] == ["runs_dir", "data_root"]
    init = inspect.signature(DamtuiApp.__init__).parameters
    assert {"engine", "devices", "clock", "poll_interval", "start", "export_dir"} <= set(init)


def test_tui_package_import_is_light():
    import subprocess
    import sys

    code = (
        "import sys, damtui.tui.app; print('torch' in sys.modules, 'damtui.train.engine' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_app_starts_without_what_it_does_not_show_first():
    """Issue 26 item 21 (app start 2 s on a busy machine): rich.markdown and pygments (help), the
    comparison and bootstrap code (run formats) and torch load when first needed. (textual-image
    does load at start: it asks the terminal for its cell size before Textual takes it over.)"""
    import subprocess
    import sys

    code = ("import sys, damtui.tui.app; print(sorted(m for m in ('rich.markdown', 'pygments', "
            "'damtui.analysis.compare', 'damtui.analysis.uncertainty', 'torch', 'medmnist') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
