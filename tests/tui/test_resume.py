"""R on saved runs (issue 14 items 1-2): the runs list, the run page and the monitor resume a
stopped run and extend a finished one after asking for the epochs; `r` always shows the list;
a run page shows the run as its files are now."""

from __future__ import annotations

import pytest

from fakes import STARTED, FakeEngine, make_run, metrics_row, screen_text, set_status, wait_for
from textual.widgets import DataTable, Input

from damtui.store import runs
from damtui.config import find_preset
from damtui.tui.screens.dialogs import ConfirmScreen, EpochsScreen
from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.widgets.key_footer import KeyFooter

CANCELLED_ID = "20240601-130000-synthetic2d-pretrain-bbbbbb"
FINISHED_ID = "20240601-120000-synthetic2d-pretrain-aaaaaa"


def _two_runs(root):
    """A finished run (6/6) and, newer, one cancelled after 2 of 5 epochs."""
    finished = make_run(root, FINISHED_ID, epochs_done=6)
    cancelled = make_run(
        root, CANCELLED_ID, epochs_done=2, state=runs.CANCELLED, epochs=5, started=STARTED + 3600
    )
    return finished, cancelled


async def _runs_list(pilot, highlight: str | None = None) -> RunsScreen:
    """`r`, then the cursor on run `highlight`."""
    await pilot.press("r")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await wait_for(pilot, lambda: screen.loaded)
    if highlight is not None:
        _highlight(screen, highlight)
        await pilot.pause()
    return screen


def _highlight(screen: RunsScreen, run_id: str) -> None:
    table = screen.query_one("#runs-table", DataTable)
    table.move_cursor(row=[r.run_id for r in screen.shown].index(run_id))


def _footer(app) -> str:
    return " ".join(f"{k} {d}" for k, d in app.screen.query_one(KeyFooter)._keys)


@pytest.mark.slow
async def test_r_after_resuming_from_a_run_page_shows_the_list_and_the_run_as_it_is_now(
    make_app, runs_dir
):
    _, path = _two_runs(runs_dir)
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _runs_list(pilot, CANCELLED_ID)
        await pilot.press("enter")
        assert isinstance(app.screen, RunViewScreen)
        await wait_for(pilot, lambda: "epochs 2/5" in screen_text(app))
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        await pilot.press("r")  # the list, not the run page left open before the resume
        assert app.screen is screen
        await wait_for(pilot, lambda: screen._info(CANCELLED_ID).status == runs.FINISHED)
        _highlight(screen, CANCELLED_ID)
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, RunViewScreen)
        await wait_for(pilot, lambda: "epochs 5/5" in screen_text(app))
        assert "✓ finished" in screen_text(app)
        assert "R Extend" in _footer(app)  # the finished run can be extended, not resumed
        assert engine.calls[0]["resume"] == path and engine.calls[0]["config"].epochs == 5


@pytest.mark.slow
async def test_r_from_launch_shows_the_list_not_an_open_run_page(make_app, runs_dir):
    _two_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _runs_list(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, RunViewScreen)
        await pilot.press("n")
        assert isinstance(app.screen, LaunchScreen)
        await pilot.press("r")
        assert isinstance(app.screen, RunsScreen)


