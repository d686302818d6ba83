"""AUC, ACC, validation-chosen thresholds and honest best-epoch selection; pure numpy.

MedMNIST protocol: binary AUC on the class-1 score and ACC with score > 0.5; multi-label AUC is
the mean of the per-label AUCs and ACC the mean per-label accuracy. Model selection uses the
validation AUC only; test numbers are read at that epoch.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a.reshape(len(a), -1)


def _auc_1d(y: np.ndarray, s: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), average ranks for ties (equals sklearn's roc_auc_score)."""
    pos = y > 0.5
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(len(s), dtype=np.float64)
    # average rank over runs of equal scores
    boundaries = np.flatnonzero(np.diff(sorted_s)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(s)]))
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each run
    ranks[order] = np.repeat(avg, ends - starts)
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Binary (N,) / (N,1) or multi-label (N,L): mean of per-label AUCs, labels with one class skipped."""
    y, s = _as_2d(y_true), _as_2d(scores)
    values = [_auc_1d(y[:, j], s[:, j]) for j in range(y.shape[1])]
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else float("nan")


def accuracy(y_true: np.ndarray, scores: np.ndarray, threshold: float | Sequence[float] = 0.5) -> float:
    """Share of correct predictions with score > threshold; multi-label: mean over labels."""
    y, s = _as_2d(y_true), _as_2d(scores)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (s.shape[1],))
    return float(np.mean((s > thr) == (y > 0.5)))


def _best_threshold_1d(y: np.ndarray, s: np.ndarray) -> float:
    """Threshold maximising accuracy; among equals, the one nearest 0.5 (the benchmark's rule)."""
    u = np.unique(s)
    cands = np.concatenate(([u[0] - 1e-6], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1e-6]))
    pos = y > 0.5
    # accuracy for each candidate via sorted counts: predicted positive = s > c
    s_sorted = np.sort(s)
    s_pos = np.sort(s[pos])
    n_pos_above = len(s_pos) - np.searchsorted(s_pos, cands, side="right")
    n_above = len(s_sorted) - np.searchsorted(s_sorted, cands, side="right")
    n_neg_below = (len(s) - pos.sum()) - (n_above - n_pos_above)
    acc = (n_pos_above + n_neg_below) / len(s)
    best = np.flatnonzero(acc >= acc.max() - 1e-12)
    return float(cands[best[np.argmin(np.abs(cands[best] - 0.5))]])


def choose_threshold(y_true: np.ndarray, scores: np.ndarray) -> list[float]:
    """Per-label decision thresholds chosen on (validation) data, to apply to test scores."""
    y, s = _as_2d(y_true), _as_2d(scores)
    return [_best_threshold_1d(y[:, j], s[:, j]) for j in range(y.shape[1])]


def split_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: Sequence[float]) -> dict[str, float]:
    return {
        "auc": auc(y_true, scores),
        "acc": accuracy(y_true, scores, 0.5),
        "acc_thr": accuracy(y_true, scores, threshold),
    }
