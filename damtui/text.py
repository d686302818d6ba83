"""Text from a run folder, made safe to show: nothing a user or a copied folder wrote is ever read
as markup or as terminal control.

Run names, display names, tags, notes, status messages, paths and log lines can hold anything: a
folder named `[@click=app.quit]x` would be an action in Textual, `[link=...]` a live hyperlink in
Rich, `[/]` a MarkupError, and ESC/BEL sequences retitle or clear the user's terminal. Front ends
pass such text through `shown` (printed plain: control characters made visible) or `markup`
(also escaped, for a string that Rich or Textual parses as markup). Pure: no rich, no textual.
"""

from __future__ import annotations

import re

_PICTURES = {c: chr(0x2400 + c) for c in range(0x20)} | {0x7F: "\u2421"}  # ␀..␟, ␡
_TOUCHING = re.compile(r"\\(?=\[|\Z)")  # a backslash that would escape what follows it
BACKSLASH = "\u29f5"  # ⧵, shown for such a backslash: it looks the same and escapes nothing


def _visible(ch: str) -> str:
    code = ord(ch)
    if code in _PICTURES:
        return _PICTURES[code]
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(text: object, lines: bool = False) -> str:
    """`text` with every control or invisible formatting character (ESC, BEL, C1 codes, bidi
    overrides) shown as a visible picture or escape, so printing it cannot steer the terminal;
    newlines and tabs stay when `lines` (multi-line notes, a whole table), else they are shown too."""
    s = str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or (lines and ch in "\n\t") else _visible(ch) for ch in s)


def escape(text: str) -> str:
    """Markup-escape `text` for both Rich and Textual: every `[` becomes `\\[`, which both read as
    a plain bracket (they differ on which brackets open a tag, so none is left to either). A
    backslash of the text's own that touches a bracket or ends it (where it would escape a
    bracket of the markup around it, and the parsers disagree on doubled backslashes) is shown
    as the look-alike BACKSLASH."""
    return _TOUCHING.sub(BACKSLASH, text).replace("[", "\\[")


def markup(text: object, lines: bool = False) -> str:
    """`text` for a Rich or Textual markup string: control characters visible, markup escaped."""
    return escape(shown(text, lines))
