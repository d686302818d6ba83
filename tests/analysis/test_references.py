"""The shipped MedMNIST v2 numbers load as typed rows and pick the right cells."""

from __future__ import annotations

import pytest

from damtui.analysis import references
from damtui.data.datasets import REPORT_FLAGS


def test_every_report_dataset_has_both_marked_rows_for_both_metrics():
    assert references.datasets() == list(REPORT_FLAGS)
    for flag in references.datasets():
        bench = references.benchmark(flag)
        for metric in references.METRICS:
            assert [r.row for r in bench.lines(metric)] == ["resnet18", "resnet50", "best"]
            assert all(0.5 <= r.value <= 1.0 for r in bench.rows)


@pytest.mark.parametrize(
    "flag, metric, best_model, best_value",
    [
        ("breastmnist", "auc", "Google AutoML Vision", 0.919),
        ("breastmnist", "acc", "ResNet-18 (28)", 0.863),
        ("adrenalmnist3d", "auc", "ResNet-18+ACS", 0.839),
        ("adrenalmnist3d", "acc", "auto-sklearn", 0.802),
    ],
)
def test_best_cell_is_the_maximum_over_all_rows(flag, metric, best_model, best_value):
    best = references.benchmark(flag).row("best", metric)
    assert (best.model, best.value) == (best_model, best_value)


def test_the_report_quotes_the_same_resnet18_rows():
    # the report's own benchmark sentences (../shared/reference/dam-medmnist-report.md)
    quoted = {"pneumoniamnist": (0.944, 0.854), "chestmnist": (0.768, 0.947), "nodulemnist3d": (0.863, 0.844),
              "adrenalmnist3d": (0.827, 0.721), "vesselmnist3d": (0.874, 0.877), "synapsemnist3d": (0.820, 0.745)}
    for flag, (auc, acc) in quoted.items():
        bench = references.benchmark(flag)
        assert (bench.row("resnet18", "auc").value, bench.row("resnet18", "acc").value) == (auc, acc)


def test_synthetic_sets_have_no_benchmark():
    assert references.benchmark("synthetic2d") is None
