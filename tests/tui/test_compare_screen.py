"""Compare screen: select runs with space, overlay a metric, differing keys, export CSV/MD."""

from __future__ import annotations

import pytest

import csv

from fakes import STARTED, make_run, screen_text, wait_for
from textual.widgets import DataTable, Input, Select
from textual_plotext import PlotextPlot

from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.dialogs import ExportScreen
from damtui.tui.screens.runs import RunsScreen


def _two_seeds_and_other(root):
    make_run(root, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    make_run(
        root,
        "20240601-130000-synthetic2d-pretrain-bbbbbb",
        epochs_done=6,
        seed=1,
        wobble=0.01,
        started=STARTED + 3600,
    )
    make_run(
        root,
        "20240601-140000-synthetic2d-pretrain-cccccc",
        epochs_done=4,
        lr=0.01,
        wobble=-0.05,
        started=STARTED + 7200,
    )


async def _compare(pilot, rows: list[int]) -> CompareScreen:
    await pilot.press("r")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await wait_for(pilot, lambda: screen.loaded)
    table = screen.query_one("#runs-table", DataTable)
    for row in rows:
        table.move_cursor(row=row)
        await pilot.press("space")
    await pilot.press("c")
    assert isinstance(pilot.app.screen, CompareScreen)
    await wait_for(pilot, lambda: pilot.app.screen.loaded)  # the runs are read in a worker
    await pilot.pause()
    return pilot.app.screen


@pytest.mark.slow
async def test_compare_needs_two_runs(make_app, runs_dir):
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("space", "c")
        assert isinstance(app.screen, RunsScreen)
        assert any("select two or more runs" in n.message for n in app._notifications)


@pytest.mark.slow
async def test_compare_two_runs_and_export(make_app, runs_dir, tmp_path):
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await _compare(pilot, [0, 2])  # cccccc (newest first) and aaaaaa
        assert [r.info.run_id[-6:] for r in screen.records] == ["cccccc", "aaaaaa"]
        table = screen.query_one("#compare-table", DataTable)
        keys = [str(k.value) for k in table.rows]
        assert "lr" in keys and "seed" not in keys and "val_auc" in keys
        lr = [str(c).strip() for c in table.get_row("lr")]
        assert lr[1:] == ["0.01", "0.1"]
        best = [str(c).strip() for c in table.get_row("val_auc")]
        assert best[1:] == ["0.7800", "0.8300*"]  # best marked without colour
        text = screen_text(app)
        assert "config differs in: lr" in text
        assert "val AUC per epoch" in text
        plot = screen.query_one("#compare-plot", PlotextPlot)
        # metric picker: next metric with ], or any with the Select
        await pilot.press("right_square_bracket")
        assert screen.metric == "test_auc"
        screen.query_one("#metric", Select).value = "train_loss"
        await pilot.pause()
        assert "train loss per epoch" in screen_text(app)
        assert plot is screen.query_one("#compare-plot")
        # export
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        box = app.screen.query_one(Input)
        assert box.value.startswith(str(tmp_path / "exports" / "damtui-compare-"))
        box.value = str(tmp_path / "out" / "cmp")
        await pilot.press("enter")
        assert app.screen is screen
        csv_text = (tmp_path / "out" / "cmp.csv").read_text()
        md_text = (tmp_path / "out" / "cmp.md").read_text()
        rows = list(csv.DictReader(csv_text.splitlines()))
        assert [r["run"][-6:] for r in rows] == ["cccccc", "aaaaaa"]
        assert rows[1]["val_auc"] == "0.83"
        assert "| val AUC @selected | 0.7800 | **0.8300** |" in md_text
        assert "exported cmp.csv, cmp.md" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)


async def test_runs_differing_by_seed_show_mean_and_std(make_app, runs_dir):
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(140, 40)) as pilot:
        screen = await _compare(pilot, [1, 2])  # bbbbbb and aaaaaa: only the seed differs
        table = screen.query_one("#compare-table", DataTable)
        assert len(table.columns) == 4  # key, two runs, mean ± std
        row = [str(c) for c in table.get_row("val_auc")]
        assert row[3] == "0.835 ± 0.007"  # 3 decimals: the column fits 80 columns
        assert "config differs in: seed" in screen_text(app)


@pytest.mark.slow
async def test_export_cancel_writes_nothing(make_app, runs_dir, tmp_path):
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _compare(pilot, [0, 1])
        await pilot.press("e")
        assert isinstance(app.screen, ExportScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, CompareScreen)
        assert not (tmp_path / "exports").exists()


@pytest.mark.slow
async def test_compare_from_command_palette_action(make_app, runs_dir):
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("r")
        screen = app.screen
        await wait_for(pilot, lambda: screen.loaded)
        await pilot.press("a")  # select all shown
        await pilot.press("n")  # go elsewhere; the selection stays on the runs screen
        app.action_compare()
        await pilot.pause()
        assert isinstance(app.screen, CompareScreen)
        await wait_for(pilot, lambda: app.screen.loaded)
        assert len(app.screen.records) == 3
