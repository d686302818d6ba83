"""The app's keymap, read from the bindings themselves: `? Help` prints it (screens.help lists the
screens), so help cannot drift from the keys, and a test holds the keys to the one rule a user
learns (RULE)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.binding import Binding

RULE = (
    "**Small letters look, capitals act.** A small letter changes what you see (a chart, a sort, a "
    "filter, another screen) and means the same on every screen that has it. A capital starts, stops "
    "or changes a run or its data: `S` start, `X` cancel, `R` resume or extend, `D` delete, `E` rename, "
    "`T` tags and notes, `F` fetch a dataset, `U` restore from the trash (`L`, the results table, is "
    "the one capital that only shows). `escape` goes back one step: "
    "out of a text box or a filter, then to the screen before. A dialog names the keys that answer it."
)

# the actions that start, stop or change a run or the data: their keys are capitals (RULE)
ACTING = ("start", "cancel_run", "stop_run", "resume", "extend", "delete_run", "rename_run", "edit_notes",
          "fetch", "restore")


@dataclass(frozen=True)
class Key:
    keys: str  # as shown: '[ ]', 'D', '? f1'
    description: str
    action: str
    key: str  # the binding's own key string ('plus,equals_sign')


def key_display(binding: Binding, display: Callable[[Binding], str]) -> str:
    """The binding's key as the footer shows it; every key of a 'question_mark,f1' binding."""
    if binding.key_display:
        return binding.key_display
    parts = [p.strip() for p in binding.key.split(",")]
    return " ".join(display(Binding(p, binding.action)) for p in parts)


def bindings_of(cls: type) -> list[Binding]:
    """The BINDINGS a class declares and inherits from damtui's classes (its mixins and bases),
    its own last; Textual's own (tab, scrolling a table) are left to Textual's docs."""
    out: list[Binding] = []
    for klass in reversed(cls.__mro__):
        if not klass.__module__.startswith("damtui."):
            continue
        for b in vars(klass).get("BINDINGS", []):
            out.append(b if isinstance(b, Binding) else Binding(*b))
    return out


Sections = list[tuple[str, list[type]]]  # (title, the classes whose bindings it lists)


def keymap(sections: Sections, display: Callable[[Binding], str]) -> list[tuple[str, list[Key]]]:
    """(section, keys) for every screen; one entry per action and key."""
    out = []
    for title, classes in sections:
        keys: list[Key] = []
        seen: set[tuple[str, str]] = set()
        for cls in classes:
            for b in bindings_of(cls):
                if (b.key, b.action) in seen or not b.description:
                    continue
                seen.add((b.key, b.action))
                keys.append(Key(key_display(b, display), b.description, b.action, b.key))
        out.append((title, keys))
    return out


def markdown(sections: Sections, display: Callable[[Binding], str], palette: str = "ctrl+p") -> str:
    """The keymap as Markdown: one line per screen, `key` what it does."""
    lines = []
    for title, keys in keymap(sections, display):
        items = [f"`{k.keys}` {k.description}" for k in keys]
        if title == "Everywhere":
            items.append(f"`{palette}` command palette")
        lines.append(f"- **{title}**: " + " · ".join(items))
    return "\n".join(lines)


def letters(entries: Iterable[tuple[str, list[Key]]]) -> dict[str, set[str]]:
    """Each single-letter key outside the dialogs -> the actions it is bound to."""
    out: dict[str, set[str]] = {}
    for title, keys in entries:
        if title == "Dialogs":
            continue
        for k in keys:
            for part in k.key.split(","):
                part = part.strip()
                if len(part) == 1 and part.isalpha():
                    out.setdefault(part, set()).add(k.action)
    return out
