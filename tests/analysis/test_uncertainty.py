"""Intervals of test metrics (damtui.analysis.uncertainty), scores.npz and summary.json intervals."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import norm

from damtui.analysis import metrics, uncertainty
from damtui import records
from damtui.store import results as run_results, runs
from damtui.records import Interval, RunSummary, Selected
from support import REAL_DATA, demo_config, run_stage


def binormal(rng: np.random.Generator, n_pos: int, n_neg: int, d: float) -> tuple[np.ndarray, np.ndarray]:
    """Scores N(d, 1) for positives and N(0, 1) for negatives: true AUC = Phi(d / sqrt 2)."""
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    return y, np.r_[rng.normal(d, 1, n_pos), rng.normal(0, 1, n_neg)]


def naive_bootstrap(y: np.ndarray, s: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """The textbook stratified bootstrap: build every resample and score it."""
    pos, neg = s[y == 1], s[y == 0]
    out = []
    for _ in range(n):
        p, q = rng.choice(pos, len(pos)), rng.choice(neg, len(neg))
        out.append(metrics.auc(np.r_[np.ones(len(p)), np.zeros(len(q))], np.r_[p, q]))
    return np.array(out)


@pytest.mark.parametrize("n_pos, n_neg", [(42, 114), (114, 42), (25, 500)])  # the last: cell by cell
def test_fast_bootstrap_has_the_textbook_bootstraps_law(n_pos, n_neg):
    """Drawing counts per gap instead of building resamples gives the same distribution (ties too)."""
    rng = np.random.default_rng(1)
    y, s = binormal(rng, n_pos, n_neg, 1.0)
    s = np.round(s, 1)  # many ties
    fast = uncertainty.bootstrap_auc(y, s, 3000)
    slow = naive_bootstrap(y, s, 1500, rng)
    assert abs(fast.mean() - slow.mean()) < 0.004
    assert abs(fast.std() - slow.std()) / slow.std() < 0.08
    assert abs(fast.mean() - metrics.auc(y, s)) < 0.004


@pytest.mark.parametrize("sizes", [[3, 1, 2, 1, 5], [40, 90, 25, 60, 85]])  # item by item, cell by cell
def test_cell_counts_are_multinomial_either_way(sizes):
    sizes = np.array(sizes)
    counts = uncertainty.resample_counts(sizes, 20000, np.random.default_rng(4))
    total, p = sizes.sum(), sizes / sizes.sum()
    assert (counts.sum(axis=1) == total).all()
    assert np.allclose(counts.mean(axis=0), total * p, rtol=0.03)
    assert np.allclose(counts.var(axis=0), total * p * (1 - p), rtol=0.06)


def test_intervals_cover_the_true_auc_at_the_nominal_rate():
    """Simulation: 300 test sets of BreastMNIST's size; the 95% interval holds the true AUC ~95%."""
    rng = np.random.default_rng(2)
    d = 1.2
    true_auc = norm.cdf(d / math.sqrt(2))
    hits = 0
    for i in range(300):
        y, s = binormal(rng, 114, 42, d)
        iv = uncertainty.percentile_interval(uncertainty.bootstrap_auc(y, s, 1000, seed=i))
        hits += iv.lo <= true_auc <= iv.hi
    assert 0.90 <= hits / 300 <= 0.99


def test_acc_interval_covers_the_true_accuracy():
    rng = np.random.default_rng(3)
    d = 1.0
    true_acc = (114 * norm.cdf(d - 0.5) + 42 * norm.cdf(0.5)) / 156  # threshold at 0.5
    hits = 0
    for i in range(300):
        y, s = binormal(rng, 114, 42, d)
        hits += (lambda iv: iv.lo <= true_acc <= iv.hi)(
            uncertainty.percentile_interval(uncertainty.bootstrap_acc(y, s, 0.5, 1000, seed=i)))
    assert 0.90 <= hits / 300 <= 0.99


