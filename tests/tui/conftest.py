"""Fixtures for the Pilot and snapshot tests: fixed presets, fake devices, a frozen clock, UTC."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fakes import FakeEngine

HERE = Path(__file__).parent

DEVICES = [("auto", "auto (GPU if present)"), ("cpu", "cpu")]


@pytest.fixture(autouse=True)
def _fixed_environment(monkeypatch, tmp_path):
    from damtui import config
    from damtui.tui import usage

    # the monitor's usage line: fixed numbers (snapshots), the real /proc reader in tests/tui/test_usage.py
    fixed = usage.Usage(150.0, 600 * 1024**2, 8 * usage.GIB, 16 * usage.GIB, 4)
    monkeypatch.setattr(usage.UsageProbe, "sample", lambda self: fixed)

    monkeypatch.setattr(config, "SHIPPED_PRESETS", HERE / "presets")
    monkeypatch.setenv("DAMTUI_PRESETS", str(tmp_path / "no-user-presets"))
    monkeypatch.setenv("DAMTUI_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DAMTUI_RUNS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def make_app(runs_dir, tmp_path):
    """Build a DamtuiApp on temp folders; runs train with a fake engine unless told otherwise."""
    from damtui.tui.app import DamtuiApp

    def build(engine=None, *, processes: bool = False, **kwargs):
        """`processes` (or a `trainer`): runs start as training processes, as in `damtui`; else the
        fake engine (or `engine`) trains in a thread of the app."""
        kwargs.setdefault("devices", lambda: DEVICES)
        kwargs.setdefault("clock", lambda: 1000.0)
        kwargs.setdefault("poll_interval", 0.1)
        kwargs.setdefault("export_dir", tmp_path / "exports")
        if not (processes or "trainer" in kwargs):
            kwargs["engine"] = engine or FakeEngine()
        return DamtuiApp(runs_dir, tmp_path / "data", **kwargs)

    return build
