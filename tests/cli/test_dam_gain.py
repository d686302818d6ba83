"""Does DAM help, and calibration, on the command line: `damtui results` (a line per dataset),
`runs show`, `runs curves`, `runs export --md`; a trained fine-tune keeps its pretrain's scores."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from damtui.store import runs
from support import REAL_DATA, fake_scores, fake_stage_run

GPU_RUNS = REAL_DATA.parents[1] / "gpu-runs" / "2026-12-04-h200"  # ../shared: the H200 runs of 2026-12-04
LINE = re.compile(r"\*\*Does DAM help\?\*\* AUCM fine-tune vs CE pretrain: ΔAUC [+-]\d\.\d{3} \[[+-]\d\.\d{3},"
                  r" [+-]\d\.\d{3}\] over \d seeds?: (fine-tune better|pretrain better|no clear difference);"
                  r" ΔACC \(val thr\) ")


@pytest.fixture
def two_datasets(runs_dir):
    """breastmnist: two seeds of pretrain -> fine-tune; adrenalmnist3d: a pretrain only."""
    rng = np.random.default_rng(0)
    y = (rng.random(60) < 0.7).astype(int)
    for s in range(2):
        p = fake_stage_run(runs_dir, f"p{s}", seed=s, scores=fake_scores(3, y, y + rng.normal(0, 1, 60), 0.5))
        fake_stage_run(runs_dir, f"f{s}", stage="finetune", seed=s, best_epoch=2, source=p,
                       scores=fake_scores(2, y, y + rng.normal(0, 1, 60) + 0.8, 0.9))
    fake_stage_run(runs_dir, "a0", dataset="adrenalmnist3d", scores=fake_scores(3, y, y + rng.normal(0, 1, 60)))
    return runs_dir


def test_results_has_a_does_dam_help_line_per_dataset(damtui, two_datasets, tmp_path):
    rc, out, _ = damtui("results", "--runs-dir", str(two_datasets), "--md", str(tmp_path / "r.md"))
    assert rc == 0
    breast, adrenal = out.split("## adrenalmnist3d")
    assert LINE.search(breast) and " over 2 seeds: " in breast
    assert "| 1 | `p1` -> `f1` | 3 -> 2 |" in breast
    assert "**Does DAM help?** AUCM fine-tune vs CE pretrain: no finished fine-tune of adrenalmnist3d yet." in adrenal
    assert (tmp_path / "r.md").read_text().startswith(out.split("wrote ")[0].rstrip("\n"))


def test_runs_show_and_export_state_each_finetune_against_its_pretrain(damtui, two_datasets, tmp_path):
    rc, out, _ = damtui("runs", "show", "f0", "--runs-dir", str(two_datasets))
    line = out.splitlines()[-1]
    assert rc == 0 and line.startswith("does DAM help: AUCM fine-tune epoch 2 vs CE pretrain p0 epoch 3, 60 test images: ΔAUC ")
    rc, out, _ = damtui("runs", "show", "p0", "--runs-dir", str(two_datasets))
    assert rc == 0 and "does DAM help" not in out
    rc, _, _ = damtui("runs", "export", "f0", "f1", "p0", "--md", str(tmp_path / "c.md"), "--runs-dir", str(two_datasets))
    md = (tmp_path / "c.md").read_text()
    assert rc == 0 and "## Does DAM help? Each fine-tune against its own pretrain" in md
    assert "- `f0`: AUCM fine-tune epoch 2 vs CE pretrain p0 epoch 3" in md and "- `p0`" not in md


def test_runs_curves_prints_the_calibration_of_both_stages(damtui, two_datasets):
    rc, out, _ = damtui("runs", "curves", "f0", "--runs-dir", str(two_datasets))
    assert rc == 0
    table = out[out.index("calibration of the test scores"):]
    assert "pretrain p0@3" in table and "fine-tune f0@2" in table
    ece, thr, above = (next(ln for ln in table.splitlines() if ln.strip().startswith(k)) for k in ("ECE", "val thr", "above 0.5"))
    assert len(ece.split()) == 3 and thr.split()[2:] == ["0.500", "0.900"] and above.count("%") == 2
    shutil.rmtree(two_datasets / "p0")
    rc, out, _ = damtui("runs", "curves", "f0", "--runs-dir", str(two_datasets))
    assert rc == 0 and "pretrain p0@3: not recorded (its test scores of epoch 3 are not kept" in out
    rc, out, _ = damtui("runs", "show", "f0", "--runs-dir", str(two_datasets))
    assert "vs CE pretrain p0 epoch 3: not recorded (pretrain p0:" in out and "ΔAUC" not in out


@pytest.mark.skipif(not GPU_RUNS.is_dir(), reason="the shared H200 runs of 2026-12-04 are not here")
def test_the_shared_gpu_runs_answer_for_both_datasets(damtui):
    rc, out, _ = damtui("results", "--runs-dir", str(GPU_RUNS))  # reads only
    assert rc == 0
    for dataset in ("breastmnist", "adrenalmnist3d"):
        section = out.split(f"## {dataset}")[1].split("\n## ")[0]
        assert LINE.search(section), section


@pytest.mark.slow
def test_a_trained_finetune_keeps_its_pretrains_scores(damtui, pretrain_copy, runs_dir):
    rc, _, err = damtui("train", "synthetic2d", "--stage", "finetune", "--preset", "demo", "--from", pretrain_copy.name,
                        "--epochs", "1", "--name", "ft", "--threads", "1", "--device", "cpu")
    assert rc == 0, err
    kept = runs.load_scores(runs_dir / "ft", runs.SOURCE_SCORES)
    assert kept is not None and kept.epoch == runs.load_run(pretrain_copy).info.best.epoch
    assert np.array_equal(kept.test_scores, runs.load_scores(pretrain_copy).test_scores)
    shutil.rmtree(pretrain_copy)  # the pretrain is gone: the fine-tune still answers
    rc, out, _ = damtui("runs", "show", "ft")
    assert rc == 0 and re.search(r"does DAM help: AUCM fine-tune epoch 1 vs CE pretrain \S+ epoch \d+, \d+ test images: ΔAUC", out)
