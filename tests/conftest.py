"""Shared fixtures: a synthetic data root made once per session, fresh runs dirs per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from damtui.data import datasets
from support import demo_config, run_stage

ONE_THREAD = "1"


def pytest_configure(config: pytest.Config) -> None:
    """Every test trains on one CPU thread, in this process and in the training processes it
    starts (they inherit DAMTUI_THREADS): a 2-core machine shared with other jobs makes OpenMP
    teams of two spin against each other, many times slower (docs/PERFORMANCE.md)."""
    import os

    import torch

    os.environ["DAMTUI_THREADS"] = ONE_THREAD
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("medmnist")
    for flag in ("synthetic2d", "synthetic3d"):
        datasets.write_synthetic(flag, datasets.dataset_path(flag, root))
    return root


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, data_root: Path) -> None:
    """Tests never read the user's data, runs or presets."""
    monkeypatch.setenv("DAMTUI_DATA", str(data_root))
    monkeypatch.setenv("DAMTUI_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DAMTUI_PRESETS", str(tmp_path / "user-presets"))


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(scope="session")
def pretrain_run(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """One finished 2D demo pretrain run, shared by tests that only read it (copy before writing)."""
    root = tmp_path_factory.mktemp("shared-runs")
    summary, _ = run_stage(demo_config(), root, data_root=data_root)
    assert summary.status == "finished"
    return root / summary.run_id


@pytest.fixture
def pretrain_copy(pretrain_run: Path, runs_dir: Path) -> Path:
    dest = runs_dir / pretrain_run.name
    shutil.copytree(pretrain_run, dest)
    return dest


@pytest.fixture
def damtui(capsys: pytest.CaptureFixture[str], runs_dir: Path):
    """`damtui ARGS` in-process through `cli.main`, the console script's own code path, without
    paying a torch import per call: returns (exit code, stdout, stderr). `train` gets the test's
    runs dir; the signal handlers `train` installs are restored afterwards."""
    import signal

    from damtui import cli

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def call(*argv: str) -> tuple[int, str, str]:
        own = argv[0] == "train" and "--runs-dir" not in argv
        rc = cli.main([*argv, "--runs-dir", str(runs_dir)] if own else list(argv))
        out = capsys.readouterr()
        return rc, out.out, out.err

    yield call
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def float64(monkeypatch: pytest.MonkeyPatch):
    """Train in float64 so that two computations of the same thing in another summation order
    (packed vs alone) agree to ~1e-15 instead of drifting apart through float32 rounding, which
    Adam and BatchNorm amplify over epochs. Augmentation still draws in float32, as it does in
    real runs (its random draws must not change); only its output is widened."""
    import torch

    from damtui.train import augment

    to_float, augment_batch = augment.to_float, augment.augment_batch

    def augment_batch64(x, is_3d):
        torch.set_default_dtype(torch.float32)
        try:
            return augment_batch(x, is_3d).double()
        finally:
            torch.set_default_dtype(torch.float64)

    monkeypatch.setattr(augment, "to_float", lambda x, is_3d: to_float(x, is_3d).double())
    monkeypatch.setattr(augment, "augment_batch", augment_batch64)
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)
