"""`damtui datasets show` and `damtui runs mistakes` through cli.main."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from damtui.store import runs


def test_datasets_show_prints_counts_stats_samples_and_writes_png(damtui, tmp_path):
    png = tmp_path / "ds.png"
    rc, out, err = damtui("datasets", "show", "synthetic2d", "--split", "val", "--per-class", "3",
                          "--png", str(png))
    assert rc == 0, err
    assert " 1 bright blob" in out and "pixels (0-255)" in out
    assert "val samples of 0 no blob (3 of" in out and "val samples of 1 bright blob (3 of" in out
    assert Image.open(png).width > 3 * 28


def test_datasets_show_3d_label_and_augmented(damtui):
    rc, out, err = damtui("datasets", "show", "synthetic3d", "--label", "bright", "--augmented",
                          "--offset", "2", "--per-class", "2")
    assert rc == 0, err
    assert "samples of 1 bright blob (2 of" in out and "samples of 0" not in out
    assert "augmented (training view, batched path), planes axial/coronal/sagittal at middle+2" in out


def test_bad_label_and_missing_flag_are_one_line_errors(damtui):
    rc, out, err = damtui("datasets", "show", "synthetic2d", "--label", "nope")
    assert rc == 1 and err.count("\n") == 1 and "has no label 'nope'" in err and out == ""
    rc, _, err = damtui("datasets", "show")
    assert rc == 1 and "needs exactly one dataset flag" in err


def test_runs_mistakes_lists_false_positives_and_negatives(damtui, pretrain_copy, runs_dir, tmp_path):
    epoch = runs.load_run(pretrain_copy).info.result.epoch
    scores = np.zeros(200, np.float32)
    labels = np.zeros(200, np.int64)
    scores[[7, 3]], labels[[11, 12]] = (0.9, 0.8), 1  # two false positives, two false negatives
    scores[12] = 0.2
    np.savez(pretrain_copy / runs.SCORES, epoch=np.int64(epoch), val_scores=scores, val_labels=labels,
             test_scores=scores, test_labels=labels, val_threshold=np.float32(0.5))
    png = tmp_path / "m.png"
    rc, out, err = damtui("runs", "mistakes", pretrain_copy.name, "--runs-dir", str(runs_dir), "--png", str(png))
    assert rc == 0, err
    assert f"answer pretrain epoch {epoch}; saved scores" in out
    assert "4 of 200 test images wrong: 2 false positives, 2 false negatives" in out
    lines = out.splitlines()
    assert lines[lines.index(next(x for x in lines if x.startswith("false positives"))) + 1].split() == \
        ["#7", "0.900", "#3", "0.800"]
    assert lines[lines.index(next(x for x in lines if x.startswith("false negatives"))) + 1].split() == \
        ["#11", "0.000", "#12", "0.200"]
    assert png.is_file()


def test_runs_mistakes_needs_one_run(damtui, runs_dir):
    rc, _, err = damtui("runs", "mistakes", "--runs-dir", str(runs_dir))
    assert rc == 1 and "needs at least one RUN" in err


def test_multilabel_show_and_mistakes_per_chosen_label(damtui, pretrain_copy, runs_dir, tmp_path):
    import json

    from support import write_chest_like

    root = write_chest_like(tmp_path / "chest")
    rc, out, err = damtui("datasets", "show", "chestmnist", "--data-root", str(root), "--label", "effusion",
                          "--per-class", "2")
    assert rc == 0, err
    assert "samples of 2 effusion (2 of" in out and "samples of 0 " not in out
    epoch = runs.load_run(pretrain_copy).info.result.epoch  # before its config no longer fits its scores
    cfg_path = pretrain_copy / runs.CONFIG
    cfg = json.loads(cfg_path.read_text())
    cfg["config"]["dataset"] = "chestmnist"
    cfg_path.write_text(json.dumps(cfg))
    labels = np.zeros((48, 14), np.int64)
    scores = np.zeros((48, 14), np.float32)
    scores[4, 2], labels[6, 2] = 0.9, 1  # label 2: one false positive, one false negative
    np.savez(pretrain_copy / runs.SCORES, epoch=np.int64(epoch),
             val_scores=scores, val_labels=labels, test_scores=scores, test_labels=labels,
             val_threshold=np.full(14, 0.5, np.float32))
    rc, out, err = damtui("runs", "mistakes", pretrain_copy.name, "--runs-dir", str(runs_dir), "--data-root",
                          str(root), "--label", "effusion")
    assert rc == 0, err
    assert "label 2 (effusion): threshold 0.5000" in out and "2 of 48 test images wrong" in out
    rc, out, _ = damtui("runs", "mistakes", pretrain_copy.name, "--runs-dir", str(runs_dir), "--data-root",
                        str(root), "--label", "0")
    assert "0 of 48 test images wrong" in out


@pytest.mark.slow
# breastmnist only: one real adrenalmnist3d epoch took 64 s of the suite's 10 minutes; its file is
# loaded and MD5-checked in tests/data/test_datasets.py and tiled in tests/analysis/test_gallery.py
@pytest.mark.parametrize("flag", ["breastmnist"])
def test_real_files_one_epoch_then_mistakes(damtui, runs_dir, flag, tmp_path):
    from support import REAL_DATA

    if not (REAL_DATA / f"{flag}.npz").is_file():
        pytest.skip(f"{flag}.npz not in {REAL_DATA}")
    rc, _, err = damtui("train", flag, "--preset", "default", "--set", "width=4", "--epochs", "1",
                        "--device", "cpu", "--data-root", str(REAL_DATA), "--name", "real")
    assert rc == 0, err
    png = tmp_path / "real.png"
    rc, out, err = damtui("runs", "mistakes", "real", "--runs-dir", str(runs_dir), "--data-root", str(REAL_DATA),
                          "--device", "cpu", "--png", str(png))
    assert rc == 0, err
    assert "saved scores of real" in out and png.is_file()  # the run wrote scores.npz with best.pt
    row = runs.load_run(runs_dir / "real").metrics[0]
    wrong, n = (int(w) for w in out.split(" test images wrong")[0].split()[-3::2])
    assert 1 - wrong / n == pytest.approx(row.test_acc_thr)
