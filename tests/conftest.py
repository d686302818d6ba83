"""Shared fixtures: a synthetic data root made once per session, fresh runs dirs per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from damtui import datasets
from support import demo_config, run_stage  # noqa: F401  (re-exported for fixtures)



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
    assert summary["status"] == "finished"
    return root / summary["run_id"]


@pytest.fixture
def pretrain_copy(pretrain_run: Path, runs_dir: Path) -> Path:
    dest = runs_dir / pretrain_run.name
    shutil.copytree(pretrain_run, dest)
    return dest