def test_delong_agrees_with_the_bootstrap_and_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(4)
    for n_pos, n_neg, d in ((114, 42, 1.0), (40, 258, 0.6), (500, 500, 2.0)):
        y, s = binormal(rng, n_pos, n_neg, d)
        aucs, cov = uncertainty.delong(y, s)
        assert aucs[0] == pytest.approx(roc_auc_score(y, s))
        boot = uncertainty.bootstrap_auc(y, s, 4000)
        assert math.sqrt(cov[0, 0]) == pytest.approx(boot.std(), rel=0.1)
        dl, bs = uncertainty.delong_interval(y, s), uncertainty.percentile_interval(boot)
        assert abs(dl.lo - bs.lo) < 0.02 and abs(dl.hi - bs.hi) < 0.02


def test_multilabel_auc_resamples_average_the_labels():
    rng = np.random.default_rng(5)
    y = (rng.random((400, 3)) < [0.1, 0.3, 0.5]).astype(int)
    s = rng.random((400, 3)) + 0.4 * y
    boot = uncertainty.bootstrap_auc(y, s, 1000)
    assert abs(boot.mean() - metrics.auc(y, s)) < 0.005
    y[:, 2] = 0  # a label with one class is skipped, as metrics.auc skips it
    assert abs(uncertainty.bootstrap_auc(y, s, 1000).mean() - metrics.auc(y, s)) < 0.005


def test_paired_difference_resolves_a_real_gap_and_not_noise():
    rng = np.random.default_rng(6)
    y, good = binormal(rng, 114, 42, 1.5)
    noisy = good + rng.normal(0, 0.05, len(good))  # the same model, jittered
    worse = good + rng.normal(0, 2.0, len(good))
    same = uncertainty.paired_difference(good, noisy, y)
    assert not same.resolved and same.lo < 0 < same.hi
    gap = uncertainty.paired_difference(good, worse, y)
    assert gap.resolved and gap.diff == pytest.approx(metrics.auc(y, good) - metrics.auc(y, worse))
    # the paired interval is much narrower than the two unpaired intervals would suggest
    a, b = uncertainty.delong_interval(y, good), uncertainty.delong_interval(y, noisy)
    assert same.hi - same.lo < (a.hi - a.lo) / 3 and b.hi > b.lo


def test_paired_difference_is_stated_in_the_agreed_words():
    assert records.format_difference(0.012, -0.018, 0.041, False) == "+0.012 [-0.018, +0.041]: no clear difference"
    assert records.format_difference(0.05, 0.01, 0.09, True).endswith(": clearly higher")
    assert records.format_difference(-0.05, -0.09, -0.01, True).endswith(": clearly lower")
    assert records.format_with_interval("test_auc", 0.9012, Interval(0.862, 0.938)) == "0.901 [0.862, 0.938]"
    assert records.format_with_interval("test_auc", 0.9012, None) == "0.9012"


def test_selected_intervals_round_trip_and_old_summaries_read_without():
    sel = Selected("pretrain", 3, 0.9, 0.8, 0.85, 0.7, 0.72, intervals={"test_auc": Interval(0.8, 0.9)})
    data = json.loads(json.dumps(sel.to_json()))
    assert data["intervals"] == {"test_auc": [0.8, 0.9]}
    assert Selected.from_json(data) == sel
    old = {k: v for k, v in data.items() if k != "intervals"}
    assert Selected.from_json(old).intervals == {}
    assert "0.850 [0.800, 0.900]" in sel.describe()


def test_chest_sized_intervals_through_the_real_path():
    """22k x 14 labels through the real path (the timing itself: benchmarks/bootstrap_speed.py)."""
    rng = np.random.default_rng(7)
    y = (rng.random((22433, 14)) < 0.05).astype(int)
    s = (rng.random((22433, 14)) * 0.5 + 0.3 * y).astype(np.float32)
    iv = uncertainty.score_intervals(y, s, [0.5] * 14)
    auc = metrics.auc(y, s)
    assert iv["test_auc"].lo < auc < iv["test_auc"].hi and iv["test_auc"].hi - iv["test_auc"].lo < 0.02


# ----------------------------------------------------------------------------- the run folder


