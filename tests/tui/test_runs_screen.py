"""Runs screen: listing, statuses, ignored entries, sort, filter, open, follow live, resume."""

from __future__ import annotations

import pytest

import json

from fakes import (
    STARTED,
    drawn,
    flat_text,
    make_run,
    metrics_row,
    read_json,
    screen_text,
    set_status,
    wait_for,
)
from textual.widgets import DataTable, Input

from damtui.store import runs
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.screens.runs import COLUMNS, RunsScreen, matches, sort_runs
from damtui.tui.widgets.epoch_table import EpochTable

DEAD_PID = 99_999_999  # above any pid_max: never alive


def _fill(root):
    make_run(root, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    make_run(
        root,
        "20240601-130000-breastmnist-pretrain-bbbbbb",
        epochs_done=3,
        state=runs.CANCELLED,
        dataset="breastmnist",
        started=STARTED + 3600,
    )
    make_run(
        root,
        "20240601-140000-synthetic2d-finetune-cccccc",
        epochs_done=2,
        state=runs.RUNNING,
        stage="finetune",
        started=STARTED + 7200,
        pid=DEAD_PID,
    )
    make_run(
        root,
        "20240601-150000-synthetic2d-pretrain-dddddd",
        epochs_done=4,
        state=runs.FAILED,
        started=STARTED + 10800,
        wobble=0.05,
    )
    (root / "notes.txt").write_text("not a run")
    (root / "scratch").mkdir()


async def _open_runs(pilot):
    await pilot.press("r")
    screen = pilot.app.screen
    assert isinstance(screen, RunsScreen)
    await wait_for(pilot, lambda: screen.loaded)
    return screen


def _ids(screen) -> list[str]:
    return [r.run_id[-6:] for r in screen.shown]


async def test_runs_listed_with_status_and_ignored_entries(make_app, runs_dir):
    _fill(runs_dir)
    app = make_app()
    async with app.run_test(size=(220, 30)) as pilot:  # wide: the info line names the (long) tmp path
        screen = await _open_runs(pilot)
        assert _ids(screen) == ["dddddd", "cccccc", "bbbbbb", "aaaaaa"]  # newest first
        await drawn(pilot, "ignored 2")
        text = screen_text(app)
        assert "! crashed" in text and "■ cancelled" in text and "✗ failed" in text
        assert "✓ finished" in text
        assert "6/6" in text and "0.8300" in text and "2024-06-01 12:00" in text
        assert "ignored 2 non-run entries: notes.txt, scratch" in text


@pytest.mark.slow
async def test_sort_and_filter(make_app, runs_dir):
    _fill(runs_dir)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_runs(pilot)
        await pilot.press("s")  # the column after "started"
        assert screen.sort_column == "preset"
        await pilot.press("s", "s", "s")  # tags, round to the run's name, then dataset (ascending)
        assert screen.sort_column == "dataset" and not screen.descending
        assert _ids(screen)[0] == "bbbbbb"
        await pilot.press("z")  # reverse
        assert _ids(screen)[-1] == "bbbbbb"
        screen.sort_column, screen.descending = "val_auc", True
        screen._draw()
        assert _ids(screen)[0] == "dddddd"  # wobble +0.05
        await pilot.press("slash")
        assert screen.query_one("#runs-filter", Input).has_focus
        await pilot.press(*"synthetic2d pretrain")
        assert sorted(_ids(screen)) == ["aaaaaa", "dddddd"]
        screen.query_one("#runs-filter", Input).value = "status:crashed"
        await pilot.pause()
        assert _ids(screen) == ["cccccc"]
        await pilot.press("escape")  # clears the filter, back to the table
        assert len(screen.shown) == 4
        assert screen.query_one("#runs-table", DataTable).has_focus


def test_matches_and_sort_helpers(runs_dir):
    _fill(runs_dir)
    found, ignored = runs.list_runs(runs_dir)
    assert sorted(ignored) == ["notes.txt", "scratch"]
    assert [r.run_id[-6:] for r in found if matches(r, "breast")] == ["bbbbbb"]
    assert [r.run_id[-6:] for r in found if matches(r, "stage:fine")] == ["cccccc"]
    assert not [r for r in found if matches(r, "dataset:chest")]
    assert [r.run_id[-6:] for r in sort_runs(found, "epochs", True)][0] == "aaaaaa"


@pytest.mark.slow
async def test_open_a_run_shows_charts_and_epochs(make_app, runs_dir):
    _fill(runs_dir)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=3)  # aaaaaa
        await pilot.press("enter")
        assert isinstance(app.screen, RunViewScreen)
        await pilot.pause()
        view = app.screen
        assert view.query_one(EpochTable).row_count == 6
        assert str(view.query_one(EpochTable).get_row("3")[0]).strip() == "3*"
        text = screen_text(app)
        assert "best val AUC 0.8300 @ ep 3: tAUC 0.8100 tACC 0.7500 tACC@thr 0.7700" in text
        assert "following" not in text
        await pilot.press("escape")
        assert app.screen is screen


