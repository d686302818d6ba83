"""SVG snapshots of the chart screens (run view, its DAM health page, compare with the MedMNIST v2
benchmark lines) at 80x24 and 160x48. Regenerate with `--snapshot-update` and look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import STARTED, make_run, settle, wait_for
from test_charts import health_run
from textual.widgets import DataTable, Select

from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets.charts import MetricCharts

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def chart_runs(tmp_path, monkeypatch) -> Path:
    """Shown as `runs`: a breastmnist fine-tune with the health keys and two older pretrains."""
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    make_run(root, "20240601-120000-breastmnist-pretrain-aaaaaa", epochs_done=6, dataset="breastmnist")
    make_run(root, "20240601-130000-breastmnist-pretrain-bbbbbb", epochs_done=3, dataset="breastmnist",
             seed=1, wobble=0.01, epochs=50, started=STARTED + 3600)
    health_run(root, "20240601-140000-breastmnist-finetune-cccccc", epochs=5, dataset="breastmnist",
               started=STARTED + 7200)
    return root


def _app(make_app, root):
    app = make_app()
    app.runs_dir = root
    return app


async def _runs(pilot):
    await settle(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: pilot.app.screen.loaded)
    await pilot.pause()


def _run_view(*keys: str):
    async def run_before(pilot):
        await _runs(pilot)
        pilot.app.screen.query_one("#runs-table", DataTable).move_cursor(row=0)  # cccccc, the newest
        await pilot.press("enter")
        view = pilot.app.screen
        assert isinstance(view, RunViewScreen)
        await wait_for(pilot, lambda: view.record is not None)
        await wait_for(pilot, lambda: view.record.info.stage != "finetune" or view.gain_text)  # read in a worker
        await pilot.press(*keys)
        await wait_for(pilot, lambda: not view.query_one(MetricCharts).waiting)
        await pilot.pause()

    return run_before


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_run_view_charts_with_benchmark_lines(snap_compare, make_app, chart_runs, size):
    assert snap_compare(_app(make_app, chart_runs), terminal_size=size, run_before=_run_view())


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_run_view_dam_health(snap_compare, make_app, chart_runs, size):
    # narrow: the health chart alone; wide: the second page (lr, DAM health, AUCM)
    assert snap_compare(_app(make_app, chart_runs), terminal_size=size, run_before=_run_view("5"))


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_compare_test_auc_with_benchmark_lines(snap_compare, make_app, chart_runs, size):
    async def run_before(pilot):
        await _runs(pilot)
        table = pilot.app.screen.query_one("#runs-table", DataTable)
        for row in (1, 2):  # bbbbbb (3 of 50 epochs) and aaaaaa
            table.move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("c")
        screen = pilot.app.screen
        assert isinstance(screen, CompareScreen)
        screen.query_one("#metric", Select).value = "test_auc"
        await pilot.pause()

    assert snap_compare(_app(make_app, chart_runs), terminal_size=size, run_before=run_before)
