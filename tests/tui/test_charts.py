"""Charts (issue #14 item 5, #15 items 3 and 5): legend outside the plot, x to the epochs that
exist, score axes capped at 1, val loss / lr / DAM health charts, benchmark lines toggled with b,
"not recorded" for old runs, a usable compare chart at 80x24, the saturation warning on the monitor."""

from __future__ import annotations

from pathlib import Path

import fakes
import pytest
from rich.text import Text
from fakes import FakeEngine, make_run, metrics_row, screen_text, settle, wait_for
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Select

from damtui.store import runs
from damtui.records import EpochRow
from damtui.analysis.references import benchmark
from damtui.tui.screens.compare import CompareScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets import chart_plan as cp
from damtui.tui.widgets.charts import MetricChart, MetricCharts, PlanPlot


def health_row(epoch: int, saturated: float = 0.05) -> EpochRow:
    """A fine-tune row with every health key (metrics_row's scores plus the new keys)."""
    return EpochRow.from_json({**metrics_row(epoch).to_json(), "val_loss": 0.6 - 0.05 * epoch,
                               "train_saturated": saturated, "train_pos_share": 0.5, "imratio": 0.27,
                               "aucm_a": 0.4 + 0.02 * epoch, "aucm_b": 0.1, "aucm_alpha": 0.6})


def health_run(root: Path, name: str, epochs: int = 4, started: float = fakes.STARTED, **over) -> Path:
    path = make_run(root, name, epochs_done=0, stage="finetune", **over)
    writer = runs.RunWriter(path)
    for e in range(1, epochs + 1):
        writer.append_metrics(health_row(e))
    fakes.set_status(path, runs.FINISHED, epochs, epochs, started, started + 60 * epochs)
    return path


# ----------------------------------------------------------------------------- plans (pure)


def test_x_axis_spans_the_epochs_that_exist_not_the_planned_ones():
    rows = [metrics_row(e) for e in (1, 2, 3)]
    plan = cp.run_chart("auc", rows, best=3, planned=50)
    assert plan.xlim == (1.0, 3.0) and plan.xticks == (1, 2, 3)
    one = cp.run_chart("auc", rows[:1], planned=50)
    assert one.xlim[0] < 1 < one.xlim[1] and one.xticks == (1,)
    overlay = cp.overlay_chart([("a", [1, 2], [0.5, 0.6]), ("b", [1, 2, 3, 4, 5], [0.5] * 5)], "val_auc",
                               ["cyan", "red"], ["o", "x"])
    assert overlay.xlim == (1.0, 5.0)


def test_score_axis_never_goes_above_one():
    rows = [EpochRow(e, train_auc=1.0, val_auc=0.999, test_auc=1.0) for e in (1, 2)]
    for chart in ("auc", "acc", "health"):
        assert cp.run_chart(chart, rows).ylim[1] <= 1.0
    assert cp.run_chart("auc", rows).ylim[0] < 1.0
    flat = cp.overlay_chart([("a", [1, 2], [1.0, 1.0])], "test_auc", ["cyan"], ["o"])
    assert flat.ylim[1] <= 1.0 and flat.ylim[0] < 1.0


def test_loss_chart_has_validation_loss_beside_train_loss_and_lr_has_its_own():
    rows = [health_row(e) for e in (1, 2)]
    loss = cp.run_chart("loss", rows)
    assert [label for label, *_ in loss.legend] == ["train (stage loss)", "val CE of scores"]
    assert loss.lines[1].ys == pytest.approx((0.55, 0.5))
    assert cp.run_chart("lr", rows).lines[0].ys == (0.1, 0.1)
    dam = cp.run_chart("health", rows)
    assert {label for label, *_ in dam.legend} == {"saturated", "pos share", "imratio"}
    assert {label for label, *_ in cp.run_chart("aucm", rows).legend} == {"a", "b", "alpha"}


def test_old_rows_show_not_recorded():
    rows = [metrics_row(e) for e in (1, 2)]  # written before the health keys existed
    for chart in ("health", "aucm"):
        plan = cp.run_chart(chart, rows)
        assert plan.lines == () and plan.note == cp.NOT_RECORDED
    assert len(cp.run_chart("loss", rows).lines) == 1  # train loss only, no val line invented


def test_reference_lines_come_from_the_benchmark_of_medmnist_sets_only():
    rows = [metrics_row(e) for e in (1, 2)]
    bench = benchmark("breastmnist")
    auc = cp.run_chart("auc", rows, dataset="breastmnist")
    assert [r.value for r, _ in auc.refs] == [r.value for r in bench.lines("auc")] and len(auc.refs) == 3
    assert [r.value for r, _ in cp.run_chart("acc", rows, dataset="breastmnist").refs] == \
        [r.value for r in bench.lines("acc")]
    assert auc.ylim[0] <= min(r.value for r, _ in auc.refs) and max(r.value for r, _ in auc.refs) <= auc.ylim[1]
    assert cp.run_chart("auc", rows, dataset="breastmnist", show_refs=False).refs == ()
    assert cp.run_chart("auc", rows, dataset="synthetic2d").refs == ()
    assert cp.run_chart("loss", rows, dataset="breastmnist").refs == ()


# ----------------------------------------------------------------------------- widgets (Pilot)


class _Charts(App):
    def compose(self) -> ComposeResult:
        yield MetricCharts()


def _labels(plot: PlanPlot) -> list[str]:
    return [label for label in plot.plt._active.monitor.label if label]  # plotext's legend entries


