"""How sure a test number is: stratified bootstrap intervals of AUC and ACC, DeLong's variance,
and the paired difference of two models scored on the same images. Pure numpy, no torch, no UI.

MedMNIST test sets are small (BreastMNIST 156 images), so a 0.01 AUC gap is usually noise; these
intervals say so. The bootstrap resamples positives and negatives separately (stratified: every
resample keeps the class counts, so AUC is always defined) and never builds the resampled arrays:
a resample's AUC only depends on how many copies of each positive land in each gap between
negative scores, and those counts are multinomial, so all resamples are drawn at once from the
sorted scores, and labels run in parallel threads (benchmarks/bootstrap_speed.py). Multi-label AUC is the
mean of per-label AUCs (MedMNIST protocol); each label is resampled in its own strata, which
ignores the covariance between labels that share images (a slightly narrow interval when
labels' errors move together).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from damtui.records import Interval
from damtui.train.threads import usable_cores

RESAMPLES = 1000
SEED = 15  # fixed: the same run always shows the same interval
LEVEL = 0.95
Z95 = 1.959963984540054


def _columns(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(y), np.asarray(s, dtype=np.float64)
    return (y.reshape(len(y), -1) > 0.5), s.reshape(len(s), -1)


# ----------------------------------------------------------------------------- bootstrap


ITEMS_PER_CELL_MAX = 12  # above it, one binomial per cell is cheaper than one integer per item (measured)
CHUNK = 4_000_000  # integers drawn at once when counting item by item (16 MB of int32)


def resample_counts(sizes: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """How many of a class's resampled items land in each cell, for `n` resamples (n, cells).

    Few items per cell: draw every resampled item (uniform integers, then count per cell), which
    costs ~12 ns an item. Many: numpy's multinomial, one binomial per cell (50-170 ns a cell)."""
    total, cells = int(sizes.sum()), len(sizes)
    if total > ITEMS_PER_CELL_MAX * cells:
        return rng.multinomial(total, sizes / total, size=n)
    cell_of = np.repeat(np.arange(cells, dtype=np.int32), sizes)
    out = np.empty((n, cells), np.int64)
    step = max(1, CHUNK // total)
    for start in range(0, n, step):
        rows = min(step, n - start)
        flat = cell_of[rng.integers(0, total, size=(rows, total), dtype=np.int32)]
        flat += (np.arange(rows, dtype=np.int32) * cells)[:, None]
        out[start:start + rows] = np.bincount(flat.ravel(), minlength=rows * cells).reshape(rows, cells)
    return out


def _auc_resamples(pos: np.ndarray, neg: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """AUC of `n` stratified resamples of one label, as if the resampled arrays were built.

    AUC = P(score_pos > score_neg) + P(tie)/2. Positives that sit between the same two negatives
    (same ties) win the same, so they form one group; the negatives fall in the cells between
    the groups' edges. A resample draws copies per group and per cell, never per image."""
    if len(pos) > len(neg):  # groups over the smaller class: AUC(pos, neg) = AUC(-neg, -pos)
        pos, neg = -neg, -pos
    neg = np.sort(neg)
    lr = np.stack([np.searchsorted(neg, pos, "left"), np.searchsorted(neg, pos, "right")], axis=1)
    groups, group_sizes = np.unique(lr, axis=0, return_counts=True)  # (G, 2) edges into sorted negatives
    edges = np.unique(np.concatenate(([0, len(neg)], groups.ravel())))
    cell_sizes = np.diff(edges)
    neg_counts = resample_counts(cell_sizes, n, rng)
    below_edge = np.concatenate([np.zeros((n, 1), neg_counts.dtype), np.cumsum(neg_counts, axis=1)], axis=1)
    lo_plus_hi = below_edge[:, np.searchsorted(edges, groups[:, 0])] + below_edge[:, np.searchsorted(edges, groups[:, 1])]
    pos_counts = resample_counts(group_sizes, n, rng)
    twice_wins = np.einsum("ij,ij->i", pos_counts, lo_plus_hi)  # a tie wins half
    return twice_wins / (2 * len(pos) * len(neg))


def bootstrap_auc(labels: np.ndarray, scores: np.ndarray, n: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """AUC of `n` stratified resamples (binary, or the mean over labels for multi-label; labels
    with one class are skipped, as metrics.auc does)."""
    y, s = _columns(labels, scores)
    columns = [j for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if not columns:
        return np.full(n, np.nan)
    rngs = [np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(len(columns))]

    def one(j: int, rng: np.random.Generator) -> np.ndarray:
        return _auc_resamples(s[y[:, j], j], s[~y[:, j], j], n, rng)

    with ThreadPoolExecutor(min(len(columns), usable_cores())) as pool:  # numpy draws without the GIL
        return np.mean(list(pool.map(one, columns, rngs)), axis=0)


def bootstrap_acc(labels: np.ndarray, scores: np.ndarray, threshold: float | Sequence[float] = 0.5,
                  n: int = RESAMPLES, seed: int = SEED + 1) -> np.ndarray:
    """ACC (score > threshold; multi-label: mean per-label accuracy) of `n` stratified resamples:
    the correct ones among n_pos resampled positives are Binomial(n_pos, share correct)."""
    y, s = _columns(labels, scores)
    thr = np.broadcast_to(np.asarray(threshold, dtype=np.float64), (s.shape[1],))
    rng = np.random.default_rng(seed)
    total = np.zeros(n)
    for j in range(y.shape[1]):
        correct = (s[:, j] > thr[j]) == y[:, j]
        for group in (y[:, j], ~y[:, j]):
            k = int(group.sum())
            if k:
                total += rng.binomial(k, correct[group].mean(), size=n)
    return total / (len(y) * y.shape[1])


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> Interval | None:
    values = values[~np.isnan(values)]
    if not len(values):
        return None
    lo, hi = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(lo), float(hi))


def score_intervals(labels: np.ndarray, scores: np.ndarray, threshold: float | Sequence[float] | None = None,
                   n: int = RESAMPLES) -> dict[str, Interval]:
    """95% intervals of the test metrics summary.json keeps, keyed by METRICS keys."""
    out = {"test_auc": percentile_interval(bootstrap_auc(labels, scores, n)),
           "test_acc": percentile_interval(bootstrap_acc(labels, scores, 0.5, n))}
    if threshold is not None:
        out["test_acc_thr"] = percentile_interval(bootstrap_acc(labels, scores, threshold, n))
    return {k: v for k, v in out.items() if v is not None}


# ----------------------------------------------------------------------------- DeLong


def _midranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks along the last axis, ties get their average rank."""
    order = np.argsort(x, axis=-1, kind="mergesort")
    sorted_x = np.take_along_axis(x, order, -1)
    ranks = np.empty_like(x, dtype=np.float64)
    for row in range(x.shape[0]):
        sx = sorted_x[row]
        starts = np.concatenate(([0], np.flatnonzero(np.diff(sx)) + 1))
        ends = np.concatenate((starts[1:], [len(sx)]))
        ranks[row, order[row]] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def delong(labels: np.ndarray, *scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUCs (k,) and their DeLong covariance (k, k) for k score vectors of one binary label on
    the same images (Sun & Xu's fast algorithm, midranks for ties)."""
    y = np.asarray(labels).reshape(-1) > 0.5
    s = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in scores])
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both classes")
    pos, neg = s[:, y], s[:, ~y]
    tx, ty, tz = _midranks(pos), _midranks(neg), _midranks(np.concatenate([pos, neg], axis=1))
    aucs = tz[:, :m].sum(axis=1) / (m * n) - (m + 1) / (2 * n)
    v01 = (tz[:, :m] - tx) / n  # per positive: share of negatives below it
    v10 = 1.0 - (tz[:, m:] - ty) / m  # per negative: share of positives above it
    cov = np.atleast_2d(np.cov(v01)) / m + np.atleast_2d(np.cov(v10)) / n
    return aucs, cov


def delong_interval(labels: np.ndarray, scores: np.ndarray) -> Interval:
    """The normal-approximation 95% interval of one binary AUC (the bootstrap's cross-check)."""
    aucs, cov = delong(labels, scores)
    half = Z95 * math.sqrt(cov[0, 0])
    return Interval(float(aucs[0] - half), float(aucs[0] + half))


@dataclass(frozen=True)
class PairedDifference:
    """AUC of model a minus model b on the same test images, with its 95% interval."""

    diff: float
    lo: float
    hi: float

    @property
    def resolved(self) -> bool:
        """The interval leaves out zero: the test set tells the two apart."""
        return self.lo > 0 or self.hi < 0


def paired_difference(scores_a: np.ndarray, scores_b: np.ndarray, labels: np.ndarray) -> PairedDifference:
    """DeLong's paired test of AUC(a) - AUC(b). Multi-label: the mean over labels of the per-label
    differences, their variances summed as if labels were independent."""
    y, a = _columns(labels, scores_a)
    _, b = _columns(labels, scores_b)
    if a.shape != b.shape:
        raise ValueError(f"scores of shape {a.shape} and {b.shape} are not of the same images")
    diffs, variances = [], []
    for j in range(y.shape[1]):
        if not 0 < y[:, j].sum() < len(y):
            continue
        aucs, cov = delong(y[:, j], a[:, j], b[:, j])
        diffs.append(aucs[0] - aucs[1])
        variances.append(max(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1], 0.0))
    if not diffs:
        return PairedDifference(math.nan, math.nan, math.nan)
    k = len(diffs)
    diff, half = float(np.mean(diffs)), Z95 * math.sqrt(sum(variances)) / k
    return PairedDifference(diff, diff - half, diff + half)
