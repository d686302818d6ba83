"""Training-health numbers (damtui.train.health): the pure pieces, the saturation warning rule, and a
tiny synthetic fine-tune that records a/b/alpha, imratio and the batches' positive share."""

from __future__ import annotations

import math

import numpy as np
import pytest

from damtui.train import health
from damtui.store import runs
from damtui.records import EpochRow
from support import demo_config, run_stage


def test_score_bce_equals_cross_entropy_of_the_class_1_score():
    y = np.array([[1], [0], [1], [0]])
    p = np.array([[0.9], [0.2], [0.6], [0.4]])
    want = -np.mean([math.log(0.9), math.log(0.8), math.log(0.6), math.log(0.6)])
    assert health.score_bce(y, p) == pytest.approx(want)
    assert health.score_bce(y, np.array([[1.0], [0.0], [1.0], [0.0]])) < 1e-5  # clipped, finite


def test_saturated_and_positive_share():
    assert health.saturated_share(np.array([0.001, 0.5, 0.995, 0.3])) == pytest.approx(0.5)
    assert health.positive_share(np.array([[1, 0], [0, 0]])) == pytest.approx(0.25)
    assert math.isnan(health.saturated_share(np.array([])))


def rows(shares):
    return [EpochRow(i + 1, train_saturated=s) for i, s in enumerate(shares)]


def test_warning_when_saturation_is_high_and_rising():
    line = health.saturation_warning(rows([0.1, 0.2, 0.35]), "finetune")
    assert line is not None and "35%" in line and "epoch 3" in line and "10%" in line
    assert "\n" not in line


@pytest.mark.parametrize("shares, stage", [
    ([0.1, 0.2, 0.25], "finetune"),  # rising but low
    ([0.6, 0.5, 0.4], "finetune"),  # high but falling
    ([0.4], "finetune"),  # high, no history to rise over
    ([0.1, 0.5, 0.95], "pretrain"),  # a confident CE model is fine
    ([], "finetune"),
])
def test_no_warning(shares, stage):
    assert health.saturation_warning(rows(shares), stage) is None


def test_warning_at_once_when_almost_everything_saturates():
    assert health.saturation_warning(rows([0.95]), "finetune") is not None


def test_old_rows_without_health_keys_load_with_none():
    row = EpochRow.from_json({"epoch": 1, "train_loss": 0.5, "val_auc": 0.7})
    assert row.val_loss is None and row.aucm_alpha is None and row.value("train_saturated") is None


@pytest.mark.slow
@pytest.mark.parametrize("dual", [False, True])
def test_finetune_records_health_numbers(runs_dir, pretrain_copy, dual):
    over = {"epochs": 2, "width": 4}
    if dual:
        over |= {"dual_sampler": True, "sampling_rate": 0.5}
    summary, _ = run_stage(demo_config("finetune", **over), runs_dir, from_run=pretrain_copy)
    assert summary.status == "finished"
    got, _ = runs.read_metrics(runs_dir / summary.run_id)
    assert len(got) == 2
    for row in got:
        for key in ("aucm_a", "aucm_b", "aucm_alpha", "imratio", "val_loss", "train_saturated", "train_pos_share"):
            assert row.value(key) is not None and math.isfinite(row.value(key)), key
        assert 0 <= row.train_saturated <= 1
        # without the sampler the batches hold the training split's share, which AUCM's imratio is
        want = 0.5 if dual else row.imratio
        assert row.train_pos_share == pytest.approx(want, abs=0.05)
    assert got[1].aucm_a != got[0].aucm_a  # PESG moved a


def test_pretrain_records_saturation_and_val_loss_but_no_aucm(pretrain_run):
    got, _ = runs.read_metrics(pretrain_run)
    assert all(r.train_saturated is not None and r.val_loss is not None for r in got)
    assert all(r.aucm_a is None and r.imratio is None for r in got)


def test_cli_printer_prints_the_warning_line_under_the_epoch_line(capsys):
    from damtui import events as E
    from damtui.store.log import PlainPrinter

    printer = PlainPrinter()
    printer(E.RunStarted("r", "/tmp/r", {"stage": "finetune"}, {}, "cpu", 0, 3))
    for row in rows([0.1, 0.2, 0.5]):
        printer(E.EpochMetrics(row.epoch, row, 1, False))
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("! saturated") for line in lines) == 1
    assert lines[-1].startswith("! saturated train scores 50% at epoch 3")
