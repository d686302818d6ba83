"""The curves view (c in the run view), the run view's interval line, compare's paired difference,
and snapshots of the curves view at 80x24 and 160x48."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import make_run, settle, wait_for
from textual.widgets import DataTable, Static

from damtui.analysis import compare
from damtui.store import runs
from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.curves import NOT_RECORDED, CurvesScreen
from damtui.tui.screens.run_view import RunViewScreen

BINARY = "20240601-120000-breastmnist-pretrain-aaaaaa"
OTHER = "20240601-130000-breastmnist-pretrain-bbbbbb"
CHEST = "20240601-140000-chestmnist-pretrain-cccccc"


def write_scores(path: Path, n_labels: int = 0, seed: int = 0, noise: float = 0.8) -> runs.Scores:
    """scores.npz for a fake run, at its best epoch (fixed draws: snapshots stay the same)."""
    rng = np.random.default_rng(0)
    shape = (156, n_labels) if n_labels else (156, 1)
    y = (rng.random(shape) < 0.3).astype(int)
    s = 1 / (1 + np.exp(-(2 * y - 1 + np.random.default_rng(seed).normal(0, noise, shape))))
    yv = (rng.random((78, shape[1])) < 0.3).astype(int)
    sv = 1 / (1 + np.exp(-(2 * yv - 1 + rng.normal(0, noise, yv.shape))))
    epoch = runs.load_run(path).info.best.epoch
    scores = runs.Scores.of(epoch, (sv, yv), (s, y), [0.45] * shape[1])
    runs.write_scores(path, scores)
    return scores


@pytest.fixture
def scored_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    root = Path("runs")
    write_scores(make_run(root, BINARY, epochs_done=4, dataset="breastmnist", preset="breastmnist-pretrain-report"))
    write_scores(make_run(root, OTHER, epochs_done=4, dataset="breastmnist", preset="breastmnist-pretrain-report",
                          seed=1, wobble=0.01), seed=1, noise=1.6)
    write_scores(make_run(root, CHEST, epochs_done=3, dataset="chestmnist", preset="chestmnist-pretrain-report",
                          wobble=0.02), n_labels=14)
    make_run(root, "20240601-150000-breastmnist-pretrain-dddddd", epochs_done=2, dataset="breastmnist")
    return root


def _app(make_app, root):
    app = make_app()
    app.runs_dir = root
    return app


async def _open_curves(pilot, name: str) -> CurvesScreen:
    await settle(pilot)
    pilot.app.push_screen(RunViewScreen(Path("runs") / name))
    await wait_for(pilot, lambda: getattr(pilot.app.screen, "record", None) is not None)
    await pilot.press("c")
    screen = pilot.app.screen
    assert isinstance(screen, CurvesScreen)
    await wait_for(pilot, lambda: screen.loaded)
    await pilot.pause()
    return screen


async def test_c_in_the_run_view_shows_roc_pr_and_both_confusions(make_app, scored_runs):
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(100, 36)) as pilot:
        screen = await _open_curves(pilot, BINARY)
        v = screen.view
        assert v is not None and not v.multilabel and v.roc_title.startswith("ROC, test AUC")
        assert v.confusion_05.total == v.confusion_thr.total == 156
        text = str(screen.query_one("#confusion-thr", Static).render())
        assert "val threshold 0.450" in text and "pred 1" in text
        assert not screen.query_one("#per-label-box").display
        await pilot.press("escape")
        assert isinstance(app.screen, RunViewScreen)


@pytest.mark.slow
async def test_multilabel_curves_list_per_label_aucs_by_name_sorted(make_app, scored_runs):
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(100, 40)) as pilot:
        screen = await _open_curves(pilot, CHEST)
        names = [n for n, _ in screen.view.per_label]
        aucs = [a for _, a in screen.view.per_label]
        assert "cardiomegaly" in names and len(names) == 14 and aucs == sorted(aucs, reverse=True)
        assert f"test AUC {screen.view.auc:.3f} = mean of" in str(screen.query_one("#per-label", Static).render())


@pytest.mark.slow
async def test_a_run_without_scores_says_not_recorded(make_app, scored_runs):
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(100, 36)) as pilot:
        screen = await _open_curves(pilot, "20240601-150000-breastmnist-pretrain-dddddd")
        assert screen.view is None
        assert NOT_RECORDED in str(screen.query_one("#curves-title", Static).render())
        assert "not recorded" in str(screen.query_one("#confusion-05", Static).render())


async def test_run_view_facts_show_the_results_interval(make_app, scored_runs):
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(100, 36)) as pilot:
        await settle(pilot)
        view = RunViewScreen(Path("runs") / BINARY)
        app.push_screen(view)
        await wait_for(pilot, lambda: view.result_text != "")
        facts = str(view.query_one("#run-facts", Static).render())
        assert "test 95% CI, pretrain@" in facts and "AUC 0." in facts and "[" in facts


@pytest.mark.slow
async def test_compare_of_two_runs_states_the_paired_difference(make_app, scored_runs):
    app = _app(make_app, scored_runs)
    async with app.run_test(size=(160, 48)) as pilot:
        await settle(pilot)
        app.push_screen(CompareScreen([Path("runs") / BINARY, Path("runs") / OTHER]))
        await pilot.pause()
        info = str(app.screen.query_one("#compare-info", Static).render())
        assert "test AUC bbbbbb - aaaaaa: -0." in info and "resolved" in info
        assert "brackets: 95% interval" in info
        table = app.screen.query_one("#compare-table", DataTable)
        cell = str(table.get_cell("test_auc", BINARY))
        assert "[" in cell and "]" in cell


def test_exports_carry_interval_columns_and_the_paired_line(scored_runs):
    records = [runs.load_run(scored_runs / n) for n in (BINARY, OTHER)]
    csv = compare.to_csv(records)
    assert "test_auc_lo" in csv.splitlines()[0] and "test_acc_hi" in csv.splitlines()[0]
    md = compare.to_markdown(records)
    assert "Paired differences" in md and "test AUC bbbbbb - aaaaaa:" in md
    old = [runs.load_run(scored_runs / "20240601-150000-breastmnist-pretrain-dddddd"), records[0]]
    assert "Paired differences" not in compare.to_markdown(old)  # no scores: no claim


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
@pytest.mark.parametrize("name", [BINARY, CHEST])
def test_curves_snapshot(snap_compare, make_app, scored_runs, size, name):
    async def run_before(pilot):
        await _open_curves(pilot, name)

    assert snap_compare(_app(make_app, scored_runs), terminal_size=size, run_before=run_before)


def test_result_line_adds_the_stages_own_best_when_the_answer_is_another_epoch():
    from damtui.records import Interval, Selected
    from damtui.tui.screens.curves import result_line

    iv = {"test_auc": Interval(0.8, 0.9), "test_acc": Interval(0.7, 0.8)}
    answer = Selected("pretrain", 3, 0.9, 0.8, 0.85, 0.75, intervals=iv)
    best = Selected("finetune", 2, 0.88, 0.8, 0.84, 0.74, intervals=iv)
    assert result_line(answer, best).splitlines() == [
        "test 95% CI, pretrain@3: AUC 0.850 [0.800, 0.900]  ACC 0.750 [0.700, 0.800]",
        "test 95% CI, finetune@2: AUC 0.840 [0.800, 0.900]  ACC 0.740 [0.700, 0.800]"]
    assert len(result_line(answer, answer).splitlines()) == 1
    assert result_line(Selected("pretrain", 3), None) == ""
