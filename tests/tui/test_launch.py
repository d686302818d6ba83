"""Launch screen: dataset states, stage/preset/device pickers, editable values, start."""

from __future__ import annotations

import pytest

from pathlib import Path

from fakes import FakeEngine, make_run, screen_text, settle, wait_for
from textual.widgets import DataTable, Input, Select, Static

from damtui.store import runs
from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen


def _options(select: Select) -> list[str]:
    return [str(value) for _, value in select._options if value is not Select.NULL]


async def test_datasets_listed_with_state(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#datasets", DataTable)
        flags = [str(k.value) for k in table.rows]
        assert flags[:2] == ["synthetic2d", "synthetic3d"]
        assert "breastmnist" in flags and "nodulemnist3d" in flags
        row = table.get_row("synthetic2d")
        assert str(row[1]) == "synthetic" and row[2] == "2D" and row[4] == "800"
        row = table.get_row("breastmnist")
        assert str(row[1]) == "missing" and row[2] == "2D" and row[4] == "546"
        assert table.get_row("nodulemnist3d")[2] == "3D"
        text = screen_text(app)
        assert "train 800 / val 200 / test 200" in text


async def test_present_dataset_shows_share_of_label_one(make_app, tmp_path):
    from damtui.data import datasets

    datasets.write_synthetic("synthetic2d", tmp_path / "data" / "synthetic2d.npz")
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        row = app.screen.query_one("#datasets", DataTable).get_row("synthetic2d")
        assert row[3].endswith("%") and row[3] != "-"
        assert "label 1:" in screen_text(app)


@pytest.mark.slow
async def test_presets_filtered_by_dataset_and_stage(make_app):
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        preset = screen.query_one("#preset", Select)
        assert _options(preset) == ["any-pretrain-demo"]
        assert preset.value == "any-pretrain-demo"
        # breastmnist: its own preset first, the any-dataset one too, default = report
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=table.get_row_index("breastmnist"))
        await pilot.pause()
        assert _options(preset) == ["breastmnist-pretrain-report", "any-pretrain-demo"]
        assert preset.value == "breastmnist-pretrain-report"
        assert screen.query_one("#field-epochs", Input).value == "100"
        screen.query_one("#stage", Select).value = "finetune"
        await pilot.pause()
        assert _options(preset) == ["any-finetune-demo"]
        assert screen.query_one("#field-optimizer", Input).value == "pesg"


async def test_finetune_offers_finished_pretrain_runs_of_the_dataset(make_app, runs_dir):
    good = make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    make_run(
        runs_dir,
        "20240601-130000-synthetic2d-pretrain-bbbbbb",
        epochs_done=2,
        state=runs.CANCELLED,
        started=1717246800.0,
    )
    make_run(
        runs_dir,
        "20240601-140000-breastmnist-pretrain-cccccc",
        epochs_done=6,
        dataset="breastmnist",
        started=1717250400.0,
    )
    engine = FakeEngine()
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert not screen.query_one("#from-row").display
        screen.query_one("#stage", Select).value = "finetune"
        await pilot.pause()
        assert screen.query_one("#from-row").display
        source = screen.query_one("#from-run", Select)
        assert _options(source) == [str(good)]
        assert source.value == str(good)
        assert "aaaaaa · seed 0 · 0.830" in screen_text(app)
        source.focus()
        await pilot.press("enter")  # the picker's list: a prompt first, never "no finished pretrain run"
        await pilot.pause()
        listed = screen_text(app)
        assert "choose a pretrain run" in listed and "no finished pretrain run" not in listed
        await pilot.press("escape")
        screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: engine.returned.is_set())
        assert engine.calls[0]["from_run"] == Path(good)
        assert engine.calls[0]["config"].stage == "finetune"


