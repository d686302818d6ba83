"""Sweeps screen: runs grouped by sweep with counts and seed mean ± std."""

from __future__ import annotations

import pytest

import json

from fakes import STARTED, make_run, screen_text, wait_for

from damtui.store import runs
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.screens.sweeps import SweepsScreen


def _in_sweep(path, sweep, key):
    data = json.loads((path / runs.CONFIG).read_text())
    data["runtime"].update(sweep=sweep, sweep_config=key)
    runs.atomic_write_json(path / runs.CONFIG, data)


@pytest.mark.slow
async def test_runs_grouped_by_sweep(make_app, runs_dir):
    for i, (seed, wobble) in enumerate(((0, 0.0), (1, 0.02))):
        p = make_run(runs_dir, f"demo-synthetic2d-abc-s{seed}-pretrain", epochs_done=3, seed=seed,
                     wobble=wobble, started=STARTED + i)
        _in_sweep(p, "demo", "synthetic2d-abc-pretrain")
    crashed = make_run(runs_dir, "demo-synthetic2d-def-s0-finetune", epochs_done=1, state=runs.CRASHED)
    _in_sweep(crashed, "demo", "synthetic2d-def-finetune")
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-zzzzzz", epochs_done=2)  # not in a sweep

    app = make_app(start="runs")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: screen.loaded)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen))
        await wait_for(pilot, lambda: "done" in screen_text(app))
        text = screen_text(app)
        assert "demo" in text and "2 done" in text and "1 failed" in text
        assert "±" in text  # two finished seeds give a mean ± std
        assert "zzzzzz" not in text
        await pilot.press("escape")
        assert isinstance(app.screen, RunsScreen)
