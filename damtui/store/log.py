"""A run's log.txt: the event lines `damtui train` prints, also appended to the run's log by its
recorder, so a run trained by the app, a sweep or nohup can be read back later (`damtui runs log
RUN`, `l` on the run page). The line text lives here, below both front ends: the CLI's printers
print these lines, the recorder writes them."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from damtui.errors import DamtuiError
from damtui.records import METRICS, EpochRow, RunSummary
from damtui.text import shown
from damtui.store.files import LOG, UnsafeFile, open_append, read_tail, size_text


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
        from damtui.train.health import saturation_warning

        if isinstance(ev, E.RunStarted):
            self.stage, self.rows = str(ev.config.get("stage", "")), ()
            self._print(f"run {ev.run_id} -> {ev.run_dir}")
            self._print(f"device {ev.device}; sizes {ev.sizes}; epochs {ev.start_epoch + 1}..{ev.epochs}")
            if ev.note:
                self._print(ev.note)
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
            print(f"damtui: error: {shown(ev.message)}", file=sys.stderr, flush=True)

    def _print(self, text: str) -> None:
        print(shown(text, lines=True), flush=True)

    def close(self) -> None:
        pass


def summary_line(s: RunSummary) -> str:
    if s.best is None:
        return f"{s.status}: no epoch finished"
    text = f"{s.status}: best {s.best.describe()}"
    a = s.answer
    if a is not None and a.stage != s.stage:
        text += f"; two-stage answer is the pretrain epoch {a.epoch} ({METRICS['val_auc'].label} {fmt(a.val_auc)})"
    return text



def append_log(run_dir: Path, text: str) -> None:
    """Append lines to the run's log.txt, each stamped with the local time. Best effort: the log
    is for reading, so a full disk (or a link or FIFO planted there) costs log lines, never the
    run (metrics.jsonl reports a full disk)."""
    stamp = time.strftime("%H:%M:%S")
    data = "".join(f"{stamp} {line}\n" for line in text.splitlines() or [""]).encode()
    try:
        fd = open_append(Path(run_dir) / LOG)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    except OSError:
        pass


def read_log(run_dir: Path, offset: int = 0) -> tuple[list[str], int] | None:
    """The whole lines of log.txt after byte `offset` and the offset after them (a line being
    written is left for the next read); None when the run has no log. At most the last LOG_TAIL
    bytes are read: a longer part starts with a line saying how much was left out. A link, FIFO
    or device there is refused (DamtuiError), never read or waited on."""
    path = Path(run_dir) / LOG
    try:
        data, begin, skipped = read_tail(path, offset)
    except FileNotFoundError:
        return None
    except UnsafeFile:
        raise
    except OSError as err:
        raise DamtuiError(f"cannot read {path} ({err.strerror})") from None
    whole = data[: data.rfind(b"\n") + 1]
    lines = whole.decode(errors="replace").splitlines()
    if skipped > 0 and lines:
        cut = whole.find(b"\n") + 1  # the first line starts before what was read
        lines = [f"[{size_text(skipped + cut)} of earlier log not shown: the file is at {path}]", *lines[1:]]
    return lines, begin + len(whole)


class RunLog(PlainPrinter):
    """PlainPrinter's lines, written to <run>/log.txt instead of stdout."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)

    def __call__(self, ev: Any) -> None:
        from damtui import events as E

        if isinstance(ev, E.RunFailed):
            self._print(f"failed after epoch {ev.epoch}: {ev.message}")
        elif isinstance(ev, E.RunCancelled) and ev.summary is None:
            self._print(f"cancelled after epoch {ev.epoch}")
        else:
            super().__call__(ev)

    def _print(self, text: str) -> None:
        append_log(self.run_dir, text)


def tee(emit: Callable[[Any], None], log: Callable[[Any], None]) -> Callable[[Any], None]:
    """An emit that logs each event, then hands it on."""

    def both(ev: Any) -> None:
        log(ev)
        emit(ev)

    return both
