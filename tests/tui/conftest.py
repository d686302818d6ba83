"""Fixtures for the Pilot and snapshot tests: fixed presets, fake devices, a frozen clock, UTC."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))  # fakes.py

from fakes import FakeEngine

DEVICES = [("auto", "auto (GPU if present)"), ("cpu", "cpu")]


@pytest.fixture(autouse=True)
def _fixed_environment(monkeypatch, tmp_path):
    from damtui import config

    monkeypatch.setattr(config, "SHIPPED_PRESETS", HERE / "presets")
    monkeypatch.setenv("DAMTUI_PRESETS", str(tmp_path / "no-user-presets"))
    monkeypatch.setenv("DAMTUI_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("DAMTUI_RUNS", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    time.tzset()


@pytest.fixture(autouse=True)
def _short_idle_wait(monkeypatch):
    """Pilot waits after each key until the *process* looks idle (CPU time of all threads), at
    most 1 s. A training worker thread keeps the process busy, so every press would cost ~2 s;
    cap the wait at 50 ms. Tests wait for the conditions they check instead."""
    import textual.app
    import textual.pilot
    from textual._wait import wait_for_idle

    async def short_wait(min_sleep: float = 0.0, max_sleep: float = 1.0) -> None:
        await wait_for_idle(min_sleep, min(max_sleep, 0.05))

    monkeypatch.setattr(textual.app, "wait_for_idle", short_wait)
    monkeypatch.setattr(textual.pilot, "wait_for_idle", short_wait)


@pytest.fixture
def runs_dir(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


@pytest.fixture
def make_app(runs_dir, tmp_path):
    """Build a DamtuiApp on temp folders with a fake engine unless one is given."""
    from damtui.tui.app import DamtuiApp

    def build(engine=None, **kwargs):
        kwargs.setdefault("devices", lambda: DEVICES)
        kwargs.setdefault("clock", lambda: 1000.0)
        kwargs.setdefault("poll_interval", 0.1)
        kwargs.setdefault("export_dir", tmp_path / "exports")
        return DamtuiApp(runs_dir, tmp_path / "data", engine=engine or FakeEngine(), **kwargs)

    return build


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """Run `async def` tests with asyncio.run (no pytest-asyncio dependency)."""
    import asyncio
    import inspect

    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    asyncio.run(pyfuncitem.obj(**args))
    return True
