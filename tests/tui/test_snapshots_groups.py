"""SVG snapshots of the results screen and the runs list with seed groups folded (fixed data:
run folders with fixed names and times, the runs dir shown as the relative path `runs`).
Regenerate after an intended change with `--snapshot-update` and look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import settle, wait_for
from test_groups_screens import two_stage_runs

from damtui.tui.screens.results import ResultsScreen

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def group_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    two_stage_runs(root)
    return root


def _app(make_app, root: Path):
    app = make_app()
    app.runs_dir = root
    return app


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_results(snap_compare, make_app, group_runs, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("L")
        screen = pilot.app.screen
        assert isinstance(screen, ResultsScreen)
        await wait_for(pilot, lambda: screen.board and screen.gains is not None)
        await pilot.pause()

    assert snap_compare(_app(make_app, group_runs), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_runs_grouped(snap_compare, make_app, group_runs, size):
    async def run_before(pilot):
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: pilot.app.screen.loaded)
        await pilot.press("g", "down", "enter")  # fold the seeds, open the fine-tune group
        await pilot.pause()

    assert snap_compare(_app(make_app, group_runs), terminal_size=size, run_before=run_before)
