"""The app over hostile run folders (issue 28): names, tags, notes and messages are text, never
markup or terminal control; a damaged scores.npz, a FIFO log.txt or an impossible progress.json
is one line on the screen, and the app stays up and answers keys."""

from __future__ import annotations

import json
import os

import pytest
from fakes import make_run, set_status, STARTED, drawn, flat_text, wait_for
from textual.widgets import DataTable

from damtui.store import runs
from damtui.tui.screens.run_view import RunViewScreen
from test_runs_screen import _open_runs  # r, then wait for the list

FOLDER = "[@click=app.quit]clickme"
NAME = "[link=https://evil.example]x[/link]"
MESSAGE = "boom [/] [bold]x"


def _hostile(root):
    path = make_run(root, FOLDER, epochs_done=3, state=runs.FAILED)
    set_status(path, runs.FAILED, 3, 6, STARTED, STARTED + 180, message=MESSAGE)
    (path / runs.NOTES).write_text(json.dumps({"name": NAME, "notes": "a\x1b]0;PWNED\x07b", "tags": ["[/]"]}))
    return path


@pytest.mark.slow
async def test_names_tags_notes_and_messages_are_text(make_app, runs_dir):
    _hostile(runs_dir)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _open_runs(pilot)
        await drawn(pilot, FOLDER)  # the info line under the table names the highlighted run
        text = flat_text(app)
        assert NAME in text and "#[/]" in text and MESSAGE in text and "a␛]0;PWNED␇b" in text
        await pilot.click("#runs-info")  # `[@click=app.quit]` was an action here
        await pilot.pause()
        assert app.is_running and app.screen is screen
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await drawn(pilot, f"✗ failed: {MESSAGE}")
        assert NAME in flat_text(app) and "\x1b" not in flat_text(app)


@pytest.mark.slow
async def test_damaged_files_are_one_line_and_the_app_answers(make_app, runs_dir):
    path = make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=2)
    (path / runs.SCORES).write_bytes(b"PK\x03\x04 truncated")
    os.mkfifo(path / runs.LOG)
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _open_runs(pilot)
        await drawn(pilot, "scores.npz: not a readable .npz")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        view = app.screen
        for key, words in (("p", "not a readable .npz"), ("x", "not a readable .npz"), ("o", "log.txt is a FIFO")):
            await pilot.press(key)
            await drawn(pilot, words)  # the curves used to wait for ever, mistakes to end the app
            await pilot.press("escape")
            await wait_for(pilot, lambda: app.screen is view)
        assert app.is_running and screen.query_one("#runs-table", DataTable).row_count == 1


def _release(fifo) -> None:
    """Open the FIFO to write and close it: a reader stuck on it (a failing test's) reads its end."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody waits on it
        pass


@pytest.mark.slow
async def test_a_fifo_as_one_runs_config_does_not_hold_up_the_list(make_app, runs_dir):
    """A FIFO as config.json hung the runs list for ever (issue 28): the list loads, the other
    runs show and answer, and that folder is named among the non-run entries."""
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=2)
    make_run(runs_dir, "20240602-120000-synthetic2d-pretrain-bbbbbb", epochs_done=3, started=STARTED + 86400)
    fifo = make_run(runs_dir, "20240603-120000-synthetic2d-pretrain-cccccc", epochs_done=1) / runs.CONFIG
    fifo.unlink()
    os.mkfifo(fifo)
    app = make_app()
    try:
        async with app.run_test(size=(220, 30)) as pilot:  # wide: the info line names the tmp path first
            screen = await _open_runs(pilot)
            assert [r.run_id[-6:] for r in screen.shown] == ["bbbbbb", "aaaaaa"]
            await drawn(pilot, f"ignored 1 non-run entry: {fifo.parent.name}")
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
            await drawn(pilot, "bbbbbb")
    finally:
        _release(fifo)


@pytest.mark.slow
async def test_an_impossible_progress_record_of_a_followed_run_is_ignored(make_app, runs_dir):
    path = make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=2,
                    state=runs.RUNNING, pid=os.getpid())  # alive: the view follows it
    record = {"epoch": 3, "epochs": 6, "batch": 5, "batches": 10, "phase": "train", "images_per_s": 100.0,
              "eval_images": 400, "updated": STARTED}
    (path / runs.PROGRESS).write_text(json.dumps({**record, "train_elapsed_s": float("inf")}))  # Infinity
    app = make_app()
    async with app.run_test(size=(160, 30)) as pilot:
        await _open_runs(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await drawn(pilot, "following live")
        for _ in range(5):  # several polls: each read the record (an OverflowError ended the app)
            await pilot.pause(0.1)
        assert app.is_running and app.screen.progress is None
        (path / runs.PROGRESS).write_text(json.dumps({**record, "train_elapsed_s": 5.0}))
        await wait_for(pilot, lambda: app.screen.progress is not None)


def test_a_long_run_is_drawn_thinned_and_its_table_is_a_tail():
    """A 10,000-epoch run's page drew every row and point (issue 28, item 4): its charts get a
    bounded, ordered series that keeps the first, last and best epochs. The time its page takes
    is measured by benchmarks/big_runs.py (docs/RELIABILITY.md), not here."""
    from fakes import metrics_row

    from damtui.tui.widgets.run_panel import CHART_POINTS, thinned

    rows = [metrics_row(e) for e in range(1, 10_001)]
    shown = thinned(rows, CHART_POINTS, keep=4321)
    epochs = [r.epoch for r in shown]
    assert len(shown) <= CHART_POINTS + 2 and epochs == sorted(epochs)
    assert {1, 4321, 10_000} <= set(epochs) and thinned(rows[:50], CHART_POINTS) == rows[:50]