async def test_a_stopped_run_page_shows_what_another_process_writes(make_app, runs_dir):
    """The page was opened on a cancelled run; a `damtui train --resume` elsewhere finishes it."""
    _, path = _two_runs(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _runs_list(pilot, CANCELLED_ID)
        await pilot.press("enter")
        view = app.screen
        await wait_for(pilot, lambda: "■ cancelled" in screen_text(app))
        await wait_for(pilot, lambda: "R Resume" in _footer(app))
        writer = runs.RunWriter.reopen(path, 5, 2)
        await wait_for(pilot, lambda: "● following live" in screen_text(app))
        await wait_for(pilot, lambda: "R Resume" not in _footer(app) and "R Extend" not in _footer(app))
        for epoch in (3, 4, 5):
            writer.append_metrics(metrics_row(epoch))
        writer.write_status(runs.FINISHED, 5, 5)
        writer.close()
        await wait_for(pilot, lambda: "epochs 5/5" in screen_text(app))
        assert "✓ finished" in screen_text(app) and "following" not in screen_text(app)
        assert app.screen is view


@pytest.mark.slow
async def test_r_in_the_list_resumes_the_highlighted_run(make_app, runs_dir):
    _, path = _two_runs(runs_dir)
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await _runs_list(pilot, CANCELLED_ID)
        footer = _footer(app)
        assert "⏎ Open" in footer and "space Select" in footer and "R Resume" in footer
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        assert engine.calls[0]["resume"] == path
        assert [r.epoch for r in app.session.rows] == [1, 2, 3, 4, 5]
        assert runs.load_run(path).info.status == runs.FINISHED


@pytest.mark.slow
async def test_extend_a_finished_run_asks_for_the_epochs(make_app, runs_dir):
    path, _ = _two_runs(runs_dir)
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _runs_list(pilot, FINISHED_ID)
        assert "R Extend" in _footer(app) and "R Resume" not in _footer(app)
        await pilot.press("R")
        dialog = app.screen
        assert isinstance(dialog, EpochsScreen)
        assert "It has finished 6 epochs" in screen_text(app)
        box = dialog.query_one(Input)
        box.value = "6"  # not more than it has
        await pilot.press("enter")
        assert app.screen is dialog
        assert "✗ give a whole number of epochs above 6" in screen_text(app)
        await pilot.press("escape")
        assert app.screen is screen and not engine.calls
        await pilot.press("R")
        app.screen.query_one(Input).value = "8"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        assert engine.calls[0]["resume"] == path and engine.calls[0]["config"].epochs == 8
        info = runs.load_run(path).info
        assert (info.status, info.epochs_done, info.epochs_planned) == (runs.FINISHED, 8, 8)


@pytest.mark.slow
async def test_r_while_a_run_trains_says_so_without_a_dialog(make_app, runs_dir):
    _two_runs(runs_dir)
    engine = FakeEngine(batches=4, hold_at=(1, 1))
    app = make_app(engine)
    notes: list[str] = []
    app.notify = lambda message, **kw: notes.append(message)  # type: ignore[method-assign]
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training(find_preset("demo", "synthetic2d", "pretrain"))
        await wait_for(pilot, lambda: engine.holding.is_set())
        screen = await _runs_list(pilot, FINISHED_ID)
        await pilot.press("R")
        assert app.screen is screen
        assert any("a run is already training" in n for n in notes)
        engine.release()
        await wait_for(pilot, lambda: app.session.done)


@pytest.mark.slow
async def test_the_monitor_hint_after_a_cancel_is_true(make_app, runs_dir):
    engine = FakeEngine(batches=50, hold_at=(2, 3))
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        app.start_training(find_preset("demo", "synthetic2d", "pretrain"))
        await wait_for(pilot, lambda: engine.holding.is_set())
        await pilot.press("X")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert "■ cancelled after epoch 1; R resumes it" in screen_text(app)
        run_dir = app.session.run_dir
        engine.release()  # the resumed run does not hold at (2, 3) again
        await pilot.press("R")
        await wait_for(pilot, lambda: len(engine.calls) == 2 and app.session.done)
        assert str(engine.calls[1]["resume"]) == run_dir
        assert runs.load_run(run_dir).info.status == runs.FINISHED
        # and from the runs list, as the hint says
        set_status(run_dir, runs.CANCELLED, 2, 4, STARTED, STARTED + 60)
        screen = await _runs_list(pilot)
        await wait_for(pilot, lambda: "R Resume" in _footer(app))
        assert screen.current_run_id() == app.session.run_id


@pytest.mark.slow
async def test_space_only_selects_and_home_end_go_to_first_and_last(make_app, runs_dir):
    _two_runs(runs_dir)
    make_run(runs_dir, "20240601-140000-synthetic2d-pretrain-cccccc", epochs_done=1,
             started=STARTED + 7200)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _runs_list(pilot)
        table = screen.query_one("#runs-table", DataTable)
        await pilot.press("down")
        assert table.cursor_row == 1
        await pilot.press("space")
        assert table.cursor_row == 1 and screen.selected == [CANCELLED_ID]
        await pilot.press("end")
        assert table.cursor_row == 2
        await pilot.press("home")
        assert table.cursor_row == 0


@pytest.mark.slow
async def test_a_run_page_shown_again_reads_the_run_again(make_app, runs_dir):
    """While covered (help on top) the page does not poll; shown again, it reads the files."""
    _, path = _two_runs(runs_dir)
    app = make_app(poll_interval=60.0)  # no poll during the test: only showing the page reads
    async with app.run_test(size=(100, 30)) as pilot:
        await _runs_list(pilot, CANCELLED_ID)
        await pilot.press("enter")
        view = app.screen
        await wait_for(pilot, lambda: "■ cancelled" in screen_text(app))
        await pilot.press("question_mark")
        assert app.screen is not view
        set_status(path, runs.FAILED, 2, 5, STARTED, STARTED + 120, message="loss became NaN")
        await pilot.press("escape")
        assert app.screen is view
        await wait_for(pilot, lambda: "✗ failed: loss became NaN" in screen_text(app))


@pytest.mark.slow
async def test_extending_a_pretrain_that_fine_tunes_use_asks_naming_them(make_app, runs_dir):
    finished, _ = _two_runs(runs_dir)
    tune = make_run(runs_dir, "20240601-150000-synthetic2d-finetune-ffffff", epochs_done=2, stage="finetune",
                    started=STARTED + 7200)
    saved = runs.read_json(tune / runs.CONFIG)
    runs.atomic_write_json(tune / runs.CONFIG, {**saved, "runtime": {"from_run": FINISHED_ID,
                                                                     "from_run_path": str(finished.resolve())}})
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(120, 30)) as pilot:
        await _runs_list(pilot, FINISHED_ID)
        await pilot.press("R")
        assert isinstance(app.screen, EpochsScreen)
        app.screen.query_one(Input).value = "8"
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "20240601-150000-synthetic2d-finetune-ffffff" in screen_text(app)
        assert engine.calls == []  # nothing trains until the user says so
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        assert engine.calls[0]["resume"] == finished and engine.calls[0]["config"].epochs == 8
