import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from damtui.analysis import metrics


@pytest.mark.parametrize("seed", range(5))
def test_binary_auc_matches_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.random(300) + 0.3 * y, 1)  # rounding makes many ties
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_multilabel_auc_is_mean_of_per_label_aucs():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, (200, 14))
    s = rng.random((200, 14)) + 0.2 * y
    expected = np.mean([roc_auc_score(y[:, j], s[:, j]) for j in range(14)])
    assert metrics.auc(y, s) == pytest.approx(expected, abs=1e-12)
    assert metrics.auc(y, s) == pytest.approx(roc_auc_score(y, s, average="macro"), abs=1e-12)


def test_auc_single_class_is_nan_and_skipped_in_multilabel():
    assert math.isnan(metrics.auc(np.ones(5), np.arange(5.0)))
    y = np.array([[1, 0], [1, 1], [1, 0], [1, 1]])
    s = np.array([[0.1, 0.2], [0.2, 0.9], [0.3, 0.1], [0.4, 0.8]])
    assert metrics.auc(y, s) == pytest.approx(1.0)


def test_accuracy_medmnist_rule_strictly_above_half():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.5, 0.5, 0.9, 0.1])
    assert metrics.accuracy(y, s) == pytest.approx(0.75)  # 0.5 is predicted negative
    yl = np.array([[1, 0], [0, 0]])
    sl = np.array([[0.9, 0.9], [0.1, 0.1]])
    assert metrics.accuracy(yl, sl) == pytest.approx(0.75)


def test_threshold_chosen_on_validation_maximises_accuracy():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = 0.05 * rng.random(500) + 0.02 * y  # uncalibrated scores, all below 0.5
    thr = metrics.choose_threshold(y, s)
    acc = metrics.accuracy(y, s, thr)
    assert acc > metrics.accuracy(y, s, 0.5)
    grid = np.unique(s)
    assert acc >= max(metrics.accuracy(y, s, t) for t in grid) - 1e-12
