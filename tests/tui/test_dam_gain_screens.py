"""Does DAM help in the app: a fine-tune's page states its paired difference with its own pretrain,
the curves view draws both stages' calibration with their thresholds, and the results screen
shows the highlighted dataset's pooled line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import drawn, settle, wait_for
from textual.widgets import DataTable, Static

from damtui.tui.screens.curves import CurvesScreen
from damtui.tui.screens.results import ResultsScreen
from damtui.tui.screens.run_view import RunViewScreen
from support import fake_scores, fake_stage_run


@pytest.fixture
def stage_runs(runs_dir: Path) -> Path:
    rng = np.random.default_rng(1)
    y = (rng.random(80) < 0.3).astype(int)
    for s in range(2):
        p = fake_stage_run(runs_dir, f"p{s}", seed=s, scores=fake_scores(3, y, 1 / (1 + np.exp(-(2 * y - 1 + rng.normal(0, 1, 80)))), 0.5))
        fake_stage_run(runs_dir, f"f{s}", stage="finetune", seed=s, best_epoch=2, source=p,
                       scores=fake_scores(2, y, 0.6 + 0.3 * y + rng.normal(0, 0.05, 80), 0.75))
    return runs_dir


async def test_a_finetunes_page_says_whether_dam_helped(make_app, stage_runs):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        view = RunViewScreen(stage_runs / "f0")
        app.push_screen(view)
        await wait_for(pilot, lambda: view.gain_text != "")
        facts = str(view.query_one("#run-facts", Static).render())
        assert "does DAM help? AUCM@2 vs CE p0@3: ΔAUC " in facts and "ΔACC (val thr) " in facts


@pytest.mark.slow
async def test_curves_show_both_stages_calibration(make_app, stage_runs):
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.push_screen(RunViewScreen(stage_runs / "f0"))
        await wait_for(pilot, lambda: getattr(app.screen, "record", None) is not None)
        await pilot.press("c")
        screen = app.screen
        assert isinstance(screen, CurvesScreen)
        await wait_for(pilot, lambda: screen.loaded)
        legend = str(screen.query_one("#calibration", Static).render())
        assert [ln.split()[1] for ln in legend.splitlines()[1:3]] == ["CE@3", "AUCM@2*"]
        assert legend.splitlines()[2].split()[3] == "0.750"  # the fine-tune's validation threshold
        assert [s.threshold for s in screen.sides] == [0.5, 0.75]
        await drawn(pilot, "reliability, | val thr")


@pytest.mark.slow
async def test_results_show_the_highlighted_datasets_line(make_app, stage_runs):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.push_screen(ResultsScreen())
        await wait_for(pilot, lambda: "breastmnist" in (getattr(app.screen, "gains", None) or {}))
        await settle(pilot)
        assert app.screen.query_one(DataTable).row_count
        info = str(app.screen.query_one("#results-info", Static).render())
        assert "breastmnist: does DAM help? AUCM fine-tune vs CE pretrain: ΔAUC " in info and " over 2 seeds: " in info