@pytest.mark.slow
async def test_run_written_by_another_process_appears_live(make_app, runs_dir):
    """Rows appended with RunWriter while the screen is open show up without reopening."""
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = await _open_runs(pilot)
        assert screen.shown == []
        # "another process" starts a run: it appears in the list at the next refresh
        writer = runs.RunWriter.create(
            runs_dir,
            {
                "dataset": "synthetic2d",
                "stage": "pretrain",
                "preset": "any-pretrain-demo",
                "epochs": 5,
                "seed": 0,
            },
            {"device": "cpu"},
        )
        await wait_for(pilot, lambda: len(screen.shown) == 1)
        assert screen.shown[0].status == runs.RUNNING
        await pilot.press("enter")
        view = app.screen
        assert isinstance(view, RunViewScreen)
        table = view.query_one(EpochTable)
        assert table.row_count == 0
        assert "● following live" in screen_text(app)
        for epoch in (1, 2, 3):
            writer.append_metrics(metrics_row(epoch))
            writer.write_status(runs.RUNNING, epoch, 5)
            await wait_for(pilot, lambda: table.row_count == epoch)
        assert str(table.get_row("3")[0]).strip() == "3*"
        # a torn line (a write in progress) is not shown until it is complete
        with open(writer.path / runs.METRICS, "ab") as fh:
            fh.write(b'{"epoch": 4, "val_auc"')
        await pilot.pause(0.3)
        assert table.row_count == 3
        with open(writer.path / runs.METRICS, "ab") as fh:
            fh.write(b': 0.9, "test_auc": 0.88}\n')
        await wait_for(pilot, lambda: table.row_count == 4)
        writer.write_status(runs.FINISHED, 4, 5)
        await wait_for(pilot, lambda: not view.following)
        assert "✓ finished" in screen_text(app)
        assert "following" not in screen_text(app)
        assert "best val AUC 0.9000 @ ep 4" in screen_text(app)


@pytest.mark.slow
async def test_crashed_run_is_explained(make_app, runs_dir):
    make_run(
        runs_dir,
        "20240601-140000-synthetic2d-finetune-cccccc",
        epochs_done=2,
        state=runs.RUNNING,
        stage="finetune",
        pid=DEAD_PID,
    )
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_runs(pilot)
        await pilot.press("enter")
        await pilot.pause()
        assert "! crashed: the process writing this run is gone" in screen_text(app)


async def test_refresh_keeps_cursor_and_selection(make_app, runs_dir):
    _fill(runs_dir)
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        table.move_cursor(row=2)
        await pilot.press("space")
        assert screen.selected == ["20240601-130000-breastmnist-pretrain-bbbbbb"]
        assert table.cursor_row == 2  # space selects; the cursor stays
        make_run(
            runs_dir,
            "20240601-160000-synthetic2d-pretrain-eeeeee",
            epochs_done=1,
            started=STARTED + 14400,
        )
        set_status(
            runs_dir / "20240601-160000-synthetic2d-pretrain-eeeeee",
            runs.FINISHED,
            1,
            6,
            STARTED + 14400,
            STARTED + 14460,
        )
        await wait_for(pilot, lambda: len(screen.shown) == 5)
        assert screen.current_run_id().endswith("bbbbbb")  # the same run, one row lower
        assert table.cursor_row == 3
        assert screen.selected == ["20240601-130000-breastmnist-pretrain-bbbbbb"]
        assert "✓" in str(table.get_row("20240601-130000-breastmnist-pretrain-bbbbbb")[0])


@pytest.mark.slow
async def test_resume_a_cancelled_run_from_its_view(make_app, runs_dir):
    from fakes import FakeEngine

    from damtui.tui.screens.monitor import MonitorScreen

    path = make_run(
        runs_dir,
        "20240601-130000-synthetic2d-pretrain-bbbbbb",
        epochs_done=2,
        state=runs.CANCELLED,
        epochs=4,
    )
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_runs(pilot)
        await pilot.press("enter")
        assert isinstance(app.screen, RunViewScreen)
        await pilot.press("R")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        await pilot.pause()
        assert engine.calls[0]["resume"] == path
        assert engine.calls[0]["config"].epochs == 4
        assert [r.epoch for r in app.session.rows] == [1, 2, 3, 4]  # epochs 1-2 read from disk
        assert app.screen.query_one(EpochTable).row_count == 4
        assert runs.load_run(path).info.status == runs.FINISHED


