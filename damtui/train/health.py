"""Numbers that tell whether a run's training is healthy, and the one saturation warning rule.

AUCM's min-max loss is no progress measure, so a fine-tune records what is: LibAUC's a, b and
alpha, the positive share of its batches beside the imratio the loss assumes, and the share of
saturated scores (they precede NaN and flat AUC). Both stages record a CE/BCE of the validation
scores, a loss comparable across stages. Pure numpy: the engine fills rows, front ends only read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from damtui.records import METRICS, EpochRow

SATURATED_LOW, SATURATED_HIGH = 0.01, 0.99  # a sigmoid/softmax score outside these is saturated
WARN_SHARE = 0.3  # warn from this saturated share on ...
WARN_RISING = 2  # ... when it is higher than it was this many epochs before
WARN_ALWAYS = 0.9  # ... or at once from this share, rising or not
_EPS = 1e-7


def score_bce(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean binary cross-entropy of probabilities (N, L) against 0/1 labels: the CE of a 2-logit
    head read on its class-1 score, BCE per label for multi-label (NaN for no samples)."""
    y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
    p = np.clip(np.asarray(scores, dtype=np.float64).reshape(len(scores), -1), _EPS, 1 - _EPS)
    if y.size == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def saturated_share(scores: np.ndarray) -> float:
    """Share of scores below SATURATED_LOW or above SATURATED_HIGH (NaN for no scores)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.size == 0:
        return float("nan")
    return float(np.mean((s < SATURATED_LOW) | (s > SATURATED_HIGH)))


def positive_share(labels: np.ndarray) -> float:
    """Share of positives among the epoch's training labels (mean over labels): with equal batch
    sizes this is the mean positive share of its batches."""
    y = np.asarray(labels, dtype=np.float64)
    return float(np.mean(y > 0.5)) if y.size else float("nan")


def epoch_health(train: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
                 aucm: dict[str, float]) -> dict[str, float | None]:
    """The health keys of one epoch row from (scores, labels) of the training batches the steps
    already scored and of validation; `aucm` holds a/b/alpha/imratio (empty for a pretrain)."""
    values = {
        "val_loss": score_bce(val[1], val[0]),
        "train_saturated": saturated_share(train[0]),
        "train_pos_share": positive_share(train[1]),
        **aucm,
    }
    return {k: v if v is not None and math.isfinite(v) else None for k, v in values.items()}


def saturation_warning(rows: Sequence[EpochRow], stage: str) -> str | None:
    """One line when a fine-tune's saturated share is high and climbing, else None. The rule:
    share >= WARN_SHARE and above its value WARN_RISING epochs before, or share >= WARN_ALWAYS."""
    if stage != "finetune":
        return None  # a confident CE model is not a sign of trouble
    shares = [(r.epoch, r.train_saturated) for r in rows if r.train_saturated is not None]
    if not shares:
        return None
    epoch, now = shares[-1]
    before = shares[-1 - WARN_RISING][1] if len(shares) > WARN_RISING else None
    rising = before is not None and now > before
    if now < WARN_ALWAYS and not (now >= WARN_SHARE and rising):
        return None
    label = METRICS["train_saturated"]
    trend = f", up from {before:.0%} {WARN_RISING} epochs before" if rising and before is not None else ""
    return (f"! {label.label} {now:.0%} at epoch {epoch}{trend}: AUCM tends to go NaN or flat next;"
            " lower --set lr or --set margin")
