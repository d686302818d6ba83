"""Typed records: metrics.jsonl / summary.json round trips (old files too), honest selection,
the two-stage answer, seed statistics, the identity rule and the one metrics spec."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from damtui import config as cfg
from damtui.records import (CURVE_METRICS, METRICS, SELECTED_METRICS, EpochRow, MeanStd, RunSummary, Selected,
                            two_stage_answer)

OLD_ROW = {  # a metrics.jsonl line as damtui wrote it before the typed records
    "epoch": 2, "train_loss": 0.61, "train_auc": 0.7, "train_acc": 0.6, "train_acc_thr": 0.62, "val_auc": 0.8,
    "val_acc": 0.7, "val_acc_thr": 0.72, "test_auc": 0.75, "test_acc": 0.65, "test_acc_thr": 0.66,
    "threshold": [0.48], "lr": 0.001, "epoch_s": 3.5, "train_s": 3.0, "eval_s": 0.5, "images_per_s": 182.0,
}
OLD_SUMMARY = {  # summary.json of a fine-tune written before the typed records
    "run_id": "fin", "status": "finished", "dataset": "breastmnist", "stage": "finetune", "preset": "p",
    "epochs_done": 3, "best_epoch": 2, "best_val_auc": 0.81, "best_val_acc": 0.7, "best_test_auc": 0.79,
    "best_test_acc": 0.71, "best_test_acc_thr": 0.72, "best_threshold": [0.5],
    "test_selected_auc_optimistic": 0.83, "test_selected_epoch_optimistic": 3,
    "answer": {"stage": "pretrain", "best_epoch": 7, "best_val_auc": 0.84, "best_test_auc": 0.8,
               "best_test_acc": 0.74, "best_test_acc_thr": 0.75},
}


def _rows(*vals: tuple[float | None, float]) -> list[EpochRow]:
    return [EpochRow(i + 1, val_auc=v, test_auc=t, test_acc=0.5) for i, (v, t) in enumerate(vals)]


def test_an_old_metrics_line_reads_back_and_writes_out_unchanged():
    row = EpochRow.from_json(OLD_ROW)
    assert row.val_auc == 0.8 and row.threshold == (0.48,) and row.epoch == 2
    assert row.to_json() == OLD_ROW


def test_unknown_keys_survive_a_round_trip():
    row = EpochRow.from_json({**OLD_ROW, "grad_norm": 1.5})
    assert row.value("grad_norm") == 1.5
    assert row.to_json()["grad_norm"] == 1.5


@pytest.mark.parametrize("bad, reason", [
    (42, "not a JSON object"), ([1, 2], "not a JSON object"), ({"epoch": "two"}, "integer 'epoch'"),
    ({"epoch": 1, "val_auc": "high"}, "'val_auc' is 'high'"), ({"epoch": 1, "lr": True}, "'lr'"),
])
def test_a_row_that_is_not_an_epoch_row_is_refused_with_the_reason(bad, reason):
    with pytest.raises(ValueError, match=reason):
        EpochRow.from_json(bad)


def test_selection_is_on_validation_and_test_is_read_there():
    rows = _rows((0.7, 0.9), (0.8, 0.6), (None, 0.95))
    s = RunSummary.of(rows, run_id="r", status="finished", dataset="d", stage="pretrain", preset="p")
    assert s.best is not None and s.best.epoch == 2 and s.best.test_auc == 0.6
    assert (s.test_selected_auc_optimistic, s.test_selected_epoch_optimistic) == (0.95, 3)
    assert s.result == s.best  # a pretrain's answer is its own best
    empty = RunSummary.of([], run_id="r", status="cancelled", dataset="d", stage="pretrain", preset="p")
    assert empty.best is None and empty.result is None and empty.to_json()["best_epoch"] is None


def test_an_old_summary_reads_back_with_its_answer_and_writes_the_same_keys():
    s = RunSummary.from_json(OLD_SUMMARY)
    assert s.best == Selected("finetune", 2, 0.81, 0.7, 0.79, 0.71, 0.72)
    assert s.answer is not None and s.answer.stage == "pretrain" and s.answer.epoch == 7
    assert s.result is s.answer
    out = s.to_json()
    for key in ("best_epoch", "best_val_auc", "best_test_auc", "best_test_acc_thr", "test_selected_auc_optimistic"):
        assert out[key] == OLD_SUMMARY[key]
    assert RunSummary.from_json(json.loads(json.dumps(out))) == s


def test_the_two_stage_answer_is_the_better_validation_epoch_of_both_stages():
    pre = RunSummary.of(_rows((0.9, 0.8)), run_id="pre", status="finished", dataset="d", stage="pretrain",
                        preset="p")
    worse = Selected("finetune", 1, val_auc=0.85, test_auc=0.99)
    better = Selected("finetune", 1, val_auc=0.95, test_auc=0.7)
    assert two_stage_answer(worse, pre) == pre.best  # never below the pretrain in val AUC
    assert two_stage_answer(better, pre) == better
    assert two_stage_answer(None, pre) == pre.best
    assert two_stage_answer(better, None) == better


def test_mean_std_is_the_sample_std_and_none_for_one_seed():
    assert MeanStd.of([0.8, 0.9]).format() == "0.8500 ± 0.0707"
    one = MeanStd.of([0.8, None, float("nan")])
    assert (one.mean, one.std, one.n) == (0.8, None, 1) and one.format() == "0.8000"
    assert MeanStd.of([]).format() == "-"


def test_every_metric_a_front_end_draws_is_in_the_spec():
    assert set(CURVE_METRICS) <= set(METRICS) and set(SELECTED_METRICS) <= set(METRICS)
    row_keys = set(EpochRow.from_json(OLD_ROW).to_json())
    assert row_keys <= set(METRICS)  # every recorded value has a label and a format
    assert METRICS["val_auc"].format(0.81234) == "0.8123" and METRICS["val_auc"].format(None) == "-"
    assert METRICS["train_loss"].better is False and METRICS["lr"].better is None


def test_the_identity_rule_ignores_provenance_runtime_and_what_is_named():
    base = cfg.find_preset("demo", "synthetic2d", "pretrain")
    renamed = base.model_copy(update={"preset": "mine", "description": "x", "source": "y", "threads": 1})
    assert cfg.same_but_seed(base, renamed)
    assert cfg.same_but_seed(base, base.model_copy(update={"seed": 5}))
    assert not cfg.same_but_seed(base, base.model_copy(update={"lr": base.lr * 2}))
    assert "epochs" not in cfg.hyperparameters(base, ["epochs"])
    assert cfg.PROVENANCE_KEYS == {"preset", "source", "description"} and cfg.RUNTIME_KEYS == {"threads"}


def test_no_module_but_records_defines_a_metric_label(tmp_path: Path):
    """One definition of each fact: labels like 'val AUC' live in records.METRICS only."""
    pkg = Path(cfg.__file__).parent
    offenders = [str(p.relative_to(pkg)) for p in pkg.rglob("*.py")
                 if p.name != "records.py" and '"val AUC"' in p.read_text()]
    assert offenders == []
