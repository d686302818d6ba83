"""SVG snapshots of the run-management screens: the log screen, the delete dialog naming a
fine-tune, the tags/notes dialog, and the runs list showing a name and tags (fixed data; update
with `--snapshot-update` and look at the SVGs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import STARTED, make_run, settle, wait_for
from textual.widgets import DataTable, Log

from damtui.store import notes as run_notes, runs
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.screens.log_view import LogScreen
from damtui.tui.screens.manage import NotesScreen
from damtui.tui.screens.run_view import RunViewScreen

SIZES = [(80, 24), (160, 48)]
A = "20240601-120000-synthetic2d-pretrain-aaaaaa"
B = "20240601-130000-synthetic2d-finetune-bbbbbb"
LOG = """12:00:00 run {a} -> runs/{a}
12:00:00 device cpu (x86_64, 1 threads); sizes {{'train': 800, 'val': 200, 'test': 200}}; epochs 1..6
12:00:00     ep   loss  trAUC   vAUC   vACC   tAUC   tACC tACC@thr     lr      s  img/s
12:01:00      1 0.6200 0.7200 0.7000 0.6500 0.6800 0.6200   0.6400    0.1   60.0    850  *best
12:02:00      2 0.5400 0.7900 0.7800 0.7300 0.7600 0.7000   0.7200    0.1   60.0    850  *best
"""


@pytest.fixture
def managed_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    src = make_run(root, A, epochs_done=2, state=runs.RUNNING, pid=99_999_999)
    (src / runs.LOG).write_text(LOG.format(a=A))
    run_notes.rename_run(src, "baseline")
    run_notes.tag_run(src, ["good", "v1"])
    run_notes.set_notes(src, "first try; lr 0.1")
    ft = make_run(root, B, epochs_done=3, stage="finetune", started=STARTED + 3600)
    cfg = runs.read_json(ft / runs.CONFIG)
    cfg["runtime"].update(from_run=A, from_run_path=str(src.resolve()))
    runs.atomic_write_json(ft / runs.CONFIG, cfg)
    return root


def _app(make_app, root):
    app = make_app()
    app.runs_dir = root
    return app


async def _runs(pilot, row: int = 1):
    await settle(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: pilot.app.screen.loaded)
    pilot.app.screen.query_one("#runs-table", DataTable).move_cursor(row=row)  # aaaaaa, the older
    await pilot.pause()


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_runs_with_name_and_tags(snap_compare, make_app, managed_runs, size):
    assert snap_compare(_app(make_app, managed_runs), terminal_size=size, run_before=_runs)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_log_screen(snap_compare, make_app, managed_runs, size):
    async def run_before(pilot):
        await _runs(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunViewScreen))
        await pilot.press("o")
        screen = pilot.app.screen
        assert isinstance(screen, LogScreen)
        await wait_for(pilot, lambda: screen.query_one(Log).line_count == 5)
        await pilot.pause()

    assert snap_compare(_app(make_app, managed_runs), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_delete_dialog_names_the_fine_tune(snap_compare, make_app, managed_runs, size):
    async def run_before(pilot):
        await _runs(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, ConfirmScreen))
        await pilot.pause(0.5)  # the dialog's fade-in has ended

    assert snap_compare(_app(make_app, managed_runs), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_notes_dialog(snap_compare, make_app, managed_runs, size):
    async def run_before(pilot):
        await _runs(pilot)
        await pilot.press("T")
        dialog = pilot.app.screen
        assert isinstance(dialog, NotesScreen)
        for field in dialog.query("Input, TextArea"):
            field.cursor_blink = False  # a blinking cursor makes the picture depend on timing
        await pilot.pause(0.5)  # the dialog's fade-in has ended

    assert snap_compare(_app(make_app, managed_runs), terminal_size=size, run_before=run_before)
