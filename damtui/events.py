"""Frozen dataclasses: the only contract between the engine and its front ends.

The engine calls `emit(event)` with these; the CLI prints them, the TUI posts them as messages,
tests collect them in a list. Nothing here imports torch or textual.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from damtui.records import EpochRow, RunSummary


@dataclass(frozen=True)
class RunStarted:
    run_id: str
    run_dir: str
    config: dict[str, Any]
    sizes: dict[str, int]  # split -> number of samples
    device: str
    start_epoch: int  # 0 for a new run, k when resuming after k finished epochs
    epochs: int
    note: str = ""  # one line to say before the first epoch (a resume given another thread count)


@dataclass(frozen=True)
class BatchProgress:
    """High-rate: front ends keep only the newest one."""

    epoch: int  # 1-based
    batch: int  # 1-based, batches done in this epoch
    batches: int
    loss: float
    images_per_s: float
    eta_s: float  # seconds left in this epoch's training (damtui.store.progress adds its evaluation)
    elapsed_s: float = 0.0  # seconds this epoch has trained so far


@dataclass(frozen=True)
class EpochMetrics:
    """One finished epoch; `row` is exactly the line written to metrics.jsonl."""

    epoch: int  # 1-based
    row: EpochRow
    best_epoch: int
    is_best: bool


@dataclass(frozen=True)
class CheckpointSaved:
    epoch: int
    path: str
    kind: str  # "last" or "best"


@dataclass(frozen=True)
class RunFinished:
    summary: RunSummary


@dataclass(frozen=True)
class RunCancelled:
    epoch: int  # last completed epoch
    summary: RunSummary | None = None


@dataclass(frozen=True)
class RunFailed:
    message: str
    epoch: int  # last completed epoch


Event = Union[
    RunStarted, BatchProgress, EpochMetrics, CheckpointSaved, RunFinished, RunCancelled, RunFailed
]
