"""SVG snapshots of the main screens with fixed data (pytest-textual-snapshot).

Regenerate after an intended change with `python -m pytest tests/tui/test_snapshots.py
--snapshot-update` and look at the SVGs in tests/tui/__snapshots__/ before committing them.
Everything shown is fixed: presets from tests/tui/presets, fake devices, a frozen clock, UTC,
run folders with fixed names and times, and the runs dir given as the relative path `runs`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import STARTED, FakeEngine, make_run, screen_text, settle, wait_for
from textual.widgets import DataTable

from damtui.store import runs
from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets.charts import MetricCharts

DEAD_PID = 99_999_999


@pytest.fixture
def fixed_runs(tmp_path, monkeypatch) -> Path:
    """A runs dir shown as `runs`: finished, cancelled, crashed, failed and running runs."""
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    make_run(
        root,
        "20240601-120000-breastmnist-pretrain-aaaaaa",
        epochs_done=6,
        dataset="breastmnist",
        preset="breastmnist-pretrain-report",
    )
    make_run(
        root,
        "20240601-130000-breastmnist-pretrain-bbbbbb",
        epochs_done=6,
        dataset="breastmnist",
        preset="breastmnist-pretrain-report",
        seed=1,
        wobble=0.01,
        started=STARTED + 3600,
    )
    make_run(
        root,
        "20240601-140000-breastmnist-finetune-cccccc",
        epochs_done=3,
        stage="finetune",
        dataset="breastmnist",
        state=runs.CANCELLED,
        started=STARTED + 7200,
    )
    make_run(
        root,
        "20240601-150000-synthetic2d-pretrain-dddddd",
        epochs_done=2,
        state=runs.RUNNING,
        started=STARTED + 10800,
        pid=DEAD_PID,
    )
    make_run(
        root,
        "20240601-160000-synthetic2d-pretrain-eeeeee",
        epochs_done=4,
        lr=0.01,
        state=runs.FAILED,
        started=STARTED + 14400,
        wobble=-0.04,
    )
    (root / "notes.txt").write_text("not a run")
    return root


def _app(make_app, engine=None, runs_dir=None, **kw):
    app = make_app(engine, **kw)
    if runs_dir is not None:
        app.runs_dir = runs_dir
    return app


@pytest.mark.slow
def test_launch_80x24(snap_compare, make_app, tmp_path, monkeypatch):
    async def ready(pilot):
        await settle(pilot)

    monkeypatch.chdir(tmp_path)  # the data root is shown: as the relative path `data`
    Path("data").mkdir()
    app = _app(make_app)
    app.data_root = Path("data")
    assert snap_compare(app, terminal_size=(80, 24), run_before=ready)


def _monitor_before(engine):
    async def run_before(pilot):
        await settle(pilot)
        pilot.app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: engine.holding.is_set())
        await wait_for(
            pilot,
            lambda: (
                (p := pilot.app.session.progress) is not None
                and (p.epoch, p.batch) == (4, 2)
                and len(pilot.app.session.rows) == 3
            ),
        )
        await wait_for(pilot, lambda: not pilot.app.screen.query_one(MetricCharts).waiting)  # throttled redraw
        await pilot.pause()

    return run_before


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_monitor(snap_compare, make_app, size):
    engine = FakeEngine(batches=4, hold_at=(4, 2))
    assert snap_compare(
        _app(make_app, engine), terminal_size=size, run_before=_monitor_before(engine)
    )


@pytest.mark.slow
def test_monitor_no_color_80x24(snap_compare, make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    engine = FakeEngine(batches=4, hold_at=(4, 2))
    assert snap_compare(
        _app(make_app, engine), terminal_size=(80, 24), run_before=_monitor_before(engine)
    )


async def _open_runs(pilot):
    await settle(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: pilot.app.screen.loaded)
    await pilot.pause()


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_runs(snap_compare, make_app, fixed_runs, size):
    assert snap_compare(
        _app(make_app, runs_dir=fixed_runs), terminal_size=size, run_before=_open_runs
    )


@pytest.mark.slow
def test_run_view_80x24(snap_compare, make_app, fixed_runs):
    async def run_before(pilot):
        await _open_runs(pilot)
        table = pilot.app.screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=4)  # aaaaaa, the oldest
        await pilot.press("enter")
        view = pilot.app.screen
        assert isinstance(view, RunViewScreen)
        await wait_for(pilot, lambda: view.record is not None)  # read in a worker
        await wait_for(pilot, lambda: not view.query_one(MetricCharts).waiting)
        await pilot.pause()

    assert snap_compare(
        _app(make_app, runs_dir=fixed_runs), terminal_size=(80, 24), run_before=run_before
    )


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_compare(snap_compare, make_app, fixed_runs, size):
    async def run_before(pilot):
        await _open_runs(pilot)
        table = pilot.app.screen.query_one("#runs-table", DataTable)
        for row in (0, 3, 4):  # eeeeee (lr 0.01), bbbbbb and aaaaaa (seeds 1 and 0)
            table.move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("c")
        assert isinstance(pilot.app.screen, CompareScreen)
        await wait_for(pilot, lambda: pilot.app.screen.loaded)  # the runs are read in a worker
        # the table sizes its columns to their cells on idle, after the rows arrive: wait until
        # the row labels (a column whose header is empty) are on the screen
        await wait_for(pilot, lambda: "selected in stage" in screen_text(pilot.app))
        await pilot.pause()

    assert snap_compare(
        _app(make_app, runs_dir=fixed_runs), terminal_size=size, run_before=run_before
    )
