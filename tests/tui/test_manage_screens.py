"""Managing runs in the app: delete with confirmation (and the source warning), rename, tags and
notes in the list and on the run page, the log screen following a growing log.txt, the GPU line
on the monitor (a fake probe), and run_app's signal handling without private Textual names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import signal

from fakes import FakeEngine, drawn, make_run, screen_text, settle, wait_for
from textual.widgets import DataTable, Input, Log, TextArea

from damtui.store import log as run_log, notes as run_notes, runs
from damtui.train.gpu import GpuSample
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.screens.log_view import LogScreen
from damtui.tui.screens.manage import NotesScreen, RenameScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.widgets.gpu_line import GpuLine

A = "20240601-120000-synthetic2d-pretrain-aaaaaa"
B = "20240601-130000-synthetic2d-finetune-bbbbbb"


async def _runs(pilot) -> RunsScreen:
    await pilot.press("r")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await wait_for(pilot, lambda: screen.loaded)
    return screen


def _cursor_to(screen: RunsScreen, run_id: str) -> None:
    screen.query_one("#runs-table", DataTable).move_cursor(row=[r.run_id for r in screen.shown].index(run_id))


@pytest.mark.slow
async def test_delete_asks_then_moves_the_run_to_the_trash(make_app, runs_dir):
    make_run(runs_dir, A, epochs_done=3)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _runs(pilot)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert f"Delete run {A}?" in screen_text(app) and ".trash" in screen_text(app)
        await pilot.press("n")  # keep it
        await settle(pilot)
        assert app.screen is screen and (runs_dir / A).is_dir()
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        await pilot.press("y")
        await wait_for(pilot, lambda: not (runs_dir / A).exists() and not screen.all_runs)
        assert len(list((runs_dir / ".trash").iterdir())) == 1
        assert any("moved to" in n.message for n in app._notifications)


@pytest.mark.slow
async def test_delete_of_a_source_names_its_fine_tunes(make_app, runs_dir):
    src = make_run(runs_dir, A, epochs_done=3)
    ft = make_run(runs_dir, B, epochs_done=2, stage="finetune", started=1_717_250_000.0)
    cfg = runs.read_json(ft / runs.CONFIG)
    cfg["runtime"].update(from_run=A, from_run_path=str(src.resolve()))
    runs.atomic_write_json(ft / runs.CONFIG, cfg)
    app = make_app()
    async with app.run_test(size=(120, 34)) as pilot:
        screen = await _runs(pilot)
        _cursor_to(screen, A)
        await pilot.press("D")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        text = screen_text(app)
        assert "source of 1 fine-tune(s)" in text and "bbbbbb" in text
        await pilot.press("y")
        await wait_for(pilot, lambda: not src.exists())
        assert ft.is_dir()


@pytest.mark.slow
async def test_delete_refuses_a_run_being_written(make_app, runs_dir):
    path = make_run(runs_dir, A, epochs_done=1, state=runs.RUNNING)
    lock = runs.RunLock.acquire(path)
    app = make_app()
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await _runs(pilot)
            await pilot.press("D")
            await wait_for(pilot, lambda: any("cannot delete" in n.message for n in app._notifications))
            assert not isinstance(app.screen, ConfirmScreen) and path.is_dir()
    finally:
        lock.release()


@pytest.mark.slow
async def test_rename_and_tags_show_in_the_list_and_on_the_run_page(make_app, runs_dir):
    make_run(runs_dir, A, epochs_done=3)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _runs(pilot)
        await pilot.press("E")
        assert isinstance(app.screen, RenameScreen)
        app.screen.query_one(Input).value = "baseline"
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.all_runs and screen.all_runs[0].notes.name == "baseline")
        await pilot.press("T")
        assert isinstance(app.screen, NotesScreen)
        app.screen.query_one("#notes-tags", Input).value = "good, v1"
        app.screen.query_one("#notes-text", TextArea).text = "lr 0.1 looks right\nsecond line"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: screen.all_runs[0].notes.tags == ("good", "v1"))
        await pilot.pause()
        table = screen.query_one("#runs-table", DataTable)
        row = table.get_row(A)  # the name second (read apart from its group at 80 columns), tags last
        assert str(row[1]) == "baseline" and str(row[-1]) == "#good #v1"
        assert "lr 0.1 looks right" in screen_text(app)
        assert run_notes.load_notes(runs_dir / A).text == "lr 0.1 looks right\nsecond line"
        screen.query_one("#runs-filter", Input).value = "tag:nope"
        await pilot.pause()
        assert screen.shown == []
        screen.query_one("#runs-filter", Input).value = "tag:good"
        await pilot.pause()
        assert [r.run_id for r in screen.shown] == [A]
        table.focus()
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, RunViewScreen)
        await wait_for(pilot, lambda: view.record is not None)
        await pilot.pause()
        assert "baseline #good #v1 · lr 0.1 looks right" in screen_text(app)


@pytest.mark.slow
async def test_bad_tags_are_refused_in_the_dialog(make_app, runs_dir):
    make_run(runs_dir, A, epochs_done=1)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _runs(pilot)
        await pilot.press("T")
        app.screen.query_one("#notes-tags", Input).value = "x" * 50
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, NotesScreen)
        await drawn(pilot, "a tag is one word")
        await pilot.press("escape")
        assert not (runs_dir / A / runs.NOTES).exists()


@pytest.mark.slow
async def test_log_screen_follows_a_growing_log(make_app, runs_dir):
    path = make_run(runs_dir, A, epochs_done=2, state=runs.RUNNING)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _runs(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await pilot.press("o")
        log_screen = app.screen
        assert isinstance(log_screen, LogScreen)
        await wait_for(pilot, lambda: "no log.txt yet" in screen_text(app))
        run_log.append_log(path, "run started\nepoch 1")
        log = log_screen.query_one(Log)
        await wait_for(pilot, lambda: log.line_count == 2)
        with open(path / runs.LOG, "ab") as fh:
            fh.write(b"12:00:00 epoch 2 half")  # a line being written is not shown yet
        await settle(pilot, 0.3)
        assert log.line_count == 2
        with open(path / runs.LOG, "ab") as fh:
            fh.write(b" done\n")
        await wait_for(pilot, lambda: log.line_count == 3)
        assert log.lines[-1] == "12:00:00 epoch 2 half done" and "3 lines" in screen_text(app)
        await pilot.press("escape")
        assert isinstance(app.screen, RunViewScreen)
        assert screen is not None


def _on_cuda(engine):
    """The fake engine, reporting a CUDA device as a GPU run would (in config.json's runtime)."""
    engine.device_name = "cuda:0 (Fake GPU)"
    return engine


async def _monitor(pilot, engine) -> MonitorScreen:
    await settle(pilot)
    pilot.app.screen.query_one("#datasets").focus()
    await pilot.press("S")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, MonitorScreen) and engine.holding.is_set())
    return pilot.app.screen


