"""The one-row progress line (bar + text) of a run inside its epoch: the monitor shows its own
run's batch events through it, the run page a followed run's progress.json.

The text is short enough for 80 columns; it says "evaluating…" only until the epoch's row is
there, counts evaluation in the ETA, gives the whole run's ETA from epoch 1 and, once the run
stopped, says how it stopped instead of freezing on the last ETA.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import ProgressBar, Static

from damtui.store.progress import Progress, epoch_left, run_left
from damtui.records import EpochRow
from damtui.tui.format import STATUS_MARK, count, eta

LIVE = ("running", "cancelling")
STOPPED = {"cancelled": "cancelled", "failed": "failed", "crashed": "writer gone"}


def progress_text(p: Progress | None, rows: Sequence[EpochRow], state: str, now: float | None = None) -> str:
    """The line's text for a run in `state` (a session state or a run status)."""
    if p is None:
        return "loading data…" if state == "starting" else ""
    where = f"ep {p.epoch}/{p.epochs} batch {p.batch}/{p.batches}"
    done = bool(rows) and rows[-1].epoch >= p.epoch
    if state == "finished":
        return f"{STATUS_MARK['finished']} finished {count(len(rows), 'epoch')}"
    if state in STOPPED:
        at = f"after epoch {p.epoch}" if done else f"in {where}"
        return f"{STATUS_MARK[state]} {STOPPED[state]} {at}"
    if state not in LIVE:
        return where
    if done:
        return f"epoch {p.epoch} done; epoch {p.epoch + 1} starting…"
    text = f"{where}  " + ("evaluating…" if p.batch >= p.batches else f"{p.images_per_s:,.0f} img/s")
    text += f"  ETA {eta(epoch_left(p, rows, now))}"
    if p.epochs > p.epoch:
        text += f" · run {eta(run_left(p, rows, now))}"
    return text


class ProgressLine(Horizontal):
    """Bar and text; `show` sets both (no layout pass: its size is fixed by the stylesheet)."""

    DEFAULT_CSS = """
    ProgressLine { height: 1; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        yield ProgressBar(total=None, show_eta=False, show_percentage=False, id="batch-progress")
        yield Static("", id="progress-text")

    def show(self, p: Progress | None, rows: Sequence[EpochRow], state: str, now: float | None = None) -> None:
        bar = self.query_one(ProgressBar)
        if state == "finished":
            bar.update(total=1, progress=1)
        elif p is not None:
            done = bool(rows) and rows[-1].epoch >= p.epoch and state in LIVE
            bar.update(total=p.batches, progress=0 if done else p.batch)
        bar.set_class(state in STOPPED, "-stopped")
        text = progress_text(p, rows, state, now)
        box = self.query_one("#progress-text", Static)
        if box.content != text:  # Static.update lays the screen out again even for the same text
            box.update(text, layout=False)
