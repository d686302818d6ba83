"""Compare, results and dialogs at 80 columns (issue 26 items 18 and 20): a chosen baseline for
the paired differences in plain words, every run's column on screen, the leaderboard's columns
whole with one number format, and dialogs that show their own keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import STARTED, make_run, screen_text, settle, wait_for
from test_compare_screen import _compare, _two_seeds_and_other
from test_curves_screen import BINARY, OTHER, _app, write_scores
from test_curves_screen import scored_runs  # noqa: F401 (the fixture)
from textual.widgets import DataTable, Static

from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.dialogs import ConfirmScreen

THIRD = "20240601-150000-breastmnist-pretrain-dddddd"


def _info(app) -> str:
    boxes = app.screen.query("#compare-info")
    return str(boxes.first(Static).render()) if boxes else ""


@pytest.mark.slow
async def test_enter_on_a_run_makes_it_the_baseline(make_app, scored_runs):  # noqa: F811
    """Item 18: the paired differences were always against the first run."""
    write_scores(scored_runs / THIRD, seed=2, noise=1.2)
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.push_screen(CompareScreen([Path("runs") / n for n in (BINARY, OTHER, THIRD)]))
        await wait_for(pilot, lambda: "paired against aaaaaa" in _info(app))
        assert "bbbbbb -0." in _info(app) and "dddddd " in _info(app)
        table = app.screen.query_one("#compare-table", DataTable)
        table.focus()
        assert "⏎ Baseline" in screen_text(app).splitlines()[-1]
        table.move_cursor(column=2)  # the second run's column
        await pilot.press("enter")
        await wait_for(pilot, lambda: "paired against bbbbbb" in _info(app))
        info = _info(app)
        assert "aaaaaa +0." in info and "dddddd " in info and "bbbbbb -0." not in info
        assert "clearly" in info or "no clear difference" in info  # words, not `resolved`


@pytest.mark.slow
async def test_compare_at_80x24_shows_every_run_and_the_scores(make_app, runs_dir):
    """Item 20: at 80 columns compare showed 2 of 3 runs and 4 table rows."""
    _two_seeds_and_other(runs_dir)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _compare(pilot, [0, 1, 2])
        text = screen_text(app)
        header = next(line for line in text.splitlines() if "aaaaaa" in line)
        assert "bbbbbb" in header and "cccccc" in header  # all three runs' columns
        table = screen.query_one("#compare-table", DataTable)
        assert table.size.height >= 6
        assert table.scrollable_content_region.width >= table.virtual_size.width - 2  # no hidden run


@pytest.mark.slow
async def test_the_leaderboard_fits_80_columns_with_three_decimals(make_app, runs_dir):
    """Item 20: `tACC@thr` was cut at 80 columns; the seeds' rows had 4 decimals, the rest 3."""
    for seed in (0, 1):
        make_run(runs_dir, f"20240601-12000{seed}-breastmnist-pretrain-{'ab'[seed] * 6}", epochs_done=6,
                 dataset="breastmnist", preset="breastmnist-pretrain-report", seed=seed, wobble=0.01 * seed,
                 started=STARTED + seed)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        await wait_for(pilot, lambda: "seed 1" in screen_text(app))
        lines = screen_text(app).splitlines()
        assert "tACC@thr" in lines[1]
        group_row = next(line for line in lines if "damtui pretrain" in line)
        assert len(re.findall(r"\d\.\d{3} ± \d\.\d{3}", group_row)) == 3  # tAUC, tACC, tACC@thr whole
        seed_row = next(line for line in lines if "seed 1" in line)
        assert "0.820" in seed_row and "0.8200" not in seed_row


@pytest.mark.slow
async def test_a_dialog_shows_its_own_keys(make_app, runs_dir):
    """Item 20: a dialog kept the footer of the screen below (keys that do not work there)."""
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=2)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "y Yes" in footer and "Compare" not in footer and "Select" not in footer
        await pilot.press("n")
