"""Following a run folder that another process writes, as the engine's own events.

A front end that trains nothing itself (the app: each run it starts is its own process) polls a
`RunFollower`: it stats the run's files and, for what changed, returns the events the training
process emitted — RunStarted, EpochMetrics per new metrics.jsonl row, the newest progress.json
record, and the ending (RunFinished / RunCancelled / RunFailed) once status.json says so. So a
followed run shows the same rows, best epoch, progress and ending as the process's own output.
Pure file reads: no torch, no textual.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from damtui import events
from damtui.records import EpochRow, RunSummary, best_index
from damtui.store.files import (
    CANCELLED,
    CONFIG,
    CRASHED,
    FAILED,
    FINISHED,
    METRICS,
    PROGRESS,
    STATUS,
    effective_status,
    read_json,
    read_metrics,
    read_progress,
    read_summary,
)
from damtui.store.progress import Progress

Update = events.Event | Progress
CRASH_MESSAGE = "the training process ended without finishing the run (killed?); R resumes it"


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ino


class RunFollower:
    """What a run folder says now, as events since the last `poll()`.

    `since` (wall clock) is when the process to follow was started: status and progress records
    older than that belong to an earlier attempt at the run (a resume reopens the folder only after
    loading its data) and are not this attempt's news. None follows whatever writes the run now.
    """

    def __init__(self, path: Path, since: float | None = None) -> None:
        self.path = Path(path)
        self.since = since
        self.started = False
        self.ended = False
        self.prior: list[EpochRow] = []  # the rows already there when RunStarted was returned
        self.rows: list[EpochRow] = []
        self.status: dict[str, Any] = {}
        self._stamps: dict[str, Any] = {}
        self._read_to: tuple[int, int | None] = (0, None)  # (offset after the rows read, metrics' inode)

    def _changed(self, name: str) -> bool:
        stamp = _stamp(self.path / name)
        if stamp is None or self._stamps.get(name) == stamp:
            return False
        self._stamps[name] = stamp
        return True

    def _ours(self, stamp: Any) -> bool:
        return self.since is None or (isinstance(stamp, (int, float)) and stamp >= self.since)

    def poll(self) -> list[Update]:
        """The events since the last poll (none once the run has ended)."""
        if self.ended:
            return []
        out: list[Update] = []
        if self._changed(STATUS):
            try:
                status = read_json(self.path / STATUS)
            except (OSError, ValueError):
                status = None
            if isinstance(status, dict) and self._ours(status.get("resumed", status.get("started"))):
                self.status = status
        if not self.status:
            return out  # not created yet, or a resume still loading its data
        if not self.started:
            start = self._start()
            if start is None:
                return out
            out.append(start)
        elif self._changed(METRICS):
            out += self._new_rows()
        if self._changed(PROGRESS):
            progress = read_progress(self.path)
            if progress is not None and self._ours(progress.updated):
                out.append(progress)
        out += self._ending()
        return out

    def _start(self) -> events.RunStarted | None:
        try:
            saved = read_json(self.path / CONFIG)
            config, runtime = saved["config"], saved.get("runtime") or {}
        except (OSError, ValueError, TypeError, KeyError):
            return None
        self._changed(METRICS)
        self.rows = self._appended(reset=True)[0]
        self.prior = list(self.rows)
        self.started = True
        s = self.status
        # where this attempt started: 0 for a new run (its writer's start is the run's start), else
        # the epochs done when first seen (a resume writes its status before training on)
        fresh = s.get("resumed") is not None and s.get("resumed") == s.get("started")
        start_epoch = 0 if fresh else int(s.get("epoch", len(self.rows)))
        return events.RunStarted(self.path.name, str(self.path), dict(config), {}, str(runtime.get("device", "")),
                                 start_epoch, int(s.get("epochs", config.get("epochs", 0))))

    def _appended(self, reset: bool = False) -> tuple[list[EpochRow], bool]:
        """The rows appended since the last read, and whether they are the whole file: a run
        followed for days costs its new rows at each poll. A replaced or shorter file (a resume
        rewrites it) is read from its start."""
        offset, inode = self._read_to
        stamp = _stamp(self.path / METRICS)
        if reset or stamp is None or stamp[2] != inode or stamp[0] < offset:
            offset = 0
        try:
            rows, end = read_metrics(self.path, offset)
        except OSError:
            return [], False
        self._read_to = (end, None if stamp is None else stamp[2])
        return rows, offset == 0

    def _new_rows(self) -> list[Update]:
        appended, whole = self._appended()
        rows = appended if whole else [*self.rows, *appended]
        known = len(self.rows)
        out: list[Update] = []
        for n, row in enumerate(rows[known:], start=known):
            self.rows = rows[: n + 1]
            best = best_index(self.rows)
            best_epoch = self.rows[best].epoch if best is not None else 0
            out.append(events.EpochMetrics(row.epoch, row, best_epoch, best == n))
        return out

    def _ending(self) -> list[Update]:
        state = self._state()
        if state not in (FINISHED, CANCELLED, FAILED, CRASHED):
            return []
        rows = self._new_rows()  # status is written after the last row: read them all before ending
        self.ended = True
        done = len(self.rows)
        if state == FINISHED:
            return [*rows, events.RunFinished(read_summary(self.path) or _summary_of(self, FINISHED))]
        if state == CANCELLED:
            return [*rows, events.RunCancelled(done, read_summary(self.path))]
        message = str(self.status.get("message") or "") if state == FAILED else CRASH_MESSAGE
        return [*rows, events.RunFailed(message or "the run failed", done)]

    def _state(self) -> str:
        try:
            return effective_status(self.status)
        except (TypeError, ValueError):
            return CRASHED


def _summary_of(follower: RunFollower, state: str) -> RunSummary:
    """The summary from the rows, for a finished run whose summary.json cannot be read."""
    config: dict[str, Any] = {}
    try:
        config = read_json(follower.path / CONFIG)["config"]
    except (OSError, ValueError, TypeError, KeyError):
        pass
    return RunSummary.of(follower.rows, run_id=follower.path.name, status=state, dataset=str(config.get("dataset", "")),
                         stage=str(config.get("stage", "")), preset=str(config.get("preset", "")))