@pytest.mark.slow
async def test_gpu_line_on_the_monitor_with_a_fake_probe(make_app):
    engine = FakeEngine(batches=4, hold_at=(1, 2))
    asked = []

    def probe(device):
        asked.append(device)
        return GpuSample(0, 30 * 1024**3, 140 * 1024**3, 12 * 1024**3, 87)

    app = make_app(_on_cuda(engine), gpu_probe=probe)
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _monitor(pilot, engine)
        line = screen.query_one(GpuLine)
        text = "GPU 0  memory 30.0/140.0 GiB (this run 12.0 GiB)  utilisation 87%"
        await wait_for(pilot, lambda: line.display and text in screen_text(app))  # shown, then drawn
        assert asked[0] == "cuda:0 (Fake GPU)"
        engine.release()
        await wait_for(pilot, lambda: app.session.done)
        line.sample()
        assert not line.display  # the run has ended


async def test_cpu_and_ram_but_no_gpu_line_for_a_cpu_run(make_app):
    """Issue 26: CPU and RAM of the training process beside the GPU line (here without a GPU)."""
    engine = FakeEngine(batches=4, hold_at=(1, 2))
    asked = []
    app = make_app(engine, gpu_probe=lambda d: asked.append(d))
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _monitor(pilot, engine)
        line = screen.query_one(GpuLine)
        line.sample()
        await wait_for(pilot, lambda: line.display and "RAM" in screen_text(app))
        text = screen_text(app)
        assert re.search(r"CPU (\d+%|-) of \d+ cores  RAM \d+", text) and "GPU" not in text
        assert asked == []  # no GPU probe for a CPU run
        engine.release()
        await wait_for(pilot, lambda: app.session.done)
        line.sample()
        assert not line.display  # the run has ended


