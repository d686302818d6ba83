"""State of the run the app's monitor shows: plain data, updated from the run's events.

No textual import. The run trains in its own process (damtui.tui.training); the app's follow worker
reads the run folder (damtui.store.follow) and posts what changed as engine events, and the app's
handlers call `Session.apply(event)` and ask the monitor to redraw. The same session shows a run
this app started and one it found still training when it opened (`process` None then).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from damtui import events
from damtui.config import Config
from damtui.records import EpochRow, RunSummary, best_index
from damtui.store.progress import Progress

STARTING, RUNNING, CANCELLING = "starting", "running", "cancelling"
FINISHED, CANCELLED, FAILED = "finished", "cancelled", "failed"
ENDED = (FINISHED, CANCELLED, FAILED)


@dataclass
class Session:
    number: int
    config: Config
    device_request: str
    started_at: float  # app clock
    run_dir: str = ""  # known before the process starts: the app names a new run's folder
    from_run: Path | None = None
    resume: Path | None = None
    epochs_asked: int | None = None  # an extension's new total (`R` on a finished run)
    force: bool = False  # extend although fine-tunes started from the run (the user confirmed)
    launched: float | None = None  # wall clock when the process was started (None: found running)
    process: Any = None  # training.TrainingProcess | training.EngineThread, set by the follow worker
    leaving: threading.Event = field(default_factory=threading.Event)  # the app quits: stop following
    stop_requested: bool = False
    state: str = STARTING
    run_id: str = ""
    device: str = ""
    epochs: int = 0
    start_epoch: int = 0
    rows: list[EpochRow] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch number
    progress: Progress | None = None
    message: str = ""  # error text for FAILED
    detail: str = ""  # output tail of a process that failed before its run existed
    summary: RunSummary | None = None
    ended_at: float | None = None
    done: bool = False  # the follow worker has returned

    def __post_init__(self) -> None:
        self.epochs = self.epochs or self.config.epochs
        self.run_id = self.run_id or Path(self.run_dir).name

    @property
    def active(self) -> bool:
        """The run is still followed (a new run must wait)."""
        return not self.done

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def training(self) -> bool:
        """A process is (or may still be) training the run: quitting asks what to do with it."""
        return not self.done and not self.ended

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
        self.stop_requested = True
        if not self.ended:
            self.state = CANCELLING

    def apply(
        self, event: events.Event | Progress, now: float, prior_rows: list[EpochRow] | None = None
    ) -> str:
        """Apply one event of the run; returns what changed: started/batch/epoch/checkpoint/ended."""
        if isinstance(event, events.RunStarted):
            self.state = CANCELLING if self.stop_requested else RUNNING
            self.run_id, self.run_dir, self.device = event.run_id, event.run_dir, event.device
            self.epochs, self.start_epoch = event.epochs, event.start_epoch
            self.rows = list(prior_rows or [])
            if self.rows:
                i = best_index(self.rows)
                self.best_epoch = self.rows[i].epoch if i is not None else None
            return "started"
        if isinstance(event, Progress):
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
        """The process ended before it wrote the run (bad input, a bug before the first epoch)."""
        self.state, self.message, self.detail = FAILED, message, detail
        if self.ended_at is None:
            self.ended_at = now

    def finish_following(self, now: float) -> None:
        self.done = True
        if not self.ended and not self.leaving.is_set():  # followed to its end without a final event
            self.state = CANCELLED if self.stop_requested else FINISHED
            self.ended_at = now