@pytest.mark.slow
async def test_finished_run_is_extended_not_resumed(make_app, runs_dir):
    """R on a finished run's page asks for the new epoch count (tests/tui/test_resume.py)."""
    from damtui.tui.screens.dialogs import EpochsScreen

    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await _open_runs(pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: "R Extend" in screen_text(app))
        assert "R Resume" not in screen_text(app)
        await pilot.press("R")
        assert isinstance(app.screen, EpochsScreen)
        await pilot.press("escape")
        assert isinstance(app.screen, RunViewScreen)


def _damage(root):
    """A good run and two damaged ones: a bad middle metrics line, a status with pid 'abc'."""
    import socket

    make_run(root, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    bad_line = make_run(
        root,
        "20240601-130000-synthetic2d-pretrain-bbbbbb",
        epochs_done=4,
        state=runs.CANCELLED,
        started=STARTED + 3600,
    )
    lines = (bad_line / runs.METRICS).read_text().splitlines(keepends=True)
    (bad_line / runs.METRICS).write_text("".join([lines[0], "{not json\n", *lines[1:]]))
    bad_pid = make_run(
        root,
        "20240601-140000-synthetic2d-pretrain-cccccc",
        epochs_done=2,
        state=runs.CANCELLED,
        started=STARTED + 7200,
    )
    status = read_json(bad_pid / runs.STATUS)
    status.update(state=runs.RUNNING, pid="abc", host=socket.gethostname())
    (bad_pid / runs.STATUS).write_text(json.dumps(status))
    return bad_line, bad_pid


def _tree(path):
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.mark.slow
async def test_damaged_runs_list_with_the_reason_and_are_not_resumed(make_app, runs_dir):
    from fakes import FakeEngine

    bad_line, bad_pid = _damage(runs_dir)
    before = {p: _tree(p) for p in (bad_line, bad_pid)}
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(160, 30)) as pilot:
        screen = await _open_runs(pilot)
        status = {r.run_id[-6:]: r.status for r in screen.shown}
        assert status == {"aaaaaa": runs.FINISHED, "bbbbbb": runs.DAMAGED, "cccccc": runs.DAMAGED}
        text = screen_text(app)
        assert "✓ finished" in text and "6/6" in text and "0.8300" in text  # the good run
        assert text.count("⊘ damaged") == 2 and "Traceback" not in text
        table = screen.query_one("#runs-table", DataTable)
        assert text.count("  -  ") >= 2  # no epoch counts for a damaged run (not "0/0")
        reasons = {
            bad_line.name: "metrics.jsonl line 2: not a JSON object",
            bad_pid.name: "status.json: 'pid' is \"abc\", not an integer",
        }
        for run_id, reason in reasons.items():
            table.move_cursor(row=[r.run_id for r in screen.shown].index(run_id))
            await pilot.pause()
            assert reason in flat_text(app)
            await pilot.press("enter")
            view = app.screen
            assert isinstance(view, RunViewScreen)
            await pilot.pause()
            text = flat_text(app)
            assert "⊘ damaged" in text and reason in text and "not resumed" in text
            assert "Traceback" not in text
            await pilot.press("R")
            await pilot.pause()
            assert app.screen is view and not engine.calls  # refused: nothing started
            assert "R Resume" not in screen_text(app)
            await pilot.press("escape")
            assert app.screen is screen
    assert {p: _tree(p) for p in (bad_line, bad_pid)} == before  # nothing rewritten



@pytest.mark.slow
async def test_time_column_counts_training_not_the_hours_between(make_app, runs_dir, monkeypatch):
    """Cancelled after 2 minutes, resumed five hours later for one more: the list says 3:00."""
    clock = [STARTED]
    with monkeypatch.context() as m:
        m.setattr(runs.time, "time", lambda: clock[0])
        w = runs.RunWriter.create(runs_dir, {"dataset": "synthetic2d", "stage": "pretrain",
                                             "preset": "any-pretrain-demo", "epochs": 3, "seed": 0},
                                  {"device": "cpu"})
        for epoch in (1, 2):
            clock[0] += 60
            w.append_metrics(metrics_row(epoch))
        w.write_status(runs.CANCELLED, 2, 3, "cancelled by user")
        w.close()
        clock[0] += 5 * 3600
        w = runs.RunWriter.reopen(w.path, 3, 2)
        clock[0] += 60
        w.append_metrics(metrics_row(3))
        w.write_status(runs.FINISHED, 3, 3)
        w.close()
    app = make_app()
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await _open_runs(pilot)
        table = screen.query_one("#runs-table", DataTable)
        time_column = [c[0] for c in COLUMNS].index("duration")
        assert str(table.get_row(w.run_id)[time_column]).strip() == "3:00"
        await pilot.press("enter")
        await wait_for(pilot, lambda: "time 3:00" in screen_text(app))
