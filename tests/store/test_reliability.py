"""The fast subset of benchmarks/fault_injection.py and benchmarks/bad_inputs.py.

Kills real `damtui train` processes (one during a checkpoint write), resumes them and compares
with an uninterrupted run; then the bad inputs that tests/test_cli.py, test_engine.py,
test_runs.py and test_datasets.py do not already cover, through `damtui.cli.main` in-process
(the same code path as the console script, without paying for a torch import per case).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

from damtui.train import engine
from damtui.store import runs
from damtui import events as E
from support import DEAD_PID, crash, demo_config, one_line, run_stage, tree

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """One finished 2-epoch width-4 pretrain run for this module (copy it before changing it)."""
    root = tmp_path_factory.mktemp("reliability-runs")
    summary, _ = run_stage(demo_config(epochs=2, width=4), root, data_root=data_root)
    assert summary.status == "finished"
    return root / summary.run_id


@pytest.fixture
def run_copy(small_run: Path, runs_dir: Path) -> Path:
    dest = runs_dir / small_run.name
    shutil.copytree(small_run, dest)
    return dest


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- kills and resume


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL + inotify harness is Linux-only")
def test_killed_runs_are_intact_and_resume_exactly(tmp_path):
    fi = _bench("fault_injection")
    plan = [
        {"mode": "ckpt", "prefix": ".last.pt.", "nth": 2},  # mid-write of epoch 2's last.pt
        {"mode": "ckpt", "prefix": ".best.pt.", "nth": 1},  # before the first last.pt exists
    ]  # kills at random moments: benchmarks/fault_injection.py (a third run here cost ~40 s of the suite)
    res = fi.run_benchmark(epochs=3, width=4, seed=1, work=tmp_path, plan=plan, double_every=0,
                           concurrent=True, log=lambda *_: None)
    assert res["ok"], res["problems"]
    assert res["runs_killed"] + res["finished_before_kill"] == 2 and res["runs_killed"] >= 1
    assert res["killed_with_checkpoint_tmp_on_disk"] >= 1  # the kill landed inside a checkpoint write
    assert res["folders_intact"] == res["runs_killed"]
    assert res["resumed"] >= 1 and res["resumes_equal"] == res["resumes_last_pt_equal"] == res["resumed"]
    assert res["no_last_pt"] == res["no_last_pt_started_over"]  # killed before any checkpoint: started over
    assert res["concurrent_ok"] and res["reader_errors"] == 0


# ----------------------------------------------------------------------------- bad inputs, one line each


def test_resume_of_a_live_run_is_refused(damtui, runs_dir, run_copy):
    status = json.loads((run_copy / runs.STATUS).read_text())
    status.update(state=runs.RUNNING, pid=os.getpid())  # this very process: alive
    (run_copy / runs.STATUS).write_text(json.dumps(status))
    before = tree(runs_dir)
    one_line(*damtui("train", "--resume", run_copy.name, "--epochs", "9")[::2], "is still running")
    assert tree(runs_dir) == before


def _foreign_last(path: Path) -> None:
    torch.save({"epoch": 1, "model": {}}, path)


def _marker_only(path: Path) -> None:
    torch.save({"format": runs.CHECKPOINT_FORMAT}, path)


def _other_run(path: Path) -> None:
    ck = runs.load_checkpoint(path)
    ck["config"] = {**ck["config"], "width": ck["config"]["width"] * 2}
    torch.save(ck, path)


def _wrong_shapes(path: Path) -> None:
    ck = runs.load_checkpoint(path)
    ck["model"] = {k: torch.zeros(1) for k in ck["model"]}
    torch.save(ck, path)


@pytest.mark.parametrize("damage, expect", [
    (lambda p: p.unlink(), "has no last.pt"),
    (lambda p: p.write_bytes(b"\x80\x04garbage"), "not a damtui checkpoint"),
    (lambda p: p.write_bytes(p.read_bytes()[:3000]), "not a damtui checkpoint"),
    (_foreign_last, "no 'damtui-checkpoint-v1' marker"),
    (_marker_only, "does not belong to this run"),
    (_other_run, "does not belong to this run"),
    (_wrong_shapes, "does not fit this run's model"),
])
def test_resume_with_a_foreign_last_pt_is_one_line(damtui, runs_dir, run_copy, damage, expect):
    crash(run_copy)
    damage(run_copy / runs.LAST)
    before = tree(runs_dir)
    one_line(*damtui("train", "--resume", run_copy.name, "--epochs", "9", "--device", "cpu")[::2], expect)
    assert tree(runs_dir) == before


@pytest.mark.parametrize("damage, expect", [
    (lambda p: p.write_bytes(b"hello"), "not a damtui checkpoint"),
    (_marker_only, "has no model weights"),
    (_wrong_shapes, "do not fit a synthetic2d ResNet"),
])
def test_from_a_foreign_best_pt_is_one_line(damtui, runs_dir, run_copy, damage, expect):
    damage(run_copy / runs.BEST)
    before = tree(runs_dir)
    one_line(*damtui("train", "synthetic2d", "--stage", "finetune", "--from", run_copy.name,
                     "--device", "cpu")[::2], expect)
    assert tree(runs_dir) == before


def test_run_killed_after_its_last_checkpoint_is_finalized_by_resume(damtui, run_copy):
    crash(run_copy)  # every epoch and last.pt on disk, status never said finished
    assert runs.load_run(run_copy).info.status == runs.CRASHED
    rows = runs.read_metrics(run_copy)[0]
    rc, _, err = damtui("train", "--resume", run_copy.name, "--device", "cpu")
    assert rc == 0, err
    rec = runs.load_run(run_copy)
    assert rec.info.status == runs.FINISHED and rec.metrics == rows and (run_copy / runs.SUMMARY).exists()


def test_nan_stops_within_the_epoch(runs_dir, monkeypatch):
    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", 0.0)
    summary, events = run_stage(demo_config(epochs=2, width=4, lr=1e30), runs_dir)
    assert summary.status == "failed"
    assert "loss became nan in epoch 1; no checkpoint yet" in summary.message
    batches = [e for e in events if isinstance(e, E.BatchProgress)]
    assert batches and batches[-1].batch < batches[-1].batches  # stopped at once, not at the epoch's end
    assert runs.load_run(runs_dir / summary.run_id).info.status == runs.FAILED


def test_cuda_out_of_memory_is_one_line_and_keeps_checkpoints(damtui, runs_dir, monkeypatch):
    from damtui.train import models

    real, calls = models.ResNet18.forward, [0]

    def forward(self, x):
        if self.training:
            calls[0] += 1
            if calls[0] > 30:  # epoch 1 has 25 batches
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, x)

    monkeypatch.setattr(models.ResNet18, "forward", forward)
    rc, _, err = damtui("train", "synthetic2d", "--set", "epochs=3", "--set", "width=4", "--device", "cpu")
    one_line(rc, err, "CUDA out of memory at batch size 32; try --set batch_size=16")
    (info,), _ = runs.list_runs(runs_dir)
    assert info.status == runs.FAILED and "batch_size=16" in info.message
    assert runs.load_checkpoint(info.path / runs.LAST)["epoch"] == 1
    runs.load_checkpoint(info.path / runs.BEST)


class _FullDisk:
    """damtui.atomic's view of `os` in which the third checkpoint rename fails with ENOSPC."""

    def __init__(self) -> None:
        self.pt = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def replace(self, src, dst):
        if str(dst).endswith(".pt"):
            self.pt += 1
            if self.pt > 2:
                raise OSError(28, "No space left on device")
        return os.replace(src, dst)


