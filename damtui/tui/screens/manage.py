"""Managing a saved run from the runs list: `d` deletes it (to runs/.trash/, after a dialog that
names the fine-tunes using it as their source), `e` renames it (its display name), `t` edits its
tags and notes. File work happens in workers through damtui.store.trash / damtui.store.notes; the
screen hears back by message and re-lists its runs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, Static, TextArea

from damtui.store import trash, notes as run_notes, runs
from damtui.errors import DamtuiError
from damtui.tui.format import count
from damtui.text import markup
from damtui.tui.screens.dialogs import ConfirmScreen, PromptScreen
from damtui.tui.widgets.key_footer import KeyFooter

# capitals: these change a run (the keymap's rule; tui.keymap)
MANAGE_BINDINGS = [
    Binding("D", "delete_run", "Delete"),
    Binding("E", "rename_run", "Rename", show=False),
    Binding("T", "edit_notes", "Tags/notes", show=False),
]


def name_and_tags(info: runs.RunInfo, short: str) -> str:
    """The run's cell in a list: its display name (else `short`), then its tags as #tag."""
    return " ".join([info.notes.name or short, *(f"#{t}" for t in info.notes.tags)])


class DeleteChecked(Message):
    """trash.check_deletable's answer: the fine-tunes using the run, or why it may not go."""

    def __init__(self, info: runs.RunInfo, users: list[str], error: str = "") -> None:
        super().__init__()
        self.info, self.users, self.error = info, users, error


class RunChanged(Message):
    """A worker deleted, renamed or annotated a run: `text` to say so, or the error."""

    def __init__(self, text: str, error: str = "") -> None:
        super().__init__()
        self.text, self.error = text, error


class RenameScreen(PromptScreen):
    """Ask for a run's display name; dismisses with it ('' clears it), or None on escape."""

    def __init__(self, info: runs.RunInfo) -> None:
        super().__init__(f"Rename {markup(info.run_id)}", "The name shown in lists and exports; the folder keeps its"
                         " name, so fine-tunes still find their source. Empty clears it.",
                         info.notes.name, "Rename")

    def accept(self, text: str) -> str:
        try:
            return run_notes.check_name(text)
        except DamtuiError as err:
            raise ValueError(str(err)) from None


class NotesScreen(ModalScreen[Any]):
    """Edit a run's tags (one field, words) and notes (free text); ctrl+s or the button saves
    (dismissing with (tags, text)), escape dismisses with None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save")]
    DEFAULT_CSS = "NotesScreen #notes-text { height: 8; } NotesScreen .notes-label { color: $text-muted; }"

    def __init__(self, info: runs.RunInfo) -> None:
        super().__init__()
        self.info = info

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="notes-dialog"):
            yield Label(f"Tags and notes of {markup(self.info.run_id)}", classes="dialog-title")
            yield Label("tags (words; enter moves to the notes)", classes="notes-label")
            yield Input(" ".join(self.info.notes.tags), placeholder="e.g. baseline good", id="notes-tags")
            yield Label("notes", classes="notes-label")
            yield TextArea(self.info.notes.text, id="notes-text", soft_wrap=True)
            yield Static("", id="prompt-error", classes="error-line")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel", id="cancel", compact=True)
        yield KeyFooter()

    def on_mount(self) -> None:
        self.query_one("#notes-tags", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.set_focus(self.query_one("#notes-text", TextArea))  # at once: the next keys are notes

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_save(self) -> None:
        try:
            tags = run_notes.parse_tags(self.query_one("#notes-tags", Input).value)
            text = run_notes.check_notes(self.query_one("#notes-text", TextArea).text)
        except DamtuiError as err:
            box = self.query_one("#prompt-error", Static)
            box.update(f"✗ {markup(err)}")
            box.add_class("-shown")
            return
        self.dismiss((tags, text))

    def action_cancel(self) -> None:
        self.dismiss(None)


class ManageActions:
    """Mixed into the runs list: `manage_target` is the highlighted run, `runs_changed` is
    called after a change so the list reads the runs again."""

    def manage_target(self) -> runs.RunInfo | None:
        raise NotImplementedError

    def runs_changed(self) -> None:
        raise NotImplementedError

    def action_delete_run(self) -> None:
        info = self.manage_target()
        if info is not None:
            self._check_delete(info)

    @work(thread=True, exclusive=True, group="manage", exit_on_error=False)
    def _check_delete(self, info: runs.RunInfo) -> None:
        assert isinstance(self, Screen)
        try:
            self.post_message(DeleteChecked(info, trash.check_deletable(info.path, force=True)))
        except DamtuiError as err:
            self.post_message(DeleteChecked(info, [], str(err)))

    def on_delete_checked(self, message: DeleteChecked) -> None:
        assert isinstance(self, Screen)
        info = message.info
        if message.error:
            self.notify(f"cannot delete: {markup(message.error)}", severity="error", timeout=8)
            return
        body = (f"{info.notes.name + ' · ' if info.notes.name else ''}{info.dataset} {info.stage}, "
                f"{info.status}, {count(info.epochs_done, 'epoch')}.\nIt moves to {trash.trash_dir(info.path.parent)};"
                " Trash (ctrl+p) restores it.")
        if message.users:
            body += (f"\n\n! It is the --from source of {len(message.users)} fine-tune(s): "
                     + ", ".join(message.users) + ". They keep their own results, but one that has to"
                     " start over needs this run back.")
        screen = self

        def answer(yes: bool | None) -> None:
            if yes:
                screen._delete(info.path)

        self.app.push_screen(ConfirmScreen(f"Delete run {markup(info.run_id)}?", markup(body, lines=True), yes="Delete",
                                           no="Keep"), answer)

    @work(thread=True, exclusive=True, group="manage", exit_on_error=False)
    def _delete(self, path: Path) -> None:
        assert isinstance(self, Screen)
        try:
            dest = trash.delete_run(path, force=True)  # the dialog named the fine-tunes
            self.post_message(RunChanged(f"deleted {path.name}: moved to {dest.parent} (Trash in ctrl+p restores it)"))
        except DamtuiError as err:
            self.post_message(RunChanged("", f"cannot delete: {err}"))

    def action_rename_run(self) -> None:
        assert isinstance(self, Screen)
        info = self.manage_target()
        if info is None:
            return
        screen = self

        def answer(name: str | None) -> None:
            if name is not None:
                screen._change(info.path, lambda n: replace(n, name=name), "renamed")

        self.app.push_screen(RenameScreen(info), answer)

    def action_edit_notes(self) -> None:
        assert isinstance(self, Screen)
        info = self.manage_target()
        if info is None:
            return
        screen = self

        def answer(value: tuple[list[str], str] | None) -> None:
            if value is not None:
                tags, text = value
                screen._change(info.path, lambda n: replace(n, tags=tuple(dict.fromkeys(tags)),
                                                            text=text.strip()), "tags and notes saved")

        self.app.push_screen(NotesScreen(info), answer)

    @work(thread=True, group="manage", exit_on_error=False)
    def _change(self, path: Path, change: Callable[[run_notes.RunNotes], run_notes.RunNotes], done: str) -> None:
        assert isinstance(self, Screen)
        try:
            run_notes.update_notes(path, change)
            self.post_message(RunChanged(f"{path.name}: {done}"))
        except DamtuiError as err:
            self.post_message(RunChanged("", str(err)))

    def on_run_changed(self, message: RunChanged) -> None:
        assert isinstance(self, Screen)
        if message.error:
            self.notify(markup(message.error), severity="error", timeout=8)
        else:
            self.notify(markup(message.text), timeout=4)
        self.runs_changed()
