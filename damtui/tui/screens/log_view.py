"""A run's own output: its log.txt (the lines `damtui train` prints, written by the run's
recorder however the run was started), followed live while the run writes it. Pushed from the
run page with `l`. The file is read in a worker from the last offset on each poll."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Header, Log, Static
from textual.worker import get_current_worker

from damtui.store import log as run_log
from damtui.errors import DamtuiError
from damtui.text import markup, shown
from damtui.tui.widgets.key_footer import KeyFooter


class LogScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "log"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("end", "end", "End", show=False),
    ]
    DEFAULT_CSS = "LogScreen #log-info { padding: 0 1; color: $text-muted; } LogScreen #run-log { height: 1fr; }"

    class Read(Message):
        """New whole lines of the log from `start` on, and the offset after them; `missing` when
        the run has no log.txt (yet)."""

        def __init__(self, lines: list[str], start: int, offset: int, missing: bool = False,
                     error: str = "") -> None:
            super().__init__()
            self.lines, self.start, self.offset = lines, start, offset
            self.missing, self.error = missing, error

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.read_to = 0
        self.shown_lines = 0

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static(f"{markup(self.path.name)} · log.txt", id="log-info")
        yield Log(id="run-log", highlight=False)
        yield KeyFooter()

    def on_mount(self) -> None:
        self._read(0)
        self.set_interval(self.app.poll_interval, lambda: self._read(self.read_to))

    @work(thread=True, exclusive=True, group="run-log", exit_on_error=False)
    def _read(self, start: int) -> None:
        try:
            got = run_log.read_log(self.path, start)
        except DamtuiError as err:
            got, error = None, str(err)
        else:
            error = ""
        if get_current_worker().is_cancelled:
            return
        if got is None:
            self.post_message(self.Read([], start, start, missing=not error, error=error))
        elif got[0] or got[1] != start:
            self.post_message(self.Read(got[0], start, got[1]))

    def on_log_screen_read(self, message: Read) -> None:
        log = self.query_one("#run-log", Log)
        if message.start != self.read_to:
            return  # an answer to a read from before the last one was applied
        if message.offset < message.start:  # the file was replaced by a shorter one
            log.clear()
            self.shown_lines = 0
        self.read_to = message.offset
        if message.lines:
            log.write_lines([shown(line) for line in message.lines])  # ESC in a line is shown, never sent
            self.shown_lines += len(message.lines)
        info = self.query_one("#log-info", Static)
        name = markup(self.path.name)
        if message.error:
            info.update(f"{name} · ✗ {markup(message.error)}")
        elif message.missing:
            info.update(f"{name} · no log.txt yet: runs trained before damtui wrote logs have"
                        " none; a new run writes one from its start")
        else:
            info.update(f"{name} · log.txt · {self.shown_lines} lines")

    def action_end(self) -> None:
        self.query_one("#run-log", Log).scroll_end(animate=False)

    def action_back(self) -> None:
        self.app.pop_screen()