@pytest.mark.slow
def test_disk_full_on_the_checkpoint_thread_fails_the_run_and_loses_nothing(damtui, runs_dir, monkeypatch):
    from damtui import atomic

    monkeypatch.setattr(atomic, "os", _FullDisk())
    rc, _, err = damtui("train", "synthetic2d", "--set", "epochs=3", "--set", "width=4", "--device", "cpu")
    one_line(rc, err, "(No space left on device); the previous version is intact")
    (info,), _ = runs.list_runs(runs_dir)
    assert info.status == runs.FAILED and "No space left" in info.message
    assert runs.load_checkpoint(info.path / runs.LAST)["epoch"] == 1  # epoch 1's, untouched
    assert runs.load_checkpoint(info.path / runs.BEST)["epoch"] == 1
    assert not list(info.path.glob(".*.tmp"))
    monkeypatch.setattr(atomic, "os", os)  # space freed: the run resumes and finishes
    rc, _, err = damtui("train", "--resume", info.run_id, "--device", "cpu")
    assert rc == 0, err
    rec = runs.load_run(info.path)
    assert rec.info.status == runs.FINISHED and [r.epoch for r in rec.metrics] == [1, 2, 3]


def test_stale_temp_files_of_a_killed_writer_are_removed_on_resume(runs_dir, run_copy):
    crash(run_copy)
    stale = run_copy / f".last.pt.{DEAD_PID}.tmp"
    stale.write_bytes(b"half a checkpoint")
    mine = run_copy / f".best.pt.{os.getpid()}.tmp"  # a live writer's file is left alone
    mine.write_bytes(b"x")
    runs.RunWriter.reopen(run_copy, epochs=3, done=2)
    assert not stale.exists() and mine.exists()


def test_foreign_checkpoint_in_a_copied_run_never_runs_code(damtui, runs_dir, run_copy, tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    crash(run_copy)
    (run_copy / runs.LAST).write_bytes(pickle.dumps({"format": runs.CHECKPOINT_FORMAT, "x": Evil()}))
    one_line(*damtui("train", "--resume", run_copy.name, "--epochs", "9", "--device", "cpu")[::2],
             "not a damtui checkpoint")
    assert not (tmp_path / "pwned").exists()
    shutil.rmtree(run_copy)
