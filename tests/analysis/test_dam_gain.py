"""Does DAM help (damtui.analysis.dam_gain): the paired, seed-pooled bootstrap against a slow
reference made of plain loops, the verdict words, and a fine-tune's two stages read from its run
folder (source_scores.npz, the pretrain's folder, "not recorded")."""

from __future__ import annotations

import math

import numpy as np
import pytest

from damtui.analysis import dam_gain, metrics
from damtui.store import results as run_results, runs
from support import fake_scores, fake_stage_run


def synthetic_pairs(k: int, n: int = 24, seed: int = 3) -> list[dam_gain.Pair]:
    """k seeds of (fine-tune, pretrain) scores of one small test set, rounded so that ties occur."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    y[:2] = [0, 1]
    pairs = []
    for s in range(k):
        pre = np.round(1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1.2, n)))), 1)
        fine = np.round(1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0.3, 1.0, n)))), 1)
        pairs.append((fake_scores(2, y, fine, 0.55 + 0.05 * s), fake_scores(5, y, pre, 0.45)))
    return pairs


def slow_auc(y: list[int], s: list[float]) -> float:
    """Every (positive, negative) pair: 1 if the positive is above, 1/2 if tied."""
    wins, count = 0.0, 0
    for yi, si in zip(y, s):
        for yj, sj in zip(y, s):
            if yi == 1 and yj == 0:
                wins += 1.0 if si > sj else 0.5 if si == sj else 0.0
                count += 1
    return wins / count


def slow_acc(y: list[int], s: list[float], thr: float) -> float:
    return sum((si > thr) == (yi == 1) for yi, si in zip(y, s)) / len(y)


def slow_replicate(pairs: list[dam_gain.Pair], weights: np.ndarray, drawn: np.ndarray) -> tuple[float, float]:
    """One replicate built the long way: the resampled test set as a list of image indices (each
    image as often as drawn), the same list for every drawn seed and both stages, then the mean
    over the drawn seeds of fine-tune minus pretrain."""
    images = [i for i, copies in enumerate(weights) for _ in range(int(copies))]
    d_auc, d_acc = [], []
    for k in drawn:
        fine, pre = pairs[k]
        y = [int(fine.test_labels[i]) for i in images]
        sf = [float(fine.test_scores[i]) for i in images]
        sp = [float(pre.test_scores[i]) for i in images]
        d_auc.append(slow_auc(y, sf) - slow_auc(y, sp))
        d_acc.append(slow_acc(y, sf, float(fine.val_threshold)) - slow_acc(y, sp, float(pre.val_threshold)))
    return sum(d_auc) / len(d_auc), sum(d_acc) / len(d_acc)


@pytest.mark.parametrize("k", [1, 3])
def test_the_paired_interval_is_the_slow_reference_computation(k):
    """Same draws, computed with plain loops: every replicate, the point and the interval agree."""
    pairs = synthetic_pairs(k)
    labels = pairs[0][0].test_labels
    n = 120
    weights = np.concatenate(list(dam_gain.image_weights(labels, n)))
    draws = dam_gain.seed_draws(k, n)
    slow_auc_reps, slow_acc_reps = [], []
    for r in range(n):
        assert weights[r][labels == 1].sum() == (labels == 1).sum()  # stratified: class counts kept
        a, c = slow_replicate(pairs, weights[r], draws[r])
        slow_auc_reps.append(a)
        slow_acc_reps.append(c)
    reps = dam_gain.replicates(pairs, n)
    assert dam_gain.pooled_values(reps.values["test_auc"], draws) == pytest.approx(slow_auc_reps, abs=1e-12)
    assert dam_gain.pooled_values(reps.values["test_acc_thr"], draws) == pytest.approx(slow_acc_reps, abs=1e-12)
    got = dam_gain.compare(pairs, n)
    point = np.mean([metrics.auc(f.test_labels, f.test_scores) - metrics.auc(p.test_labels, p.test_scores) for f, p in pairs])
    assert got.auc.diff == pytest.approx(point, abs=1e-12)
    assert (got.auc.lo, got.auc.hi) == pytest.approx(tuple(np.quantile(slow_auc_reps, [0.025, 0.975])), abs=1e-12)
    assert (got.acc.lo, got.acc.hi) == pytest.approx(tuple(np.quantile(slow_acc_reps, [0.025, 0.975])), abs=1e-12)
    assert got.seeds == k and got.images == len(labels)


def test_weighted_auc_with_unit_weights_is_the_auc_and_weights_are_copies():
    rng = np.random.default_rng(5)
    y = (rng.random(60) < 0.3).astype(int)
    s = np.round(rng.random(60) + 0.3 * y, 1)
    w = rng.integers(0, 3, size=(4, 60))
    got = dam_gain.weighted_auc(y, s, np.vstack([np.ones(60), w]))
    assert got[0] == pytest.approx(metrics.auc(y, s), abs=1e-12)
    for r in range(4):
        idx = np.repeat(np.arange(60), w[r])
        assert got[r + 1] == pytest.approx(metrics.auc(y[idx], s[idx]), abs=1e-12)


def test_verdict_words_and_a_clear_gain():
    assert dam_gain.verdict(0.001, 0.02) == dam_gain.FINETUNE_BETTER
    assert dam_gain.verdict(-0.03, -0.001) == dam_gain.PRETRAIN_BETTER
    assert dam_gain.verdict(-0.01, 0.02) == dam_gain.NO_CLEAR_DIFFERENCE
    assert dam_gain.verdict(0.0, 0.02) == dam_gain.NO_CLEAR_DIFFERENCE  # an end at 0 does not leave 0 out
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60, int), np.zeros(100, int)]
    good, weak = y + rng.normal(0, 0.4, 160), y + rng.normal(0, 1.5, 160)
    c = dam_gain.compare([(fake_scores(1, y, good), fake_scores(1, y, weak))], 300)
    assert c.auc.verdict == dam_gain.FINETUNE_BETTER and c.auc.lo > 0
    assert "ΔAUC +0." in c.text() and ": fine-tune better" in c.text()
    flipped = dam_gain.compare([(fake_scores(1, y, weak), fake_scores(1, y, good))], 300)
    assert flipped.auc.verdict == dam_gain.PRETRAIN_BETTER


def test_pooling_refuses_pairs_of_different_test_sets():
    a, b = synthetic_pairs(1, seed=1)[0], synthetic_pairs(1, n=30, seed=2)[0]
    with pytest.raises(ValueError, match="same test images"):
        dam_gain.compare([a, b], 50)


def test_multilabel_pairs_pool_the_labels_like_the_protocol():
    rng = np.random.default_rng(9)
    y = (rng.random((80, 3)) < 0.3).astype(int)
    fine, pre = y + rng.normal(0, 0.7, y.shape), y + rng.normal(0, 1.0, y.shape)
    pair = (runs.Scores.of(1, (fine[:10], y[:10]), (fine, y), [0.5] * 3), runs.Scores.of(1, (pre[:10], y[:10]), (pre, y), [0.5] * 3))
    c = dam_gain.compare([pair], 100)
    assert c.auc.diff == pytest.approx(metrics.auc(y, fine) - metrics.auc(y, pre), abs=1e-12)
    assert c.auc.lo < c.auc.diff < c.auc.hi


# ----------------------------------------------------------------------------- run folders


@pytest.fixture
def two_stages(tmp_path):
    """A pretrain (best epoch 3) and a fine-tune from it (best epoch 2) of one test set."""
    (fine, pre), = synthetic_pairs(1)
    p = fake_stage_run(tmp_path, "p", scores=fake_scores(3, pre.test_labels, pre.test_scores, 0.45))
    f = fake_stage_run(tmp_path, "f", stage="finetune", best_epoch=2, source=p,
                       scores=fake_scores(2, fine.test_labels, fine.test_scores, 0.6))
    return p, f


def test_an_old_finetune_reads_its_pretrains_folder_and_says_not_recorded_without_it(two_stages):
    p, f = two_stages
    gain = dam_gain.of_record(runs.load_run(f))
    assert gain.comparison is not None and gain.stages.pretrain.epoch == 3 and gain.stages.finetune.epoch == 2
    assert gain.line().startswith("AUCM fine-tune epoch 2 vs CE pretrain p epoch 3, 24 test images: ΔAUC ")
    (p / runs.SCORES).unlink()
    gain = dam_gain.of_record(runs.load_run(f))
    assert gain.comparison is None and "not recorded (pretrain p: its test scores of epoch 3 are not kept" in gain.line()
    assert "ΔAUC" not in gain.line()


def test_a_pretrain_extended_since_does_not_pass_off_another_epoch(two_stages):
    p, f = two_stages
    s = runs.load_scores(p)
    status = runs.read_json(p / runs.STATUS)
    runs.atomic_write_json(p / runs.STATUS, {**status, "epochs": 9})  # extended to 9, as --resume --epochs 9 records
    runs.write_scores(p, runs.Scores(9, s.val_scores, s.val_labels, s.test_scores, s.test_labels, s.val_threshold))
    assert dam_gain.of_record(runs.load_run(f)).comparison is None
    runs.write_scores(f, s, runs.SOURCE_SCORES)  # the copy a fine-tune takes when it starts
    gain = dam_gain.of_record(runs.load_run(f))
    assert gain.comparison is not None and gain.stages.pretrain.scores.epoch == 3


def test_a_finetune_without_its_own_scores_is_not_recorded(two_stages):
    _, f = two_stages
    (f / runs.SCORES).unlink()
    stages = run_results.stage_scores(runs.load_run(f))
    assert not stages.paired and stages.pretrain.scores is not None
    assert "its test scores of epoch 2 were not saved" in stages.finetune.missing
    assert dam_gain.of_record(runs.load_run(f)).comparison is None


def test_a_group_pools_finished_seeds_and_lists_the_others(tmp_path):
    pairs = synthetic_pairs(3)
    for s, (fine, pre) in enumerate(pairs):
        p = fake_stage_run(tmp_path, f"p{s}", seed=s,
                           scores=fake_scores(3, pre.test_labels, pre.test_scores, float(pre.val_threshold)))
        fake_stage_run(tmp_path, f"f{s}", stage="finetune", seed=s, best_epoch=2, source=p,
                       state="cancelled" if s == 2 else "finished",
                       scores=fake_scores(2, fine.test_labels, fine.test_scores, float(fine.val_threshold)))
    infos, _ = runs.list_runs(tmp_path)
    gain = dam_gain.by_dataset(infos, n=100)["breastmnist"]
    assert [m.run_id for m in gain.members] == ["f0", "f1", "f2"] and gain.pooled_ids == ["f0", "f1"]
    expected = dam_gain.compare([(f, p) for f, p in pairs[:2]], 100)
    assert gain.pooled == expected
    alone = dam_gain.of_record(runs.load_run(tmp_path / "f2"), n=100)  # the same draws alone and in the group
    assert gain.members[2].comparison == alone.comparison and alone.comparison is not None
    assert gain.line().startswith("AUCM fine-tune vs CE pretrain: ΔAUC ") and " over 2 seeds: " in gain.line()
    md = "\n".join(gain.markdown())
    assert "**Does DAM help?**" in md and "not pooled: `f2` (cancelled)" in md and "| 2 | `p2` -> `f2` | 3 -> 2 |" in md
    assert math.isfinite(gain.pooled.acc.diff)
