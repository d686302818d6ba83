"""State of the one training run the app drives: plain data, updated from engine events.

No textual import: the app's message handlers call `Session.apply(event)` and then ask the
monitor screen to redraw what changed. The worker thread touches only `stop_event` (its
signal to stop the engine) and `progress_box` (where it leaves the newest batch progress).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damtui import events
from damtui.config import Config
from damtui.records import EpochRow, RunSummary, best_index

STARTING, RUNNING, CANCELLING = "starting", "running", "cancelling"
FINISHED, CANCELLED, FAILED = "finished", "cancelled", "failed"
ENDED = (FINISHED, CANCELLED, FAILED)


class Mailbox:
    """One-slot mailbox between the worker and the UI for high-rate values (batch progress).

    The worker `offer`s every value and posts a message only when none is in flight; the handler
    `take`s the newest value. The UI queue never holds more than one progress message, however
    fast the engine emits, and the newest value is never lost.
    """

    def __init__(self) -> None:
        self._value: Any = None
        self._in_flight = threading.Event()

    def offer(self, value: Any) -> bool:
        """Worker side: keep `value`; True when the caller should post a message."""
        self._value = value
        if self._in_flight.is_set():
            return False
        self._in_flight.set()
        return True

    def take(self) -> Any:
        """UI side: the newest value (clear the flag first so no later offer is lost)."""
        self._in_flight.clear()
        return self._value


@dataclass
class Session:
    number: int
    config: Config
    device_request: str
    started_at: float  # app clock
    from_run: Path | None = None
    resume: Path | None = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    progress_box: Mailbox = field(default_factory=Mailbox)
    state: str = STARTING
    run_id: str = ""
    run_dir: str = ""
    device: str = ""
    sizes: dict[str, int] = field(default_factory=dict)
    epochs: int = 0
    start_epoch: int = 0
    rows: list[EpochRow] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch number
    progress: events.BatchProgress | None = None
    message: str = ""  # error text for FAILED
    detail: str = ""  # traceback of an unexpected engine exception
    summary: RunSummary | None = None
    ended_at: float | None = None
    done: bool = False  # the worker thread has returned

    def __post_init__(self) -> None:
        self.epochs = self.epochs or self.config.epochs

    @property
    def active(self) -> bool:
        """The worker is still running (a new run must wait)."""
        return not self.done

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    def elapsed(self, now: float) -> float:
        return max(0.0, (self.ended_at if self.ended_at is not None else now) - self.started_at)

    @property
    def best_row(self) -> EpochRow | None:
        for row in self.rows:
            if row.epoch == self.best_epoch:
                return row
        return None

    @property
    def current_epoch(self) -> int:
        """The epoch being trained (1-based) or the last one finished once the run ended."""
        done = self.rows[-1].epoch if self.rows else self.start_epoch
        if self.ended or self.state == STARTING:
            return done
        return min(done + 1, self.epochs) if self.epochs else done + 1

    def request_cancel(self) -> None:
        self.stop_event.set()
        if not self.ended:
            self.state = CANCELLING

    def apply(
        self, event: events.Event, now: float, prior_rows: list[EpochRow] | None = None
    ) -> str:
        """Apply one engine event; returns what changed: started/batch/epoch/checkpoint/ended."""
        if isinstance(event, events.RunStarted):
            self.state = CANCELLING if self.stop_event.is_set() else RUNNING
            self.run_id, self.run_dir, self.device = event.run_id, event.run_dir, event.device
            self.sizes, self.epochs, self.start_epoch = (
                dict(event.sizes),
                event.epochs,
                event.start_epoch,
            )
            self.rows = list(prior_rows or [])
            if self.rows:
                i = best_index(self.rows)
                self.best_epoch = self.rows[i].epoch if i is not None else None
            return "started"
        if isinstance(event, events.BatchProgress):
            self.progress = event
            return "batch"
        if isinstance(event, events.EpochMetrics):
            self.rows = [r for r in self.rows if r.epoch != event.epoch] + [event.row]
            self.best_epoch = event.best_epoch
            return "epoch"
        if isinstance(event, events.CheckpointSaved):
            return "checkpoint"
        if isinstance(event, events.RunFinished):
            self.state, self.summary, self.ended_at = FINISHED, event.summary, now
            return "ended"
        if isinstance(event, events.RunCancelled):
            self.state, self.summary, self.ended_at = CANCELLED, event.summary, now
            return "ended"
        if isinstance(event, events.RunFailed):
            self.state, self.message, self.ended_at = FAILED, event.message, now
            return "ended"
        return "other"

    def fail(self, message: str, detail: str, now: float) -> None:
        """engine.train raised instead of emitting RunFailed."""
        self.state, self.message, self.detail = FAILED, message, detail
        if self.ended_at is None:
            self.ended_at = now

    def finish_worker(self, summary: RunSummary | None, now: float) -> None:
        self.done = True
        if summary is not None and self.summary is None:
            self.summary = summary
        if not self.ended:  # the engine returned without a final event
            self.state = CANCELLED if self.stop_event.is_set() else FINISHED
            self.ended_at = now
