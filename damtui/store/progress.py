"""Where a run is inside its epochs, and how long it has left: one typed record for every front end.

The engine writes a `Progress` to the run folder's progress.json at most every second
(runs.RunWriter.write_progress), so a second process following the run (the app on a headless
`damtui train`) shows the batch, speed and ETA the training process itself shows. The ETA counts
evaluation (measured per epoch; before the first epoch ends it is estimated from the speed) and
gives a whole-run figure from the first batches of epoch 1. Pure: no torch, no textual.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

from damtui.records import EpochRow

TRAIN, EVALUATING = "train", "evaluating"
WRITE_EVERY_S = 1.0  # progress.json is replaced at most this often (and at each epoch's last batch)
EVAL_SPEEDUP = 3.0  # scoring an image costs about a third of training on it (no backward pass)
MAX_VALUE = 1e12  # no count, speed or second of a real run comes near it (a clock reads ~2e9)


@dataclass(frozen=True)
class Progress:
    epoch: int  # 1-based, the epoch being trained
    epochs: int  # planned epochs of the run
    batch: int  # batches done in this epoch
    batches: int
    phase: str  # TRAIN, or EVALUATING once the last batch is done
    images_per_s: float  # training speed in this epoch
    train_elapsed_s: float  # seconds this epoch has trained so far
    eval_images: int = 0  # val + test images scored after each epoch
    updated: float = 0.0  # wall clock (time.time()) when it was taken

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Progress:
        """ValueError for anything that is not a progress record (a reader then shows none)."""
        if not isinstance(data, dict):
            raise ValueError("progress record is not an object")
        known = {f.name: f.type for f in fields(cls)}
        try:
            p = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as err:
            raise ValueError(f"progress record: {err}") from None
        numbers = (p.epoch, p.epochs, p.batch, p.batches, p.images_per_s, p.train_elapsed_s, p.eval_images,
                   p.updated)
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers) or p.phase not in (
                TRAIN, EVALUATING):
            raise ValueError("progress record has a field of the wrong type")
        if not all(math.isfinite(v) and 0 <= v < MAX_VALUE for v in numbers):
            raise ValueError("progress record has a number that is negative, not finite or too large")
        if not (1 <= p.epoch <= p.epochs and 0 <= p.batch <= p.batches):
            raise ValueError(f"progress record is at batch {p.batch}/{p.batches} of epoch {p.epoch}/{p.epochs}")
        return p


def _mean(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def eval_seconds(p: Progress, rows: Sequence[EpochRow]) -> float:
    """Evaluation time per epoch: measured on the epochs done, else estimated from the speed."""
    measured = _mean([r.eval_s for r in rows])
    if measured is not None:
        return measured
    return p.eval_images / (p.images_per_s * EVAL_SPEEDUP) if p.images_per_s > 0 else 0.0


def epoch_left(p: Progress, rows: Sequence[EpochRow], now: float | None = None) -> float | None:
    """Seconds until this epoch's row is written: the rest of its batches plus its evaluation.
    `now` (wall clock) counts the time since the record was taken, for a record read from a file."""
    if p.batch <= 0:
        return None
    since = max(0.0, now - p.updated) if now is not None and p.updated else 0.0
    train = (p.batches - p.batch) * p.train_elapsed_s / p.batch
    return max(0.0, train + eval_seconds(p, rows) - since)


def run_left(p: Progress, rows: Sequence[EpochRow], now: float | None = None) -> float | None:
    """Seconds until the run ends: this epoch's rest plus the epochs after it, each as long as
    the mean epoch so far, or (in the first epoch) as this epoch's pace plus evaluation."""
    left = epoch_left(p, rows, now)
    if left is None:
        return None
    per_epoch = _mean([r.epoch_s for r in rows])
    if per_epoch is None:
        per_epoch = p.batches * p.train_elapsed_s / p.batch + eval_seconds(p, rows)
    return left + max(0, p.epochs - p.epoch) * per_epoch


def of_event(event: Any, epochs: int, eval_images: int, updated: float = 0.0) -> Progress:
    """The record of an engine BatchProgress event (the phase follows from its batch count)."""
    phase = EVALUATING if event.batch >= event.batches else TRAIN
    return Progress(event.epoch, epochs, event.batch, event.batches, phase, event.images_per_s,
                    event.elapsed_s, eval_images, updated)
