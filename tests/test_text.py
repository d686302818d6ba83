"""damtui.text: run-folder text shown as typed by both Rich and Textual, never markup or control."""

from __future__ import annotations

import random

import pytest
from rich.markup import render
from textual.content import Content

from damtui.text import BACKSLASH, markup, shown

PIECES = [*"[]/\\@=$#abB x1", "[/]", "[@click=app.quit]", "[link=x]", "[b]", "\x1b", "\n", "\\[", "[$accent]",
          "[B]", "\x9b", "\u202e", "\x07"]
WRAPS = ("{}", "[b]{}[/b]", "[b]{}[/]", "{}[b]x[/b]", "[b]x[/b]{}")  # our markup around the text


def _expected(text: str) -> str:
    out = shown(text)
    return "".join(BACKSLASH if ch == "\\" and out[i + 1:i + 2] in ("[", "") else ch for i, ch in enumerate(out))


@pytest.mark.parametrize("seed", range(4))
def test_random_text_reads_as_typed_in_rich_and_textual(seed):
    rng = random.Random(seed)
    for _ in range(500):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        want = _expected(text)
        assert all(ch.isprintable() for ch in want)
        for wrap in WRAPS:
            source = wrap.format(markup(text))
            plain = wrap.replace("[b]", "").replace("[/b]", "").replace("[/]", "").format(want)
            for parsed in (render(source), Content.from_markup(source)):  # neither raises
                assert parsed.plain == plain, (text, wrap)
                assert len(parsed.spans) == wrap.count("[b]"), (text, wrap)  # only our own bold


def test_the_issues_strings():
    assert markup("[@click=app.quit]clickme") == "\\[@click=app.quit]clickme"
    assert markup("a\x1b]0;PWNED\x07\x1b[2Jb") == "a␛]0;PWNED␇␛\\[2Jb"
    assert shown("two\nlines") == "two␊lines" and shown("two\nlines", lines=True) == "two\nlines"
    assert Content.from_markup(markup("[/]")).plain == "[/]" and render(markup("boom [/] [bold]x")).plain == \
        "boom [/] [bold]x"
