"""The runs list as a researcher reads it (issue 26): runs told apart (name and seed up front,
chosen columns), the horizontal scroll kept while runs train, group rows that offer only what
works on them, counts of what the filter shows, the cursor after a delete, `#tag` filters, keys
typed fast after `r`."""

from __future__ import annotations

import pytest
from textual import events
from fakes import STARTED, make_run, screen_text, settle, wait_for
from test_groups_screens import two_stage_runs
from test_runs_screen import _open_runs
from textual.widgets import DataTable, Input, SelectionList

from damtui.store import notes as run_notes, runs
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.screens.run_groups import GROUP_PREFIX
from damtui.tui.screens.runs import RunsScreen, matches


def _footer(app) -> str:
    return screen_text(app).splitlines()[-1]


def _seeds(root, n: int = 3) -> None:
    for seed in range(n):
        make_run(root, f"20240601-12000{seed}-breastmnist-pretrain-{'abc'[seed] * 6}", epochs_done=6,
                 dataset="breastmnist", preset="breastmnist-pretrain-report", seed=seed, wobble=0.01 * seed,
                 started=STARTED + seed)


@pytest.mark.slow
async def test_runs_read_apart_at_80_columns_and_columns_can_be_chosen(make_app, runs_dir):
    """Item 5: name (else short id) and seed are on screen at 80 columns; `f` hides a column."""
    _seeds(runs_dir, 2)
    run_notes.update_notes(runs_dir / "20240601-120001-breastmnist-pretrain-bbbbbb",
                           lambda n: n.__class__(name="lr-check", text="", tags=()))
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_runs(pilot)
        lines = [ln for ln in screen_text(app).splitlines() if "breastmnist" in ln]
        assert any("aaaaaa" in ln and " 0 " in ln for ln in lines)  # short id, seed 0
        assert any("lr-check" in ln and " 1 " in ln for ln in lines)  # its name, seed 1
        await pilot.press("f")
        dialog = app.screen
        assert type(dialog).__name__ == "ColumnsScreen"
        options = dialog.query_one(SelectionList)
        options.deselect("preset")
        options.deselect("started")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is screen)
        keys = [str(k.value) for k in screen.query_one("#runs-table", DataTable).columns]
        assert "preset" not in keys and "started" not in keys and keys[:3] == ["sel", "run", "dataset"]


@pytest.mark.slow
async def test_horizontal_scroll_stays_while_a_run_trains(make_app, runs_dir):
    """Item 3: a live refresh used to clear the table and snap back to the first column."""
    _seeds(runs_dir, 2)
    writer = runs.RunWriter.create(runs_dir, {"dataset": "synthetic2d", "stage": "pretrain",
                                              "preset": "any-pretrain-demo", "epochs": 5, "seed": 0},
                                   {"device": "cpu"})
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        await wait_for(pilot, lambda: table.max_scroll_x > 0)
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()
        right = table.scroll_x
        assert right > 0
        for epoch in (1, 2):
            writer.append_metrics(runs_metrics(epoch))
            writer.write_status(runs.RUNNING, epoch, 5)
            await wait_for(pilot, lambda: any(r.epochs_done == epoch for r in screen.all_runs if r.run_id == writer.run_id))
            await pilot.pause(0.3)  # the redraw after the listing
            assert table.scroll_x == right
        writer.close()


def runs_metrics(epoch: int):
    from fakes import metrics_row

    return metrics_row(epoch)


@pytest.mark.slow
async def test_group_rows_offer_no_run_keys_and_the_count_follows_the_filter(make_app, runs_dir):
    """Items 7 and 13: `D Delete` on a group row did nothing; the status line counted hidden groups."""
    two_stage_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_runs(pilot)
        await pilot.press("g")
        table = screen.query_one("#runs-table", DataTable)
        keys = [str(k.value) for k in table.rows]
        table.move_cursor(row=next(i for i, k in enumerate(keys) if k.startswith(GROUP_PREFIX)))
        await pilot.pause()
        footer = _footer(app)
        assert "Delete" not in footer and "Select" in footer
        await pilot.press("D", "E", "T")
        await pilot.pause()
        assert app.screen is screen  # no dialog about a run that is not there
        assert "2 seed groups folded" in " ".join(screen_text(app).split())
        screen.query_one("#runs-filter", Input).value = "finetune"
        await wait_for(pilot, lambda: "1 seed group folded" in " ".join(screen_text(app).split()))


@pytest.mark.slow
async def test_after_a_delete_the_cursor_stays_with_the_neighbour(make_app, runs_dir):
    """Item 14: the cursor jumped to the first row."""
    _seeds(runs_dir, 3)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=1)  # bbbbbb, between cccccc and aaaaaa
        await pilot.pause()
        assert screen.current_run_id().endswith("bbbbbb")
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: len(screen.all_runs) == 2)
        await pilot.pause()
        assert table.cursor_row == 1 and screen.current_run_id().endswith("aaaaaa")


def test_a_tag_filters_as_the_list_shows_it(runs_dir):
    """Item 15: tags show as `#baseline`, and `#baseline` now filters by that tag."""
    _seeds(runs_dir, 2)
    run_notes.update_notes(runs_dir / "20240601-120000-breastmnist-pretrain-aaaaaa",
                           lambda n: n.__class__(name="", text="", tags=("baseline",)))
    found, _ = runs.list_runs(runs_dir)
    assert [r.run_id[-6:] for r in found if matches(r, "#baseline")] == ["aaaaaa"]
    assert [r.run_id[-6:] for r in found if matches(r, "#base breastmnist")] == ["aaaaaa"]
    assert len([r for r in found if matches(r, "#")]) == 2  # a lone # filters nothing out


@pytest.mark.slow
async def test_keys_typed_right_after_r_go_to_the_filter(make_app, runs_dir):
    """Item 21: `r` `/` `bg3` typed fast gave an empty filter and toggled Group."""
    _seeds(runs_dir, 2)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        for key, char in (("r", "r"), ("slash", "/"), ("b", "b"), ("g", "g"), ("3", "3")):
            app.post_message(events.Key(key, char))  # as a terminal delivers them: no wait between
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen))
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await pilot.pause()
        assert screen.query_one("#runs-filter", Input).value == "bg3" and not screen.grouped