async def test_legend_sits_in_the_border_not_inside_the_plot():
    app = _Charts()
    async with app.run_test(size=(160, 48)) as pilot:
        group = app.query_one(MetricCharts)
        group.show([metrics_row(1)], 1, 10, "breastmnist")
        await pilot.pause()
        auc = app.query_one("#chart-auc", MetricChart)
        assert _labels(auc) == []  # no plotext legend over the curves
        title = str(auc.border_title)
        assert "━ train" in title and "━ val" in title and "━ test" in title
        # a third of 160 columns: the short names, every value whole (issue 26 item 12: `best Goo…`)
        assert "R18 0.901" in str(auc.border_subtitle) and "best 0.919" in str(auc.border_subtitle)
        assert len(Text.from_markup(str(auc.border_subtitle)).plain) <= auc.size.width - 4
        monitor = auc.plt._active.monitor
        assert monitor.xlim[0] == [0.5, 1.5]
        assert max(monitor.ylim[0]) <= 1.0
        refs = sorted(r.value for r in benchmark("breastmnist").lines("auc"))
        assert sorted(auc.plan.ref_ys) == refs
        # thin lines drawn before the curves (which cover them), not full-width rules over the data
        assert sum(monitor.hcoord, []) == []
        group.show_refs = False
        await pilot.pause()
        assert not auc.border_subtitle


async def test_wide_pages_of_three_and_cycling():
    app = _Charts()
    async with app.run_test(size=(160, 48)) as pilot:
        group = app.query_one(MetricCharts)
        shown = lambda: [w.chart for w in app.query(MetricChart) if w.display]  # noqa: E731
        assert shown() == ["auc", "acc", "loss"]
        group.cycle()
        await pilot.pause()
        assert shown() == ["lr", "health", "aucm"]
        await pilot.resize_terminal(80, 24)
        await pilot.pause()
        assert shown() == ["lr"]
        assert group.cycle() == "health"
        await pilot.pause()
        assert shown() == ["health"]


async def _open_run(pilot, row: int = 0) -> RunViewScreen:
    await settle(pilot)
    await pilot.press("r")
    await wait_for(pilot, lambda: pilot.app.screen.loaded)
    pilot.app.screen.query_one("#runs-table", DataTable).move_cursor(row=row)
    await pilot.press("enter")
    view = pilot.app.screen
    assert isinstance(view, RunViewScreen)
    await wait_for(pilot, lambda: view.record is not None)
    await wait_for(pilot, lambda: not view.query_one(MetricCharts).waiting)
    return view


@pytest.mark.slow
async def test_run_view_b_toggles_benchmark_lines_and_keys_pick_health_charts(make_app, runs_dir):
    health_run(runs_dir, "20240601-120000-breastmnist-finetune-aaaaaa", dataset="breastmnist")
    app = make_app()
    async with app.run_test(size=(80, 30)) as pilot:
        view = await _open_run(pilot)
        auc = view.query_one("#chart-auc", MetricChart)
        assert auc.plan is not None and len(auc.plan.refs) == 3
        assert "MedMNIST v2 test" in screen_text(app)
        await pilot.press("b")
        await pilot.pause()
        assert auc.plan.refs == () and "MedMNIST v2 test" not in screen_text(app)
        await pilot.press("5")
        await pilot.pause()
        text = screen_text(app)
        assert "DAM health" in text and "saturated" in text and "pos share" in text
        await pilot.press("b")
        await pilot.pause()
        assert len(auc.plan.refs) == 3


@pytest.mark.slow
async def test_old_run_says_not_recorded(make_app, runs_dir):
    make_run(runs_dir, "20240601-120000-synthetic2d-finetune-aaaaaa", epochs_done=3, stage="finetune")
    app = make_app()
    async with app.run_test(size=(80, 30)) as pilot:
        await _open_run(pilot)
        await pilot.press("6")
        await pilot.pause()
        assert "AUCM" in screen_text(app) and cp.NOT_RECORDED in screen_text(app)


@pytest.mark.slow
async def test_compare_chart_is_usable_at_80x24_with_legend_and_reference_lines(make_app, runs_dir):
    make_run(runs_dir, "20240601-120000-breastmnist-pretrain-aaaaaa", epochs_done=6, dataset="breastmnist")
    make_run(runs_dir, "20240601-130000-breastmnist-pretrain-bbbbbb", epochs_done=3, dataset="breastmnist",
             seed=1, epochs=50, started=fakes.STARTED + 3600)
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("r")
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("space", "down", "space", "c")
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        await pilot.pause()
        plot = screen.query_one("#compare-plot", PlanPlot)
        assert plot.size.height >= 11  # was 5 rows
        assert plot.plan is not None and plot.plan.xlim == (1.0, 6.0)  # not the 50 planned epochs
        assert _labels(plot) == [] and "aaaaaa" in str(plot.border_title) and "bbbbbb" in str(plot.border_title)
        assert plot.plan.refs == ()  # val AUC: the benchmark is on test
        screen.query_one("#metric", Select).value = "test_auc"
        await pilot.pause()
        assert len(plot.plan.refs) == 3 and plot.plan.ylim[1] <= 1.0
        await pilot.press("b")
        await pilot.pause()
        assert plot.plan.refs == ()


async def test_monitor_warns_when_saturation_climbs(make_app, runs_dir, monkeypatch):
    rising = {1: 0.1, 2: 0.2, 3: 0.45}
    monkeypatch.setattr(fakes, "metrics_row", lambda epoch, wobble=0.0: health_row(epoch, rising.get(epoch, 0.5)))
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    engine = FakeEngine(batches=2, hold_at=(4, 1))
    app = make_app(engine)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        app.screen.query_one("#stage", Select).value = "finetune"
        await pilot.pause()
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: engine.holding.is_set() and len(app.session.rows) == 3)
        await pilot.pause()
        text = " ".join(screen_text(app).split())
        assert "! saturated train scores 45% at epoch 3, up from 10%" in text
        engine.release()
