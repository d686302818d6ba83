"""The trash: runs deleted with `D` (moved to runs/.trash/), newest first; `U` moves the
highlighted one back under the name it had. Reached from the palette ("Trash"). Files are read and
moved in workers through damtui.store.trash."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from damtui.errors import DamtuiError
from damtui.store import runs, trash
from damtui.text import markup, shown
from damtui.tui.format import timestamp
from damtui.tui.widgets.key_footer import KeyFooter


class TrashListed(Message):
    """The trash as a worker read it: (trashed, its run info or None when unreadable)."""

    def __init__(self, found: list[tuple[trash.Trashed, runs.RunInfo | None]], error: str = "") -> None:
        super().__init__()
        self.found, self.error = found, error


class Restored(Message):
    def __init__(self, path: Path | None, error: str = "") -> None:
        super().__init__()
        self.path, self.error = path, error


class TrashScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "trash"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("U", "restore", "Restore"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[trash.Trashed, runs.RunInfo | None]] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield DataTable(id="trash-table", cursor_type="row", zebra_stripes=True)
        yield Static("reading the trash…", id="trash-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for key in ("run", "dataset", "stage", "status", "deleted"):
            table.add_column(key, key=key)
        table.focus()
        self._list()

    @work(thread=True, exclusive=True, group="trash")
    def _list(self) -> None:
        try:
            found = []
            for t in trash.trashed_runs(self.app.runs_dir):
                try:
                    found.append((t, runs.load_run(t.path).info))
                except DamtuiError:
                    found.append((t, None))
        except OSError as err:
            self.post_message(TrashListed([], str(err)))
            return
        self.post_message(TrashListed(found))

    def on_trash_listed(self, message: TrashListed) -> None:
        self.found, self.loaded = message.found, True
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for t, info in message.found:
            table.add_row(*(Text(shown(x)) for x in (t.name, info.dataset if info else "?", info.stage if info else "?",
                                                      info.status if info else "unreadable")),
                          timestamp(t.deleted), key=str(t.path))  # names from the folders: text, not markup
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1), animate=False)
        where = trash.trash_dir(self.app.runs_dir)
        text = markup(f"✗ {message.error}" if message.error else
                f"{len(message.found)} deleted runs in {where} · U moves the highlighted one back"
                if message.found else f"the trash is empty ({where})")
        self.query_one("#trash-info", Static).update(text)
        self.refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "restore":
            return bool(self.found)
        return True

    def action_restore(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        self._restore(Path(str(key)))

    @work(thread=True, group="trash-restore", exit_on_error=False)
    def _restore(self, path: Path) -> None:
        try:
            self.post_message(Restored(trash.restore_run(path)))
        except DamtuiError as err:
            self.post_message(Restored(None, str(err)))

    def on_restored(self, message: Restored) -> None:
        if message.error or message.path is None:
            self.notify(f"cannot restore: {markup(message.error)}", severity="error", timeout=8)
        else:
            self.notify(f"restored {markup(message.path.name)}", timeout=4)
        self._list()

    def action_back(self) -> None:
        self.app.pop_screen()
