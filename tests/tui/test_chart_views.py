"""Charts as TensorBoard and W&B users read them (issue 26): axes padded to the values (lr 0.001 is
not a flat line on a 0-0.02 axis), a log y-axis, smoothing, titles and benchmark labels that fit
instead of being cut, `b` only where benchmark rows exist, and a fine-tune drawn after its
pretrain as one curve with the answer's epoch marked where it is."""

from __future__ import annotations

import pytest
from fakes import make_run, metrics_row, read_json, screen_text
from test_charts import _open_run, health_row

from damtui.records import EpochRow
from damtui.store import runs
from damtui.tui.widgets import chart_plan as cp
from damtui.tui.widgets.charts import MetricChart, legend_text, refs_text


def _rows(key: str, values: list[float]) -> list[EpochRow]:
    return [EpochRow.from_json({**metrics_row(e).to_json(), key: v}) for e, v in enumerate(values, start=1)]


def test_a_small_lr_and_small_aucm_values_fill_their_axis():
    """Item 2: a fixed 0.02 pad put lr 0.001 flat at the bottom of a 0-0.021 axis."""
    flat = cp.run_chart("lr", _rows("lr", [0.001] * 4))
    assert 0.00089 < flat.ylim[0] < 0.001 < flat.ylim[1] < 0.0011
    schedule = cp.run_chart("lr", _rows("lr", [0.001, 0.001, 1e-4, 1e-5]))
    assert schedule.ylim[1] < 0.0012  # the steps take the whole height
    aucm = cp.run_chart("aucm", [EpochRow.from_json({**health_row(e).to_json(), "aucm_a": 0.001 * e,
                                                     "aucm_b": 0.0, "aucm_alpha": 0.01}) for e in (1, 2, 3)])
    assert -0.0015 <= aucm.ylim[0] and aucm.ylim[1] <= 0.0115  # was -0.019..0.031
    auc = cp.run_chart("auc", [metrics_row(e) for e in (1, 2)])
    assert auc.ylim[1] - auc.ylim[0] >= 0.04  # a score axis keeps some room around close values


def test_log_axis_and_smoothing():
    """TensorBoard's log scale and smoothing: a 0.001 -> 1e-05 schedule in even steps, decade ticks."""
    rows = _rows("lr", [0.001, 0.001, 1e-4, 1e-5])
    log = cp.run_chart("lr", rows, view=cp.View(log_y=True))
    assert log.lines[0].ys == pytest.approx((-3, -3, -4, -5))
    labels = [label for _, label in log.yticks]
    assert "0.001" in labels and "0.0001" in labels and "1e-05" in labels
    assert "log" in log.note
    aucm = cp.run_chart("aucm", [health_row(e) for e in (1, 2)] + [EpochRow.from_json(
        {**health_row(3).to_json(), "aucm_b": -0.2})], view=cp.View(log_y=True))
    assert aucm.yticks == () and "linear: values ≤ 0" in aucm.note  # no log of a negative
    assert cp.smooth([1.0, 0.0, 0.0], 0.5) == pytest.approx((1.0, 1 / 3, 1 / 7))  # debiased EMA
    smoothed = cp.run_chart("auc", [metrics_row(e) for e in (1, 2, 3, 4)], view=cp.View(smoothing=0.5))
    raw = cp.run_chart("auc", [metrics_row(e) for e in (1, 2, 3, 4)])
    assert smoothed.lines[1].ys[0] == raw.lines[1].ys[0] and smoothed.lines[1].ys[3] != raw.lines[1].ys[3]
    assert "smoothed 0.5" in smoothed.note
    assert cp.View().smoother(1).smoothing == 0.5 and cp.View(smoothing=0.9).smoother(1).smoothing == 0.9
    assert cp.View(smoothing=0.5).smoother(-1).smoothing == 0.0


def test_titles_drop_words_not_numbers_when_short_of_room():
    """Item 12: `─ best Goo…─`, `val 0.…`, `pos share …` were cut at 80 columns."""
    plan = cp.run_chart("health", [health_row(e) for e in (1, 2)])
    narrow = legend_text(plan, width=34).plain
    assert len(narrow) <= 34 and "sat" in narrow and "…" not in narrow
    auc = cp.run_chart("auc", [metrics_row(e) for e in (1, 2, 3)], best=3, dataset="breastmnist")
    assert "val 0.8300 at best epoch 3" in legend_text(auc).plain
    short = legend_text(auc, width=40).plain
    assert len(short) <= 40 and "0.8300" in short
    for width in (76, 49, 36):
        refs = refs_text(auc, width=width).plain
        assert len(refs) <= width and "0.919" in refs and "0.901" in refs  # every value whole
    assert "Google AutoML Vision" in refs_text(auc).plain  # where there is room, the full names
    both = cp.run_chart("auc", [metrics_row(e) for e in (1, 2)], best=2,
                        pretrain=cp.Pretrain(tuple(metrics_row(e) for e in (1, 2, 3))))
    assert "pretrain → fine-tune" in legend_text(both).plain
    assert len(legend_text(both, width=36).plain) <= 36  # a third of 120 columns: the title shortens too


