"""Editable preset values; every edit is checked by the same schema as preset files and --set.

The error for a field appears right under it. `result()` returns the validated Config.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.events import Key
from textual.message import Message
from textual.widgets import Input, Label, Static

from damtui import config as cfgmod
from damtui.errors import DamtuiError
from damtui.text import markup
from damtui.tui.format import error_for_key, value_text

FIXED = ("preset", "dataset", "stage", "description", "source")  # chosen by pickers / read-only
EDITABLE = [k for k in cfgmod.Config.model_fields if k not in FIXED]
OPTIONAL = {
    k for k, f in cfgmod.Config.model_fields.items() if f.default is None and not f.is_required()
}


def parse_field(key: str, text: str) -> Any:
    """Editor text -> value: TOML literal (1e-3, true, [0.5, 0.75]); empty or 'none' -> None."""
    text = text.strip()
    if text.lower() in ("", "none", "null"):
        return None
    return cfgmod.parse_value(text)


class FieldInput(Input):
    """A value's input. Textual routes keys typed fast before the ones before them are handled, so
    `3 enter 9` all reach this field: enter moves the focus on here and now (not through the app's
    bindings, after the queued keys), and a key that arrives once the focus has moved goes on to
    the field that has it (it gave `39`)."""

    def on_key(self, event: Key) -> None:
        focused = self.screen.focused  # (has_focus follows a turn later, with the Blur event)
        if event.key == "enter" and focused is self:
            event.prevent_default()
            event.stop()
            self.query_ancestor(ConfigForm).advance(self)
        elif event.is_printable and focused is not None and focused is not self:
            event.prevent_default()
            event.stop()
            focused.post_message(Key(event.key, event.character))


class ConfigForm(VerticalScroll):
    """One row per editable key: name, value input, error line. Not a focus stop itself (Tab goes
    from the pickers straight to the first value); Enter moves to the next value and, on the last,
    asks to start (Submitted); Escape leaves the values (Left)."""

    can_focus = False
    BINDINGS = [Binding("escape", "leave", "Leave values")]

    DEFAULT_CSS = """
    ConfigForm { height: 1fr; }
    ConfigForm .field { height: 1; }
    ConfigForm .field Label { width: 16; }
    ConfigForm .field Input { width: 1fr; }
    ConfigForm .field-error { display: none; padding-left: 16; }
    ConfigForm .field-error.-shown { display: block; }
    """

    class Changed(Message):
        """The edits changed; `error` is the first problem ('' when the config is valid)."""

        def __init__(self, form: ConfigForm, edits: dict[str, Any], error: str) -> None:
            super().__init__()
            self.form = form
            self.edits = edits
            self.error = error

    class Submitted(Message):
        """Enter in the last value: the user is done editing."""

    class Left(Message):
        """Escape in a value: focus should leave the form."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.base: cfgmod.Config | None = None
        self.edits: dict[str, Any] = {}
        self.field_errors: dict[str, str] = {}

    def compose(self) -> ComposeResult:
        for key in EDITABLE:
            with Horizontal(classes="field", id=f"row-{key}"):
                yield Label(key)
                optional = key in OPTIONAL
                # focus selects the value, so typing replaces it (typing 3 into `200` gives 3)
                yield FieldInput(
                    id=f"field-{key}",
                    compact=True,
                    placeholder="stage default" if optional else "",
                )
            yield Static("", id=f"error-{key}", classes="field-error")

    def set_base(self, config: cfgmod.Config | None, keep_edits: bool = True) -> None:
        """Show `config`'s values; edits the user made are kept when they still apply."""
        self.base = config
        if not keep_edits:
            self.edits.clear()
        with self.prevent(Input.Changed):  # values set here are not the user's edits
            for key in EDITABLE:
                inp = self.query_one(f"#field-{key}", Input)
                if key in self.edits:
                    continue
                inp.value = value_text(getattr(config, key)) if config is not None else ""
                inp.cursor_position = len(inp.value)  # not where the last preset's value ended
                inp.disabled = config is None
        self._validate_all()

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.base is None or not (event.input.id or "").startswith("field-"):
            return
        event.stop()
        key = event.input.id.removeprefix("field-")
        base_text = value_text(getattr(self.base, key))
        if event.value.strip() == base_text:
            self.edits.pop(key, None)
        else:
            self.edits[key] = event.value
        self._validate_all()

    def advance(self, field: Input) -> None:
        """Enter in `field`: the next value takes the focus at once; on the last, ask to start."""
        fields = [inp for inp in self.query(Input) if not inp.disabled]
        later = fields[fields.index(field) + 1:] if field in fields else []
        if later:
            self.screen.set_focus(later[0])
        else:
            self.post_message(self.Submitted())

    def action_leave(self) -> None:
        self.post_message(self.Left())

    def _values(self) -> dict[str, Any]:
        return {k: parse_field(k, text) for k, text in self.edits.items()}

    def _validate_all(self) -> None:
        self.field_errors = {}
        if self.base is not None:
            for key, text in self.edits.items():
                try:
                    cfgmod.apply_overrides(self.base, {key: parse_field(key, text)}, where=key)
                except DamtuiError as err:
                    self.field_errors[key] = error_for_key(str(err))[1]
        for key in EDITABLE:
            err = self.field_errors.get(key, "")
            box = self.query_one(f"#error-{key}", Static)
            box.update(f"✗ {markup(err)}" if err else "")  # the message quotes what was typed
            box.set_class(bool(err), "-shown")
            self.query_one(f"#row-{key}").set_class(key in self.edits, "-edited")
            self.query_one(f"#field-{key}", Input).set_class(bool(err), "-invalid")
        self.post_message(self.Changed(self, dict(self.edits), self.error()))

    def error(self) -> str:
        """'' when base + edits is a valid config, else a one-line reason."""
        if self.base is None:
            return "no preset chosen"
        if self.field_errors:
            key, msg = next(iter(self.field_errors.items()))
            return f"{key}: {msg}"
        try:
            cfgmod.apply_overrides(self.base, self._values(), where="edited values")
        except DamtuiError as err:
            return str(err)
        return ""

    def result(self) -> cfgmod.Config:
        """The validated config; raises DamtuiError naming the key when an edit is invalid."""
        if self.base is None:
            raise DamtuiError("choose a preset first")
        if self.field_errors:
            key, msg = next(iter(self.field_errors.items()))
            raise DamtuiError(f"{key}: {msg}")
        return cfgmod.apply_overrides(self.base, self._values(), where="edited values")
