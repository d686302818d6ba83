"""What the curves view of a run shows, computed from its scores.npz: ROC and precision-recall
of the test scores, confusion matrices at 0.5 and at the validation threshold, and for
multi-label sets the per-label test AUCs with medmnist's label names. Pure (numpy, scikit-learn's
curve functions, which medmnist already depends on); screens only draw what this returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from damtui.analysis import metrics
from damtui.store.scores import Scores

MAX_POINTS = 400  # points per drawn curve: a terminal has fewer columns than that anyway


@dataclass(frozen=True)
class Confusion:
    """Test images (multi-label: image-label pairs) by truth and prediction at one threshold."""

    threshold: str  # words: "0.5" or "val threshold 0.62"
    tn: int
    fp: int
    fn: int
    tp: int

    @property
    def total(self) -> int:
        return self.tn + self.fp + self.fn + self.tp

    def lines(self) -> list[str]:
        """A small text table: rows are the truth, columns the prediction."""
        w = max(len(str(v)) for v in (self.tn, self.fp, self.fn, self.tp, "pred 0"))
        return [f"at {self.threshold}",
                f"{'':>8} {'pred 0':>{w}} {'pred 1':>{w}}",
                f"{'true 0':>8} {self.tn:>{w}} {self.fp:>{w}}",
                f"{'true 1':>8} {self.fn:>{w}} {self.tp:>{w}}"]


@dataclass(frozen=True)
class Curves:
    epoch: int
    multilabel: bool
    auc: float  # the test AUC of the protocol (multi-label: mean of per-label AUCs)
    roc: tuple[list[float], list[float]]  # false-positive rate, true-positive rate
    roc_title: str
    pr: tuple[list[float], list[float]]  # recall, precision
    pr_title: str
    confusion_05: Confusion
    confusion_thr: Confusion
    per_label: list[tuple[str, float]]  # multi-label only: (name, test AUC), best first


def _thin(xs: np.ndarray, ys: np.ndarray) -> tuple[list[float], list[float]]:
    if len(xs) > MAX_POINTS:
        keep = np.unique(np.linspace(0, len(xs) - 1, MAX_POINTS).astype(int))
        xs, ys = xs[keep], ys[keep]
    return [float(x) for x in xs], [float(y) for y in ys]


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: np.ndarray | float, words: str) -> Confusion:
    """Counts with score > threshold as 'predicted 1' (the rule of metrics.accuracy)."""
    y = np.asarray(labels).reshape(len(labels), -1) > 0.5
    s = np.asarray(scores, dtype=np.float64).reshape(len(scores), -1)
    pred = s > np.broadcast_to(np.asarray(threshold, dtype=np.float64).reshape(-1), (s.shape[1],))
    return Confusion(words, int((~y & ~pred).sum()), int((~y & pred).sum()), int((y & ~pred).sum()),
                     int((y & pred).sum()))


def label_names(dataset: str, n: int) -> list[str]:
    """medmnist's INFO names of a dataset's labels; 'label j' where it has none."""
    from damtui.data import datasets
    from damtui.errors import DamtuiError

    try:
        names = datasets.spec(dataset).label_names
    except DamtuiError:
        names = {}
    return [names.get(str(j), f"label {j}") for j in range(n)]


def of(scores: Scores, dataset: str) -> Curves:
    """The curves view of one run's saved scores (test split; the threshold chosen on val)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

    y = np.asarray(scores.test_labels)
    s = np.asarray(scores.test_scores, dtype=np.float64)
    multilabel = y.ndim == 2
    auc = metrics.auc(y, s)
    flat_y, flat_s = (y.ravel(), s.ravel()) if multilabel else (y, s)
    pooled = " pooled" if multilabel else ""
    if 0 < flat_y.sum() < len(flat_y):
        fpr, tpr, _ = roc_curve(flat_y, flat_s)
        precision, recall, _ = precision_recall_curve(flat_y, flat_s)
        ap = average_precision_score(flat_y, flat_s)
        roc, pr = _thin(fpr, tpr), _thin(recall[::-1], precision[::-1])
        roc_auc = metrics.auc(flat_y, flat_s)
        # short: a title wider than its plot (a third of 80 columns) is not drawn; the protocol's
        # multi-label test AUC (mean over labels) heads the per-label list
        roc_title = f"ROC pooled, AUC {roc_auc:.3f}" if multilabel else f"ROC, test AUC {auc:.3f}"
        pr_title = f"PR{pooled}, AP {ap:.3f}"
    else:
        roc, pr = ([], []), ([], [])
        roc_title, pr_title = "ROC: one class only", "PR: one class only"
    thr = np.asarray(scores.val_threshold, dtype=np.float64).reshape(-1)
    thr_words = "val threshold " + (f"{thr[0]:.3f}" if thr.size == 1 else "per label")
    per_label: list[tuple[str, float]] = []
    if multilabel:
        names = label_names(dataset, y.shape[1])
        per_label = sorted(((names[j], metrics.auc(y[:, j], s[:, j])) for j in range(y.shape[1])),
                           key=lambda p: (np.isnan(p[1]), -np.nan_to_num(p[1])))
    pairs = " (all labels)" if multilabel else ""
    return Curves(scores.epoch, multilabel, auc, roc, roc_title, pr, pr_title,
                  confusion(y, s, 0.5, "0.5" + pairs), confusion(y, s, thr, thr_words), per_label)