def _pretrain_and_finetune(root):
    """A pretrain whose best epoch (3, val 0.83) beats every epoch of the fine-tune started from it."""
    pre = make_run(root, "20240601-120000-breastmnist-pretrain-aaaaaa", epochs_done=6, dataset="breastmnist")
    ft = make_run(root, "20240601-130000-breastmnist-finetune-bbbbbb", epochs_done=3, dataset="breastmnist",
                  stage="finetune", wobble=-0.05, started=1_717_243_200.0 + 3600)
    saved = read_json(ft / runs.CONFIG)
    saved["runtime"].update(from_run=pre.name, from_run_path=str(pre))
    runs.atomic_write_json(ft / runs.CONFIG, saved)
    return pre, ft


def test_a_fine_tune_is_drawn_after_its_pretrain_with_the_answer_where_it_is():
    """Item 6 / what W&B users reached for: one continuous curve, the answer's epoch marked."""
    pre_rows = [metrics_row(e) for e in (1, 2, 3)]  # the pretrain up to its best, epoch 3 (val 0.83)
    ft_rows = [metrics_row(e, wobble=-0.05) for e in (1, 2, 3)]  # best 0.78 at its epoch 3
    plan = cp.run_chart("auc", ft_rows, best=3, pretrain=cp.Pretrain(tuple(pre_rows)))
    assert plan.lines[1].xs == (1, 2, 3, 4, 5, 6)  # val: pretrain 1-3, then the fine-tune at 4-6
    assert plan.vline == 3 and "answer: val 0.8300 at pretrain epoch 3" in plan.note
    assert plan.xlabels[-1] == "f3" and "1" in plan.xlabels
    better = [metrics_row(e, wobble=0.1) for e in (1, 2)]
    plan = cp.run_chart("auc", better, best=2, pretrain=cp.Pretrain(tuple(pre_rows)))
    assert plan.vline == 5 and "at finetune epoch 2" in plan.note  # the fine-tune's epoch 2, at x 3+2
    loss = cp.run_chart("loss", ft_rows, best=3, pretrain=cp.Pretrain(tuple(pre_rows)))
    assert loss.lines[0].xs == (4, 5, 6)  # the train loss is another loss in each stage: not joined


@pytest.mark.slow
async def test_the_fine_tune_page_draws_both_stages_and_b_only_where_benchmarks_exist(make_app, runs_dir):
    """Items 6 and 11 on the page: the pretrain's epochs before the fine-tune's, the answer marked
    at the pretrain's epoch; `b` offered for breastmnist, not for a synthetic set."""
    _pretrain_and_finetune(runs_dir)
    make_run(runs_dir, "20240601-110000-synthetic2d-pretrain-cccccc", epochs_done=2, started=1_717_243_200.0 - 3600)
    app = make_app()
    async with app.run_test(size=(80, 30)) as pilot:
        view = await _open_run(pilot, row=0)  # the fine-tune, the newest
        auc = view.query_one("#chart-auc", MetricChart)
        await pilot.pause()
        await _until(pilot, lambda: auc.plan is not None and auc.plan.xlabels)
        assert auc.plan.vline == 3 and auc.plan.lines[1].xs[:3] == (1, 2, 3)
        text = screen_text(app)
        assert "fine-tune best val AUC" in text and "answer: val 0.8300 at pretrain epoch 3" in auc.plan.note
        assert "b Benchmark" in text.splitlines()[-1]
        await pilot.press("y", "plus")
        await _until(pilot, lambda: "log" in auc.plan.note and "smoothed 0.5" in auc.plan.note)
        await pilot.press("escape")
        view = await _open_run(pilot, row=2)  # the synthetic run
        assert "b Benchmark" not in screen_text(app).splitlines()[-1]
        await pilot.press("b")
        await pilot.pause()
        assert not any("benchmark" in str(n.message) for n in app._notifications)


async def _until(pilot, predicate):
    from fakes import wait_for

    await wait_for(pilot, predicate)
