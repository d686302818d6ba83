"""Launch form keys: Tab from Device lands on the first value, Enter moves on (and starts on the
last value), Escape leaves the values, and the focused field is plainly marked."""

from __future__ import annotations

import pytest
from textual import events

from fakes import FakeEngine, settle, wait_for
from textual.widgets import Input

from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.widgets.config_form import EDITABLE


@pytest.mark.slow
async def test_tab_enter_escape_in_the_values(make_app):
    engine = FakeEngine()
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one("#device").focus()
        await pilot.press("tab")
        assert app.focused.id == f"field-{EDITABLE[0]}"  # not an invisible stop on the form itself
        label = app.focused.parent.query_one("Label")
        assert "reverse" in str(label.styles.text_style)  # the focused row's name is marked
        await pilot.press("enter")
        assert app.focused.id == f"field-{EDITABLE[1]}"
        await pilot.press("s")  # a text field takes the letter (in place of the selected value)
        assert app.focused.value == "s" and isinstance(app.screen, LaunchScreen)
        await pilot.press("backspace", "3", "2", "escape")
        assert app.focused.id == "start"
        await pilot.press("S")  # out of the field, S starts
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)


@pytest.mark.slow
async def test_enter_in_the_last_value_starts(make_app):
    engine = FakeEngine()
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.screen.query_one(f"#field-{EDITABLE[-1]}", Input).focus()
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done)
        assert len(engine.calls) == 1


async def _tab_to(pilot, widget_id: str) -> None:
    """Press tab until `widget_id` has the focus, as a user walks the form."""
    for _ in range(12):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"tab never reached #{widget_id}")


async def test_typing_into_a_value_replaces_it(make_app):
    """Issue 26 item 1: after a preset with shorter values, epochs `100` + `3` gave `1300`."""
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one("#datasets")
        table.focus()
        table.move_cursor(row=table.get_row_index("breastmnist"))  # report preset: epochs 100, batch 128
        await wait_for(pilot, lambda: app.screen.query_one("#field-epochs", Input).value == "100")
        await _tab_to(pilot, "field-epochs")
        for key, char in (("3", "3"), ("enter", "\r"), ("9", "9")):  # typed fast, as in tmux: no wait
            app.post_message(events.Key(key, char))
        await wait_for(pilot, lambda: app.screen.query_one("#field-batch_size", Input).value == "9")
        assert app.screen.query_one("#field-epochs", Input).value == "3"  # not `39`, not `1003`


async def test_changing_stage_keeps_the_edits(make_app):
    """Issue 26 item 9: a change of stage reset width and epochs without a word."""
    app = make_app()
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await _tab_to(pilot, "field-epochs")
        await pilot.press("2")
        app.screen.query_one("#field-width", Input).focus()  # (20 tabs further down the form)
        await pilot.pause()
        await pilot.press("4")
        app.screen.query_one("#stage").focus()
        await pilot.pause()
        await pilot.press("enter", "down", "enter")  # the stage picker: finetune
        await wait_for(pilot, lambda: app.screen.stage == "finetune")
        await settle(pilot)
        form = app.screen.query_one("#config-form")
        assert form.base.optimizer == "pesg"  # the finetune preset's values under the edits
        assert app.screen.query_one("#field-epochs", Input).value == "2"
        assert app.screen.query_one("#field-width", Input).value == "4"
        assert form.result().epochs == 2 and form.result().width == 4
        assert any("kept your edits to epochs, width" in str(n.message) for n in app._notifications)
