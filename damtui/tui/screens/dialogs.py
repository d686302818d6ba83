"""Modal dialogs: a yes/no confirmation, quitting with a run training, the export-path prompt, the
epochs of an extension."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, SelectionList, Static

from damtui.tui.format import count
from damtui.tui.widgets.key_footer import KeyFooter

from damtui.text import markup


class ConfirmScreen(ModalScreen[bool]):
    """Dismisses with True (y / the yes button) or False (n / escape / the no button)."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str, body: str, yes: str = "Yes", no: str = "No", danger: bool = True) -> None:
        super().__init__()
        self._title, self._body, self._yes, self._no = title, body, yes, no
        self._danger = danger  # the yes button in red (a deletion, a cancel) or as the usual choice

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button(f"{self._yes} (y)", id="yes", variant="error" if self._danger else "primary",
                             compact=True)
                yield Button(f"{self._no} (n)", id="no", variant="primary" if self._danger else "default",
                             compact=True)
        yield KeyFooter()  # the dialog's own keys, not those of the screen below

    def on_mount(self) -> None:
        self.query_one("#no" if self._danger else "#yes", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class QuitScreen(ModalScreen[str | None]):
    """ctrl+q while a run trains: dismisses with "leave" (the default: enter, l, ctrl+q again),
    "stop" (s) or None (stay: escape)."""

    BINDINGS = [
        Binding("l", "answer('leave')", "Leave it running"),
        Binding("s", "answer('stop')", "Stop it"),
        Binding("escape", "answer(None)", "Stay"),
    ]

    def __init__(self, run_id: str, outlives: bool = True) -> None:
        super().__init__()
        self._run_id, self._outlives = run_id, outlives

    def compose(self) -> ComposeResult:
        if self._outlives:
            body = (f"{markup(self._run_id)} trains in its own process. Left running, it trains on after damtui"
                    " closes (an SSH disconnect too) and `damtui` shows it again. Stopped, it finishes its"
                    " batch, is marked cancelled, and R resumes it.")
        else:
            body = f"{markup(self._run_id)} trains inside this app (a test engine): it stops when the app closes."
        with Vertical(classes="dialog"):
            yield Label("Quit damtui while a run trains?", classes="dialog-title")
            yield Static(body, classes="dialog-body")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Leave it running (l)", id="leave", variant="primary", compact=True)
                yield Button("Stop it (s)", id="stop", variant="error", compact=True)
                yield Button("Stay (esc)", id="stay", compact=True)

    def on_mount(self) -> None:
        self.query_one("#leave", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(None if event.button.id == "stay" else event.button.id)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[Any]):
    """Ask for one value: enter or the button checks it (`accept` gives the result, or raises
    ValueError with the message shown under the field); escape dismisses with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self, title: str, body: str, default: str, button: str, input_type: str = "text"
    ) -> None:
        super().__init__()
        self._title, self._body, self._default = title, body, default
        self._button, self._type = button, input_type

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title, classes="dialog-title")
            yield Static(self._body, classes="dialog-body")
            yield Input(self._default, type=self._type, id="prompt-value")  # type: ignore[arg-type]
            yield Static("", id="prompt-error", classes="error-line")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._button, id="ok", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield KeyFooter()

    def accept(self, text: str) -> Any:
        return text

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def _submit(self) -> None:
        try:
            value = self.accept(self.query_one(Input).value.strip())
        except ValueError as err:
            box = self.query_one("#prompt-error", Static)
            box.update(f"✗ {markup(err)}")
            box.add_class("-shown")
            return
        self.dismiss(value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ExportScreen(PromptScreen):
    """Ask for the path stem of the export; dismisses with it, or None on escape."""

    def __init__(self, default: str) -> None:
        super().__init__(
            "Export comparison",
            "Writes PATH.csv and PATH.md (enter to write, escape to cancel).",
            default,
            "Write",
        )

    def accept(self, text: str) -> str:
        if not text:
            raise ValueError("give a path")
        return text


class EpochsScreen(PromptScreen):
    """Ask how many epochs in all a finished run should have; dismisses with a number larger
    than the epochs it has, or None on escape."""

    def __init__(self, run_id: str, done: int) -> None:
        super().__init__(
            f"Extend {markup(run_id)}",
            f"It has finished {count(done, 'epoch')}. Train it on to this many epochs in all,"
            " from its last checkpoint (enter to start, escape to cancel):",
            str(done * 2),
            "Extend",
            input_type="integer",
        )
        self._done = done

    def accept(self, text: str) -> int:
        epochs = int(text) if text.lstrip("-").isdigit() else 0
        if epochs <= self._done:
            raise ValueError(f"give a whole number of epochs above {self._done}")
        return epochs


class ColumnsScreen(ModalScreen[Any]):
    """Choose the runs list's columns: space shows or hides the highlighted one, enter applies
    (dismissing with the keys shown), escape dismisses with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("enter", "apply", "Apply", priority=True)]

    def __init__(self, choices: list[tuple[str, str, bool]]) -> None:
        super().__init__()
        self._choices = choices  # (label, key, shown)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("Columns of the runs list", classes="dialog-title")
            yield Static("space shows or hides a column; enter applies (the run column always shows)",
                         classes="dialog-body")
            yield SelectionList[str](*self._choices, id="columns")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one(SelectionList).focus()

    def action_apply(self) -> None:
        self.dismiss(list(self.query_one(SelectionList).selected))

    def action_cancel(self) -> None:
        self.dismiss(None)