def test_run_app_quits_on_sigterm_without_private_names(monkeypatch, tmp_path):
    """SIGTERM inside the running loop reaches app.exit (was app._loop)."""
    import asyncio
    import os

    from damtui.tui import app as app_module

    exited = []

    def fake_run(self):
        async def main():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(50):
                await asyncio.sleep(0.01)
                if exited:
                    return

        asyncio.run(main())

    monkeypatch.setattr(app_module.DamtuiApp, "run", fake_run)
    monkeypatch.setattr(app_module.DamtuiApp, "exit", lambda self, *a, **k: exited.append(True))
    app_module.run_app(tmp_path / "runs", tmp_path / "data")
    assert exited == [True]


def _trashed(runs_dir: Path, name: str, epochs_done: int) -> None:
    from damtui.store import trash

    make_run(runs_dir, name, epochs_done=epochs_done)
    trash.delete_run(runs_dir / name)


async def _open_trash(pilot) -> None:
    """The palette's Trash, listed."""
    from damtui.tui.screens.trash import TrashScreen

    await settle(pilot)
    pilot.app.action_trash()
    screen = pilot.app.screen
    assert isinstance(screen, TrashScreen)
    await wait_for(pilot, lambda: screen.loaded)


@pytest.mark.slow
async def test_the_trash_restores_a_deleted_run(make_app, runs_dir):
    """Issue 26: restoring from the trash, from the palette's Trash with U."""
    _trashed(runs_dir, A, epochs_done=2)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_trash(pilot)
        assert A in screen_text(app) and "U Restore" in screen_text(app).splitlines()[-1]
        await pilot.press("U")
        await wait_for(pilot, lambda: (runs_dir / A).is_dir())
        await wait_for(pilot, lambda: "the trash is empty" in screen_text(app))
        assert runs.load_run(runs_dir / A).info.epochs_done == 2


@pytest.mark.slow
async def test_notes_are_edited_from_the_run_page(make_app, runs_dir):
    """Issue 26: editing notes (and tags, the name) from the run page, not only from the list."""
    make_run(runs_dir, A, epochs_done=3)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _runs(pilot)
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, RunViewScreen)
        await wait_for(pilot, lambda: view.record is not None)
        await pilot.press("T")
        assert isinstance(app.screen, NotesScreen)
        app.screen.query_one("#notes-tags", Input).value = "keep"
        app.screen.query_one("#notes-text", TextArea).text = "the one to beat"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "#keep · the one to beat" in screen_text(app))
        assert app.screen is view and run_notes.load_notes(runs_dir / A).tags == ("keep",)
        del screen


@pytest.mark.slow
async def test_the_trash_shows_a_hostile_folder_name_as_text(make_app, runs_dir):
    """Issue 28 on a screen issue 26 added: a trashed folder named like markup is listed as typed
    (a DataTable cell read it as markup: the link vanished and would act when clicked)."""
    name = "[@click=app.quit]x[bold]y"  # a folder name holds no '/', so no closing tag
    _trashed(runs_dir, name, epochs_done=1)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_trash(pilot)
        await wait_for(pilot, lambda: name in screen_text(app))
        assert app.is_running
