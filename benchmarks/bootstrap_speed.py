"""Seconds for the test intervals summary.json stores (damtui.analysis.uncertainty.score_intervals), on
test sets the size of BreastMNIST (156 x 1), AdrenalMNIST3D (298 x 1) and ChestMNIST (22,433 x 14
labels, ChestMNIST's label shares), against the textbook bootstrap that builds every resample.

Run by hand (not a test):
  python benchmarks/bootstrap_speed.py [--resamples 1000] [--repeats 3]
Prints the median of `--repeats` timings per case; results go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

from damtui.analysis import metrics, uncertainty

# ChestMNIST test label shares (atelectasis ... hernia), rounded
CHEST_SHARES = [0.10, 0.025, 0.12, 0.18, 0.05, 0.056, 0.013, 0.047, 0.04, 0.02, 0.02, 0.015, 0.03, 0.002]


def case(n: int, shares: list[float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (rng.random((n, len(shares))) < shares).astype(np.int64)
    s = (1 / (1 + np.exp(-(1.2 * y + rng.normal(0, 1, y.shape))))).astype(np.float32)
    return (y[:, 0], s[:, 0]) if len(shares) == 1 else (y, s)


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def naive(y: np.ndarray, s: np.ndarray, n: int, rng: np.random.Generator) -> None:
    """The textbook stratified bootstrap, one resample at a time (binary only)."""
    pos, neg = s[y == 1], s[y == 0]
    labels = np.r_[np.ones(len(pos)), np.zeros(len(neg))]
    for _ in range(n):
        metrics.auc(labels, np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=uncertainty.RESAMPLES)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy {np.__version__},"
          f" {args.resamples} resamples, median of {args.repeats}")
    for name, n, shares in (("breastmnist", 156, [0.73]), ("adrenalmnist3d", 298, [0.22]),
                            ("chestmnist", 22433, CHEST_SHARES)):
        y, s = case(n, shares, rng)
        thr = [0.5] * len(shares)
        fast = timed(lambda: uncertainty.score_intervals(y, s, thr, args.resamples), args.repeats)
        line = f"{name:15s} {n:6d} x {len(shares):2d}  intervals (AUC, ACC, ACC@thr) {fast:7.3f} s"
        if len(shares) == 1:
            slow = timed(lambda: naive(y, s, args.resamples, rng), 1)
            line += f"   textbook AUC bootstrap {slow:7.3f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main()
