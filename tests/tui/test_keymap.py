"""One keymap, reviewed as a whole (issue 26 items 8 and 17): `? Help` is built from the bindings
themselves, so every key of every screen is in it, and the keys keep the one rule it states."""

from __future__ import annotations

import pytest
from fakes import screen_text, settle

from damtui.tui import keymap
from damtui.tui.app import DamtuiApp
from damtui.tui.screens.help import HelpScreen, help_text, sections


def _display(binding) -> str:
    return DamtuiApp().get_key_display(binding)


def test_acting_keys_are_capitals_and_a_small_letter_means_one_thing():
    """Item 8: x cancel/mistakes, c compare/curves, g group/chart, b browse/benchmark, l log/label/back,
    s start/sort, t tags/split, e rename/export each meant two things."""
    entries = keymap.keymap(sections(DamtuiApp), _display)
    acting = [(title, k) for title, keys in entries for k in keys if k.action in keymap.ACTING]
    assert {k.action for _, k in acting} == set(keymap.ACTING)  # every acting action has a key
    for title, k in acting:
        assert all(part.isupper() for part in k.key.split(",")), (title, k)
    for letter, actions in keymap.letters(entries).items():
        if letter.islower():
            assert len(actions) == 1, (letter, actions)
    # escape goes back (or out of a text box first) on every screen that binds it
    backs = {k.action for title, keys in entries if title != "Dialogs" for k in keys if k.key == "escape"}
    assert backs <= {"back", "app.pop_screen", "leave"}


def test_help_lists_every_key_of_every_screen():
    """Item 17: help omitted c Curves, x Mistakes, b Browse, the browser's keys, compare's [ ] and b,
    ctrl+s in the notes dialog."""
    app = DamtuiApp()
    text = help_text(app)
    assert keymap.RULE in text
    for title, keys in keymap.keymap(sections(DamtuiApp), app.get_key_display):
        line = next(line for line in text.splitlines() if line.startswith(f"- **{title}**"))
        for k in keys:
            assert f"`{k.keys}` {k.description}" in line, (title, k)
    for needle in ("`p` ROC/PR", "`x` Mistakes", "`i` Images", "`t` Split", "`[ ]` Metric", "`^s` Save",
                   "`U` Restore", "`f` Columns", "`y` Log y-axis"):
        assert needle in text


@pytest.mark.slow
async def test_help_opens_with_the_rule_on_top(make_app):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = " ".join(screen_text(app).split())
        assert "Small letters look, capitals act." in text
        assert "esc Close" in screen_text(app).splitlines()[-1]  # its own keys, not the launch screen's
