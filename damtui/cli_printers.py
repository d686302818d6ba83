"""How training reads in a terminal: one line per epoch (plain when piped, a rich progress bar on
a TTY), the finishing summary line, and the number format the CLI tables share."""

from __future__ import annotations

import sys
from typing import Any

from damtui.records import METRICS, EpochRow, RunSummary


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


EPOCH_COLUMNS = [METRICS[k] for k in ("epoch", "train_loss", "train_auc", "val_auc", "val_acc", "test_auc",
                                       "test_acc", "test_acc_thr", "lr", "epoch_s", "images_per_s")]


NARROW = {"epoch": 3, "lr": 5, "epoch_s": 5}  # so that a row with " *best" fits 80 columns


def _width(m: Any) -> int:
    return max(len(m.short), NARROW.get(m.key, 6))


def epoch_line(row: EpochRow, best: bool) -> str:
    cells = [m.format(row.value(m.key)).rjust(_width(m)) for m in EPOCH_COLUMNS]
    return " ".join(cells) + (" *best" if best else "")


def epoch_header() -> str:
    return " ".join(m.short.rjust(_width(m)) for m in EPOCH_COLUMNS)


class PlainPrinter:
    """One line per event worth logging: made for nohup and log files."""

    stage = ""
    rows: tuple[EpochRow, ...] = ()  # this process's epochs, for the saturation warning

    def __call__(self, ev: Any) -> None:
        from damtui import events as E
        from damtui.health import saturation_warning

        if isinstance(ev, E.RunStarted):
            self.stage, self.rows = str(ev.config.get("stage", "")), ()
            self._print(f"run {ev.run_id} -> {ev.run_dir}")
            self._print(f"device {ev.device}; sizes {ev.sizes}; epochs {ev.start_epoch + 1}..{ev.epochs}")
            self._print(epoch_header())
        elif isinstance(ev, E.EpochMetrics):
            self._print(epoch_line(ev.row, ev.is_best))
            self.rows = (*self.rows, ev.row)
            warning = saturation_warning(self.rows, self.stage)
            if warning:
                self._print(warning)
        elif isinstance(ev, (E.RunFinished, E.RunCancelled)):
            if ev.summary is not None:
                self._print(summary_line(ev.summary))
        elif isinstance(ev, E.RunFailed):
            print(f"damtui: error: {ev.message}", file=sys.stderr, flush=True)

    def _print(self, text: str) -> None:
        print(text, flush=True)

    def close(self) -> None:
        pass


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
        self.console.print(text, highlight=False, markup=False)

    def close(self) -> None:
        self.progress.stop()


class TaggedPrinter(PlainPrinter):
    """Plain lines prefixed with the member's tag: the members of a packed run share one log."""

    def __init__(self, tag: str) -> None:
        self.tag = tag

    def _print(self, text: str) -> None:
        print(f"{self.tag} {text}", flush=True)


def make_printer(tty: bool) -> PlainPrinter:
    return RichPrinter() if tty else PlainPrinter()


def summary_line(s: RunSummary) -> str:
    if s.best is None:
        return f"{s.status}: no epoch finished"
    text = f"{s.status}: best {s.best.describe()}"
    a = s.answer
    if a is not None and a.stage != s.stage:
        text += f"; two-stage answer is the pretrain epoch {a.epoch} ({METRICS['val_auc'].label} {fmt(a.val_auc)})"
    return text


def print_table(headers: list[str], rows: list[list[str]], title: str = "") -> None:
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        table = Table(*headers, title=title)
        for row in rows:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        print(title)
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
