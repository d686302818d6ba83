"""How the commands print: training one line per epoch (the log's lines, damtui.store.log; plain
when piped, with a rich progress bar on a TTY), tables, and pictures on a terminal."""

from __future__ import annotations

import sys
from typing import Any

from damtui.store.log import PlainPrinter
from damtui.text import shown


def say(text: str) -> None:
    """Print a command's output: what comes from run folders (names, notes, messages) cannot
    steer the terminal (damtui.text.shown)."""
    print(shown(text, lines=True))


class RichPrinter(PlainPrinter):
    """On a terminal: the same lines plus a live progress bar over the epoch's batches."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console()
        self.progress = Progress(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]:.0f} img/s  loss {task.fields[loss]:.4f}"),
                                 TimeRemainingColumn(), console=self.console, transient=True)
        self.task = None
        self.epoch = 0
        self.progress.start()

    def __call__(self, ev: Any) -> None:
        from damtui import events as E

        if isinstance(ev, E.BatchProgress):
            if self.task is None:
                self.task = self.progress.add_task("train", total=ev.batches, epoch=ev.epoch, rate=0.0, loss=0.0)
            elif self.epoch != ev.epoch:
                # a new epoch: a finished task reads ETA 0:00:00 and keeps the last epoch's speed
                self.progress.reset(self.task, total=ev.batches, completed=ev.batch, epoch=ev.epoch,
                                    rate=ev.images_per_s, loss=ev.loss)
            self.epoch = ev.epoch
            self.progress.update(self.task, completed=ev.batch, total=ev.batches, epoch=ev.epoch,
                                 rate=ev.images_per_s, loss=ev.loss)
            return
        super().__call__(ev)

    def _print(self, text: str) -> None:
        self.console.print(shown(text, lines=True), highlight=False, markup=False)

    def close(self) -> None:
        self.progress.stop()


class TaggedPrinter(PlainPrinter):
    """Plain lines prefixed with the member's tag: the members of a packed run share one log."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def _print(self, text: str) -> None:
        print(shown(f"{self.tag} {text}", lines=True), flush=True)


def make_printer(tty: bool) -> PlainPrinter:
    return RichPrinter() if tty else PlainPrinter()


def print_table(headers: list[str], rows: list[list[str]], title: str = "") -> None:
    """A table: drawn by Rich on a terminal, plain columns in a pipe. Every cell is plain text:
    a name like `[link=...]x[/link]` or `[/]` is shown as typed, never read as markup."""
    rows = [[shown(c) for c in row] for row in rows]
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(*headers, title=Text(shown(title)) if title else None)
        for row in rows:
            table.add_row(*(Text(c) for c in row))
        Console().print(table)
        return
    if title:
        say(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


def print_pictures(samples: list, per_row: int) -> None:
    """Pictures in rows with captions, only on a terminal (a log gets the text alone)."""
    from rich.console import Console
    from rich.table import Table

    from damtui.analysis.pictures import renderable

    console = Console()
    if not console.is_terminal or not samples:
        return
    for start in range(0, len(samples), per_row):
        row = samples[start:start + per_row]
        grid = Table.grid(padding=(0, 1))
        for _ in row:
            grid.add_column()
        grid.add_row(*[renderable(s.picture) for s in row])
        grid.add_row(*[s.caption for s in row])
        console.print(grid)


def pictures_per_row(picture_width: int) -> int:
    import shutil

    return max(1, shutil.get_terminal_size((80, 24)).columns // (picture_width + 1))
