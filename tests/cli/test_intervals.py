"""CLI front end of issue #15's intervals and curves: `runs show`, `runs curves`, `runs export`."""

from __future__ import annotations

import json
import re

import pytest

from damtui.store import runs

INTERVAL = re.compile(r"test AUC \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]")


def test_runs_show_prints_the_test_intervals(damtui, pretrain_copy):
    rc, out, _ = damtui("runs", "show", pretrain_copy.name)
    best = [line for line in out.splitlines() if line.startswith("best ")]
    assert rc == 0 and best and INTERVAL.search(best[0]), out


def test_runs_curves_prints_confusions_and_the_threshold(damtui, pretrain_copy):
    rc, out, _ = damtui("runs", "curves", pretrain_copy.name)
    assert rc == 0 and INTERVAL.search(out)
    assert "ROC, test AUC" in out and "at val threshold" in out and "true 1" in out and "pred 0" in out


def test_runs_curves_of_a_run_without_scores_says_not_recorded(damtui, pretrain_copy):
    (pretrain_copy / runs.SCORES).unlink()
    rc, out, _ = damtui("runs", "curves", pretrain_copy.name)
    assert rc == 0 and "curves: not recorded" in out


def test_export_has_interval_columns(damtui, pretrain_copy, tmp_path):
    rc, _, _ = damtui("runs", "export", pretrain_copy.name, "--csv", str(tmp_path / "r.csv"))
    header, row = (tmp_path / "r.csv").read_text().splitlines()[:2]
    cols = dict(zip(header.split(","), row.split(",")))
    summary = json.loads((pretrain_copy / runs.SUMMARY).read_text())
    assert rc == 0 and float(cols["test_auc_lo"]) == summary["intervals"]["test_auc"][0]
    assert float(cols["test_auc_lo"]) <= float(cols["test_auc"]) <= float(cols["test_auc_hi"])


@pytest.mark.slow
def test_packed_seeds_each_save_their_own_scores(damtui, runs_dir):
    """`train --seeds` ends with exit 0 (it read RunSummary records as dicts before) and every
    member's scores.npz holds that member's test scores at its own best epoch."""
    from damtui.analysis import metrics

    rc, _, err = damtui("train", "synthetic2d", "--seeds", "0,1", "--epochs", "2", "--set", "width=4",
                        "--threads", "1", "--device", "cpu")
    assert rc == 0, err
    infos, _ = runs.list_runs(runs_dir)
    assert len(infos) == 2
    aucs = set()
    for info in infos:
        scores = runs.load_scores(info.path)
        rows, _ = runs.read_metrics(info.path)
        assert scores.epoch == info.best.epoch
        assert metrics.auc(scores.test_labels, scores.test_scores) == pytest.approx(rows[scores.epoch - 1].test_auc)
        aucs.add(round(rows[scores.epoch - 1].test_auc, 6))
    assert len(aucs) == 2, "two seeds, two models"