@pytest.mark.slow
def test_training_writes_scores_with_best_and_intervals_in_summary(tmp_path):
    summary, _ = run_stage(demo_config(epochs=2, width=4), tmp_path)
    run = tmp_path / summary.run_id
    scores = runs.load_scores(run)
    assert scores is not None and scores.epoch == summary.best.epoch
    assert scores.test_scores.dtype == np.float32 and scores.test_scores.ndim == 1
    assert scores.val_threshold.shape == ()
    rows, _ = runs.read_metrics(run)
    best_row = rows[summary.best.epoch - 1]
    assert metrics.auc(scores.test_labels, scores.test_scores) == pytest.approx(best_row.test_auc, abs=1e-6)
    assert float(scores.val_threshold) == pytest.approx(best_row.threshold[0])
    stored = RunSummary.from_json(json.loads((run / runs.SUMMARY).read_text()))
    iv = stored.best.intervals["test_auc"]
    assert iv.lo <= stored.best.test_auc <= iv.hi and set(stored.best.intervals) >= {"test_auc", "test_acc"}
    assert stored.answer.intervals == stored.best.intervals


@pytest.mark.slow
def test_finetune_answer_from_the_pretrain_uses_its_scores(tmp_path):
    pre, _ = run_stage(demo_config(epochs=1, width=4), tmp_path)
    fine, _ = run_stage(demo_config("finetune", epochs=1, width=4, lr=1e-9), tmp_path,
                        from_run=tmp_path / pre.run_id)
    rec = runs.load_run(tmp_path / fine.run_id)
    scores = run_results.result_scores(rec)
    assert scores is not None and scores.epoch == rec.info.result.epoch
    result = run_results.result(rec)
    assert result.intervals, "the answer shows an interval whichever stage it came from"
    stored = RunSummary.from_json(json.loads((rec.info.path / runs.SUMMARY).read_text()))
    pre_best = RunSummary.from_json(json.loads((tmp_path / pre.run_id / runs.SUMMARY).read_text())).best
    assert stored.best.intervals and stored.answer.intervals
    if stored.answer.stage == "pretrain":  # the pretrain's own intervals travel into the fine-tune's summary
        assert stored.answer.intervals == pre_best.intervals


def test_a_run_without_scores_still_reads(tmp_path):
    summary, _ = run_stage(demo_config(epochs=1, width=4), tmp_path)
    run = tmp_path / summary.run_id
    (run / runs.SCORES).unlink()
    data = json.loads((run / runs.SUMMARY).read_text())
    data.pop("intervals")
    data["answer"].pop("intervals")
    (run / runs.SUMMARY).write_text(json.dumps(data))
    rec = runs.load_run(run)
    assert runs.load_scores(run) is None and run_results.result(rec).intervals == {}
    (run / runs.SCORES).write_bytes(b"torn")  # damaged, not "not recorded": said in one line
    with pytest.raises(runs.ScoresDamage, match="scores.npz: not a readable .npz"):
        runs.load_scores(run)
    assert runs.load_run(run).info.status == runs.DAMAGED


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_DATA / "breastmnist.npz").exists(), reason="real MedMNIST files not here")
def test_real_breastmnist_flow_records_scores_intervals_and_curves(tmp_path):
    from damtui import config as cfgs
    from damtui.analysis import curves

    cfg = cfgs.apply_overrides(cfgs.find_preset("report", "breastmnist", "pretrain"),
                               {"epochs": 2, "width": 4, "threads": 1})
    summary, _ = run_stage(cfg, tmp_path, data_root=REAL_DATA)
    rec = runs.load_run(tmp_path / summary.run_id)
    scores = runs.load_scores(rec.info.path)
    assert len(scores.test_labels) == 156 and len(scores.val_labels) == 78
    iv = run_results.result(rec).intervals["test_auc"]
    assert iv.hi - iv.lo > 0.03, "156 test images cannot pin an AUC to a hundredth"
    view = curves.of(scores, "breastmnist")
    assert view.roc_title.startswith("ROC") and view.confusion_05.total == 156