@pytest.mark.slow
async def test_invalid_edit_shows_error_at_the_field_and_blocks_start(make_app):
    engine = FakeEngine()
    app = make_app(engine)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        screen = app.screen
        screen.query_one("#field-epochs", Input).value = "two"
        screen.query_one("#field-lr", Input).value = "-0.1"
        await pilot.pause()
        assert "valid integer" in str(screen.query_one("#error-epochs").render())
        assert "greater than 0" in str(screen.query_one("#error-lr").render())
        assert str(screen.query_one("#error-batch_size").render()) == ""
        assert screen.query_one("#field-lr").has_class("-invalid")
        screen.query_one("#datasets").focus()
        await pilot.press("S")
        await pilot.pause()
        assert isinstance(app.screen, LaunchScreen)
        assert "✗ epochs" in str(screen.query_one("#launch-error").render())
        assert engine.calls == []
        # fix the values: the overrides reach the engine, validated and typed
        screen.query_one("#field-epochs", Input).value = "2"
        screen.query_one("#field-lr", Input).value = "5e-2"
        screen.query_one("#field-milestones", Input).value = "[0.5]"
        await pilot.pause()
        assert str(screen.query_one("#error-epochs").render()) == ""
        screen.query_one("#start").press()
        await wait_for(pilot, lambda: engine.returned.is_set())
        cfg = engine.calls[0]["config"]
        assert (cfg.epochs, cfg.lr, cfg.milestones, cfg.dataset) == (2, 0.05, [0.5], "synthetic2d")


async def test_missing_dataset_is_not_started(make_app):
    engine = FakeEngine()
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#datasets", DataTable)
        table.move_cursor(row=table.get_row_index("breastmnist"))
        await pilot.pause()
        await pilot.press("S")
        # the error box, not the screen: a long data root wraps the command at any word
        error = app.screen.query_one("#launch-error")
        await wait_for(pilot, lambda: "damtui datasets fetch breastmnist" in str(error.render()))
        assert isinstance(app.screen, LaunchScreen)
        assert engine.calls == []


@pytest.mark.slow
async def test_the_data_root_is_shown_and_named_in_the_fetch_command(make_app, tmp_path):
    engine = FakeEngine()
    app = make_app(engine)
    data = tmp_path / "nodata"
    app.data_root = data
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen

        def shown(widget_id: str) -> str:
            return str(screen.query_one(widget_id, Static).content)

        assert shown("#data-root") == f"data root: {data} (no such folder)"
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=table.get_row_index("breastmnist"))
        await pilot.pause()
        fetch = f"damtui datasets fetch breastmnist --data-root {data}"
        from damtui.tui.format import fit_path

        detail = shown("#dataset-detail")  # the folder fits the pane (no path broken mid-name), F fetches
        assert f"not in {fit_path(data, 36)}\nF fetches it" in detail and all(
            len(line) <= 44 for line in detail.splitlines())
        await pilot.press("S")
        await pilot.pause()
        assert shown("#launch-error") == f"✗ breastmnist is missing from {data}: `{fetch}` first"
        assert engine.calls == []
        data.mkdir()
        await pilot.press("ctrl+r")  # recheck
        await settle(pilot)
        assert shown("#data-root") == f"data root: {data}"


async def test_device_picker_and_start_passes_device(make_app):
    engine = FakeEngine()
    app = make_app(
        engine, devices=lambda: [("auto", "auto"), ("cpu", "cpu"), ("cuda:0", "cuda:0 H100")]
    )
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        device = app.screen.query_one("#device", Select)
        assert _options(device) == ["auto", "cpu", "cuda:0"]
        device.value = "cpu"
        await pilot.pause()
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: engine.returned.is_set())
        assert engine.calls[0]["device"] == "cpu"


