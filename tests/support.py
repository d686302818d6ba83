"""Helpers the engine-side tests import by name (tests/tui has its own conftest, so test modules
import from here rather than from `conftest`, whose module name the two folders share)."""

from __future__ import annotations

import threading
from pathlib import Path

from damtui import config as cfg

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"


def demo_config(stage: str = "pretrain", flag: str = "synthetic2d", **over) -> cfg.Config:
    return cfg.apply_overrides(cfg.find_preset("demo", flag, stage), over)


def run_stage(config: cfg.Config, runs_dir: Path, **kw):
    """Train on CPU, collecting events; returns (summary, events)."""
    from damtui import engine

    events: list = []
    summary = engine.train(config, events.append, kw.pop("stop", threading.Event()),
                           runs_dir=runs_dir, device="cpu", **kw)
    return summary, events
