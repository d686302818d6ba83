"""The run's own output: the event lines `damtui train` prints, also appended to the run's
log.txt by its recorder, so a run trained by the app, a sweep or nohup can be read back later
(`damtui runs log RUN`, `l` on the run page)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from damtui.cli_printers import PlainPrinter
from damtui.run_notes import append_log


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
