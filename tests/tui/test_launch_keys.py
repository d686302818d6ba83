"""Launch form keys: Tab from Device lands on the first value, Enter moves on (and starts on the
last value), Escape leaves the values, and the focused field is plainly marked."""

from __future__ import annotations

import pytest

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
        await pilot.press("s")  # a text field takes the letter
        assert app.focused.value.endswith("s") and isinstance(app.screen, LaunchScreen)
        await pilot.press("backspace", "escape")
        assert app.focused.id == "start"
        await pilot.press("s")  # out of the field, s starts
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
