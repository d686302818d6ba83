"""damtui.analysis.mistakes: exactly the misclassified test samples, from saved or freshly computed scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from damtui.analysis import metrics, mistakes
from damtui.store import runs
from damtui.errors import DamtuiError


def test_mistakes_are_exactly_the_misclassified_indices_at_the_threshold():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.3).astype(int)
    s = np.clip(rng.normal(0.3 + 0.4 * y, 0.2), 0, 1).astype(np.float32)
    s[:5] = 0.5  # ties at the threshold count as negative predictions (score > threshold)
    thr = 0.5
    found = mistakes.find_mistakes(s, y, thr)
    wrong = set(np.flatnonzero((s > thr) != (y == 1)))
    assert {m.index for m in found.false_positives} | {m.index for m in found.false_negatives} == wrong
    assert all(y[m.index] == 0 and s[m.index] > thr for m in found.false_positives)
    assert all(y[m.index] == 1 and s[m.index] <= thr for m in found.false_negatives)
    fp, fn = [m.score for m in found.false_positives], [m.score for m in found.false_negatives]
    assert fp == sorted(fp, reverse=True) and fn == sorted(fn)  # most confident first
    assert 1 - found.wrong / len(y) == pytest.approx(metrics.accuracy(y, s, thr))


def test_multilabel_mistakes_are_read_per_label():
    s = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    y = np.array([[0, 0], [1, 1], [1, 1]])
    first = mistakes.find_mistakes(s, y, 0.5, label=0)
    second = mistakes.find_mistakes(s, y, 0.5, label=1)
    assert [m.index for m in first.false_positives] == [0] and [m.index for m in first.false_negatives] == [1]
    assert second.false_positives == [] and [m.index for m in second.false_negatives] == [2]


def write_scores(run: Path, epoch: int, test_scores: np.ndarray, test_labels: np.ndarray, thr) -> None:
    """scores.npz in the format the uncertainty helper's run store writes."""
    np.savez(run / runs.SCORES, epoch=np.int64(epoch), val_scores=test_scores,
             val_labels=test_labels, test_scores=test_scores, test_labels=test_labels,
             val_threshold=np.asarray(thr, dtype=np.float32))


def test_saved_scores_are_used_without_scoring(pretrain_copy, monkeypatch):
    import damtui.train.predict

    monkeypatch.setattr(damtui.train.predict, "predict_best", lambda *a, **k: pytest.fail("scored again"))
    epoch = runs.load_run(pretrain_copy).info.result.epoch
    write_scores(pretrain_copy, epoch, np.array([0.9, 0.1, 0.7], np.float32), np.array([0, 1, 1]), 0.5)
    answer = mistakes.answer_scores(pretrain_copy)
    assert answer.note.startswith("saved scores") and answer.thresholds == [0.5]
    found = mistakes.run_mistakes(answer)
    assert [m.index for m in found.false_positives] == [0] and [m.index for m in found.false_negatives] == [1]


def test_without_saved_scores_best_pt_is_scored_now(pretrain_copy, data_root):
    from damtui.train.predict import predict_best

    (pretrain_copy / runs.SCORES).unlink(missing_ok=True)  # a run from before scores.npz existed
    answer = mistakes.answer_scores(pretrain_copy, data_root, "cpu")
    assert answer.note == mistakes.COMPUTED_NOW and answer.run_dir == pretrain_copy
    pred = predict_best(pretrain_copy, data_root, "cpu")
    assert answer.thresholds == metrics.choose_threshold(pred["val"][1], pred["val"][0])
    found = mistakes.run_mistakes(answer)
    row = next(r for r in runs.load_run(pretrain_copy).metrics if r.epoch == answer.epoch)
    assert 1 - found.wrong / found.n_test == pytest.approx(row.test_acc_thr)  # what the run recorded


def test_a_finetune_whose_answer_is_its_pretrain_uses_the_pretrain_checkpoint(pretrain_copy, tmp_path):
    from damtui.records import RunSummary

    import shutil

    ft = tmp_path / "runs" / "ft"
    ft.mkdir()
    for name in (runs.METRICS, runs.STATUS):
        shutil.copy(pretrain_copy / name, ft / name)
    cfg = runs.load_run(pretrain_copy).config | {"stage": "finetune"}
    runs.atomic_write_json(ft / runs.CONFIG, {"config": cfg, "runtime": {
        "from_run": pretrain_copy.name, "from_run_path": str(pretrain_copy)}})
    pre = runs.summary_of(runs.load_run(pretrain_copy))
    answer = pre.best
    runs.atomic_write_json(ft / runs.SUMMARY, RunSummary("ft", "finished", cfg["dataset"], "finetune", "",
                                                         0, None, answer).to_json())
    path, stage, epoch = mistakes.answer_run(ft)
    assert (path, stage, epoch) == (pretrain_copy, "pretrain", answer.epoch)


def test_a_run_without_epochs_is_a_one_line_error(pretrain_copy, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / runs.CONFIG).write_bytes((pretrain_copy / runs.CONFIG).read_bytes())
    with pytest.raises(DamtuiError, match="no finished epoch"):
        mistakes.answer_run(empty)
