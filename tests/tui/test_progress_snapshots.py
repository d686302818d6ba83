"""SVG snapshot of the run page following a run another process writes (its progress line),
at 80x24 and 160x48. Fixed: the record's `updated` is 0, so no wall-clock time enters the ETA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fakes import make_run, settle, wait_for

from damtui.store import runs
from damtui.store.progress import TRAIN, Progress
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets.charts import MetricCharts


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_run_view_following(snap_compare, make_app, tmp_path, monkeypatch, size):
    monkeypatch.chdir(tmp_path)
    path = make_run(Path("runs"), "20240601-150000-synthetic2d-pretrain-dddddd", epochs_done=2,
                    state=runs.RUNNING, pid=os.getpid(), epochs=6)
    runs.RunWriter(path).write_progress(Progress(3, 6, 7, 20, TRAIN, 850.0, 10.5, 400), force=True)

    async def run_before(pilot):
        await settle(pilot)
        view = RunViewScreen(path)
        pilot.app.push_screen(view)
        await wait_for(pilot, lambda: view.progress is not None and view.record is not None)
        await wait_for(pilot, lambda: not view.query_one(MetricCharts).waiting)
        await pilot.pause()

    app = make_app()
    app.runs_dir = Path("runs")
    assert snap_compare(app, terminal_size=size, run_before=run_before)