@pytest.mark.slow
async def test_pickers_set_from_code_post_no_changed_message(make_app):
    """A stage change sets the preset picker from code. Its Select.Changed, handled after the
    user's next edit, used to reset the form (a fine-tune ran the preset's epochs, not the typed
    ones): the screen now prevents those messages, so only the user's own change is seen."""
    seen: list[str] = []

    def hook(message) -> None:
        if isinstance(message, Select.Changed):
            seen.append(message.select.id or "")

    app = make_app()
    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await settle(pilot)
        screen = app.screen
        seen.clear()
        screen.query_one("#stage", Select).value = "finetune"  # as the user picks it
        await settle(pilot)
        assert screen.query_one("#preset", Select).value == "any-finetune-demo"
        assert set(seen) == {"stage"}
        screen.query_one("#field-epochs", Input).value = "1"
        await settle(pilot)
        assert screen.query_one("ConfigForm").result().epochs == 1


async def test_a_picked_preset_and_its_edits_survive_a_dataset_change(make_app, tmp_path, monkeypatch):
    """The user's own preset choice carries over to a dataset that has it; the default does not."""
    presets = tmp_path / "presets"
    presets.mkdir()
    for path in Path(__file__).with_name("presets").glob("*.toml"):
        (presets / path.name).write_text(path.read_text())
    report = (presets / "breastmnist-pretrain-report.toml").read_text()
    (presets / "breastmnist-pretrain-tuned.toml").write_text(report.replace("epochs = 100", "epochs = 60"))
    (presets / "any-pretrain-tuned.toml").write_text(
        report.replace('dataset = "breastmnist"', 'dataset = "*"').replace("epochs = 100", "epochs = 40"))
    from damtui import config

    monkeypatch.setattr(config, "SHIPPED_PRESETS", presets)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        table = screen.query_one("#datasets", DataTable)
        table.move_cursor(row=table.get_row_index("breastmnist"))
        await pilot.pause()
        preset = screen.query_one("#preset", Select)
        assert preset.value == "breastmnist-pretrain-report"  # the dataset's default
        preset.value = "breastmnist-pretrain-tuned"  # as the user picks it
        await pilot.pause()
        screen.query_one("#field-lr", Input).value = "0.005"
        await pilot.pause()
        table.move_cursor(row=table.get_row_index("synthetic2d"))
        await pilot.pause()
        assert preset.value == "any-pretrain-tuned"
        assert screen.query_one("#field-lr", Input).value == "0.005"
        assert screen.query_one("#field-epochs", Input).value == "40"


@pytest.mark.slow
async def test_a_missing_dataset_is_fetched_from_the_app(make_app, monkeypatch, tmp_path):
    """Issue 26 item 16: the app could not fetch a dataset; `F` asks, then fetches in a worker."""
    from damtui.data import datasets
    from damtui.tui.screens.dialogs import ConfirmScreen

    fetched = []
    monkeypatch.setattr(datasets, "fetch", lambda flag, root=None: fetched.append((flag, root)))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#datasets", DataTable)
        footer = lambda: screen_text(app).splitlines()[-1]  # noqa: E731
        assert "F Fetch data" not in footer() and "i Images" in footer()  # synthetic2d: nothing to fetch
        table.move_cursor(row=table.get_row_index("breastmnist"))
        await wait_for(pilot, lambda: "F Fetch data" in footer())
        assert "i Images" not in footer()  # a missing file has no images to browse
        await pilot.press("F")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "A file already there is never replaced" in " ".join(screen_text(app).split())
        await pilot.press("y")
        await wait_for(pilot, lambda: fetched)
        assert fetched == [("breastmnist", tmp_path / "data")]


@pytest.mark.slow
async def test_the_browser_of_an_unreadable_dataset_offers_only_back(make_app):
    """Issue 26 item 16: the browser's footer offered keys that do nothing there."""
    from damtui.tui.screens.dataset_view import DatasetScreen

    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.push_screen(DatasetScreen("breastmnist"))  # missing from the data root
        await wait_for(pilot, lambda: "fetch" in screen_text(app).lower())
        await pilot.pause()
        footer = screen_text(app).splitlines()[-1]
        assert "Split" not in footer and "Label" not in footer and "Slice" not in footer
        assert "esc Back" in footer or "? Help" in footer
