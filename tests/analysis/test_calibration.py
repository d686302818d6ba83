"""Calibration (damtui.analysis.calibration): reliability bins and ECE against a case computed by
hand, and both stages of a fine-tune side by side with their validation thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from damtui.analysis import calibration
from damtui.store import results as run_results, runs
from support import fake_scores, fake_stage_run


def test_reliability_and_ece_of_a_hand_computed_case():
    # 10 bins: 0.05 -> [0.0, 0.1); 0.15, 0.15 -> [0.1, 0.2); 0.85 -> [0.8, 0.9); 0.95 and 1.0 -> [0.9, 1.0]
    labels = [0, 0, 1, 1, 1, 0]
    scores = [0.05, 0.15, 0.15, 0.85, 0.95, 1.0]
    r = calibration.reliability(labels, scores)
    filled = [(b.lo, b.count, b.mean_score, b.positive_rate) for b in r.filled]
    assert filled == pytest.approx([(0.0, 1, 0.05, 0.0), (0.1, 2, 0.15, 0.5), (0.8, 1, 0.85, 1.0), (0.9, 2, 0.975, 0.5)])
    # ECE = (1/6)|0.05 - 0| + (2/6)|0.15 - 0.5| + (1/6)|0.85 - 1| + (2/6)|0.975 - 0.5| = 1.85 / 6
    assert r.ece == pytest.approx(1.85 / 6, abs=1e-12)
    assert (r.n, r.positive_share, r.above_half) == (6, 0.5, 0.5)
    assert sum(b.count for b in r.bins) == 6 and len(r.bins) == 10 and np.isnan(r.bins[5].mean_score)


def test_a_block_shift_keeps_the_ranking_and_breaks_calibration():
    """What AUCM can do: every score pushed above 0.5 leaves the order (AUC) but ACC at 0.5 calls
    every image positive; the diagram and the ECE show it."""
    rng = np.random.default_rng(0)
    p = rng.random(2000) ** 2  # probabilities, mostly low
    y = (rng.random(2000) < p).astype(int)  # labels drawn with them: calibrated by construction
    shifted = 0.55 + 0.45 * p
    calibrated, slid = calibration.reliability(y, p), calibration.reliability(y, shifted)
    assert calibrated.ece < 0.05 and slid.ece > 0.3
    assert slid.above_half == 1.0 and calibrated.above_half < 0.5


def test_a_finetune_shows_both_stages_with_their_thresholds(tmp_path):
    y = np.r_[np.ones(30, int), np.zeros(70, int)]
    pre = fake_stage_run(tmp_path, "p", scores=fake_scores(3, y, 0.2 + 0.5 * y, 0.45))
    fine = fake_stage_run(tmp_path, "f", stage="finetune", best_epoch=2, source=pre,
                          scores=fake_scores(2, y, 0.8 + 0.1 * y, 0.85))
    rec = runs.load_run(fine)
    sides = calibration.of_stages(run_results.stage_scores(rec), rec.info.result)
    assert [s.title for s in sides] == ["pretrain p@3", "fine-tune f@2 (answer)"]
    assert [s.short for s in sides] == ["CE@3", "AUCM@2*"]
    assert [s.threshold for s in sides] == [0.45, 0.85]
    assert sides[0].reliability.ece == pytest.approx(0.3 * 0.3 + 0.7 * 0.2)
    assert sides[1].reliability.above_half == 1.0
    text = "\n".join(calibration.lines(sides))
    assert "ECE" in text and "0.450" in text and "0.850" in text and "100.0%" in text
    (pre / runs.SCORES).unlink()
    sides = calibration.of_stages(run_results.stage_scores(runs.load_run(fine)))
    assert sides[0].reliability is None and sides[1].reliability is not None
    assert "pretrain p@3: not recorded (its test scores of epoch 3 are not kept" in "\n".join(calibration.lines(sides))
