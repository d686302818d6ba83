"""Seed groups in the app: the runs list's collapsible group rows and the results screen."""

from __future__ import annotations

import pytest

from pathlib import Path

from fakes import STARTED, drawn, make_run, read_json, screen_text, settle, wait_for
from test_runs_screen import _open_runs
from textual.widgets import DataTable

from damtui.store import runs
from damtui.tui.screens.results import ResultsScreen
from damtui.tui.screens.run_groups import GROUP_PREFIX
from damtui.tui.screens.runs import RunsScreen


def two_stage_runs(root: Path) -> None:
    """Breastmnist: pretrains of seeds 0 and 1, a fine-tune from each, and a pretrain with
    another lr (its own group) whose test AUC is higher but validation AUC lower."""
    for seed, letter in ((0, "a"), (1, "b")):
        make_run(root, f"20240601-12000{seed}-breastmnist-pretrain-{letter * 6}", epochs_done=6,
                 dataset="breastmnist", preset="breastmnist-pretrain-report", seed=seed,
                 wobble=0.01 * seed, started=STARTED + seed)
        ft = make_run(root, f"20240601-13000{seed}-breastmnist-finetune-{letter * 5}f", epochs_done=3,
                      dataset="breastmnist", stage="finetune", preset="breastmnist-finetune-report",
                      seed=seed, wobble=0.02 + 0.01 * seed, started=STARTED + 3600 + seed)
        saved = read_json(ft / runs.CONFIG)
        saved["runtime"]["from_run"] = str(root / f"20240601-12000{seed}-breastmnist-pretrain-{letter * 6}")
        runs.atomic_write_json(ft / runs.CONFIG, saved)
    make_run(root, "20240601-140000-breastmnist-pretrain-cccccc", epochs_done=2, dataset="breastmnist",
             preset="breastmnist-pretrain-report", lr=0.01, started=STARTED + 7200)


async def _runs_screen(pilot) -> RunsScreen:
    await settle(pilot)
    return await _open_runs(pilot)


def _keys(screen) -> list[str]:
    return [str(k.value) for k in screen.query_one("#runs-table", DataTable).rows]


@pytest.mark.slow
async def test_group_rows_fold_expand_and_select_their_members(make_app, runs_dir):
    two_stage_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _runs_screen(pilot)
        assert len(_keys(screen)) == 5 and not any(k.startswith(GROUP_PREFIX) for k in _keys(screen))
        await pilot.press("g")
        keys = _keys(screen)
        assert len(keys) == 3 and keys[0].endswith("cccccc")  # lone run, then two folded groups
        assert all(k.startswith(GROUP_PREFIX) for k in keys[1:])
        await drawn(pilot, "2 seeds")
        text = screen_text(app)
        assert "2 seeds" in text and " 0,1 " in text and "0.835 ± 0.007" in text
        await pilot.press("down")  # the fine-tune group
        await drawn(pilot, "from a pretrain group of 2")
        await pilot.press("enter")
        keys = _keys(screen)
        assert [k[-6:] for k in keys[2:4]] == ["bbbbbf", "aaaaaf"] and len(keys) == 5  # newest first
        assert isinstance(app.screen, RunsScreen)  # enter on a group opens no run
        await drawn(pilot, "1 seed group folded, 1 open (g)")  # an open group is not counted folded
        await pilot.press("enter")
        assert len(_keys(screen)) == 3
        await drawn(pilot, "2 seed groups folded (g)")
        await pilot.press("space")
        assert sorted(s[-6:] for s in screen.selected) == ["aaaaaf", "bbbbbf"]
        await pilot.press("space")
        assert screen.selected == []
        await pilot.press("space", "c")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "CompareScreen")
        assert sorted(p.name[-6:] for p in app.screen.paths) == ["aaaaaf", "bbbbbf"]
        await pilot.press("escape", "g")
        assert len(_keys(screen)) == 5  # one row per run again


@pytest.mark.slow
async def test_filter_splitting_a_group_shows_plain_rows(make_app, runs_dir):
    two_stage_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _runs_screen(pilot)
        await pilot.press("g", "slash", *"aaaa")
        await pilot.pause()
        assert not any(k.startswith(GROUP_PREFIX) for k in _keys(screen))  # one member left: no group


@pytest.mark.slow
async def test_results_screen_by_key_and_palette(make_app, runs_dir):
    two_stage_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        screen = app.screen
        assert isinstance(screen, ResultsScreen)
        await wait_for(pilot, lambda: screen.board)
        (entry,) = screen.board
        assert entry.group is not None and entry.group.stage == "finetune"
        await drawn(pilot, "ResNet-18 (28)")
        text = screen_text(app)
        assert "damtui finetune" in text and "ResNet-18 (28)" in text and "0.901" in text
        assert "best in paper" in text and "seed 1" in text
        assert "0.835 ± 0.007" in text  # fine-tune test AUC (val - 0.02) at its best val epoch
        await pilot.press("escape")
        assert not isinstance(app.screen, ResultsScreen)
        await pilot.press("ctrl+p")
        await pilot.press(*"Results")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ResultsScreen))


@pytest.mark.slow
async def test_results_screen_without_runs(make_app, runs_dir):
    app = make_app()
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        await pilot.press("L")
        await drawn(pilot, "no finished runs in")


@pytest.mark.slow
async def test_a_group_row_counts_seeds_shows_repeats_and_names_what_differs(make_app, runs_dir):
    """Seeds 0 and 1, seed 0 again (from the app) and a cancelled run of seed 2 with no epoch;
    beside them a group with another lr."""
    for seed in (0, 1):
        make_run(runs_dir, f"20240601-12000{seed}-synthetic2d-pretrain-aaaaa{seed}", epochs_done=6, seed=seed,
                 started=STARTED + seed)
        make_run(runs_dir, f"20240601-14000{seed}-synthetic2d-pretrain-bbbbb{seed}", epochs_done=6, seed=seed,
                 lr=0.003, started=STARTED + 7200 + seed)
    make_run(runs_dir, "20240601-130000-synthetic2d-pretrain-aaaaa9", epochs_done=6, started=STARTED + 3600)
    make_run(runs_dir, "20240601-150000-synthetic2d-pretrain-cccccc", epochs_done=0, seed=2,
             state=runs.CANCELLED, started=STARTED + 9000)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _runs_screen(pilot)
        await pilot.press("g")
        await drawn(pilot, "2 seeds +1")  # three runs, two seeds: a repeat is not a seed
        keys = _keys(screen)
        assert keys[0].endswith("cccccc")  # the run without an epoch stays out of the groups
        text = screen_text(app)
        assert "lr=0.1" in text and "lr=0.003" in text  # what tells the groups apart
        screen.query_one("#runs-table", DataTable).move_cursor(row=keys.index(
            next(k for k in keys if k.startswith(GROUP_PREFIX) and "aaaaa9" in str(screen._group(k).run_ids))))
        await drawn(pilot, "seed group lr=0.1: aaaaa0, aaaaa9, aaaaa1 · 1 repeat(s) of a seed not averaged")
