"""How training reads in a terminal: one line per epoch (plain when piped, a rich progress bar on
a TTY), the finishing summary line, and the number format the CLI tables share."""

from __future__ import annotations

import sys
from typing import Any


def fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


EPOCH_COLUMNS = [("epoch", "ep"), ("train_loss", "loss"), ("train_auc", "trAUC"), ("val_auc", "vAUC"),
                 ("val_acc", "vACC"), ("test_auc", "tAUC"), ("test_acc", "tACC"), ("test_acc_thr", "tACC@thr"),
                 ("lr", "lr"), ("epoch_s", "s"), ("images_per_s", "img/s")]


def epoch_line(row: dict[str, Any], best: bool) -> str:
    cells = []
    for key, head in EPOCH_COLUMNS:
        v = row.get(key)
        text = f"{v:.2g}" if key == "lr" and v else f"{v:.0f}" if key == "images_per_s" and v else fmt(v, 4 if key != "epoch_s" else 1)
        cells.append(text.rjust(max(len(head), 6)))
    return " ".join(cells) + ("  *best" if best else "")


def epoch_header() -> str:
    return " ".join(head.rjust(max(len(head), 6)) for _, head in EPOCH_COLUMNS)


class PlainPrinter:
    """One line per event worth logging: made for nohup and log files."""

    def __call__(self, ev: Any) -> None:
        from damtui import events as E

        if isinstance(ev, E.RunStarted):
            self._print(f"run {ev.run_id} -> {ev.run_dir}")
            self._print(f"device {ev.device}; sizes {ev.sizes}; epochs {ev.start_epoch + 1}..{ev.epochs}")
            self._print(epoch_header())
        elif isinstance(ev, E.EpochMetrics):
            self._print(epoch_line(ev.metrics, ev.is_best))
        elif isinstance(ev, (E.RunFinished, E.RunCancelled)):
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


def summary_line(s: dict[str, Any]) -> str:
    a = s.get("answer") or {}
    text = (f"{s.get('status')}: best val AUC {fmt(s.get('best_val_auc'))} at epoch {fmt(s.get('best_epoch'))};"
            f" test AUC {fmt(s.get('best_test_auc'))}, ACC {fmt(s.get('best_test_acc'))},"
            f" ACC@val-threshold {fmt(s.get('best_test_acc_thr'))}")
    if a and a.get("stage") != s.get("stage"):
        text += f"; two-stage answer is the pretrain epoch {a.get('best_epoch')} (val AUC {fmt(a.get('best_val_auc'))})"
    return text
