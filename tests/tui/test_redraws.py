"""The monitor's redraw budget: the app shares the training process (and its GIL), so charts are
rate-limited and unchanged text does not lay the screen out again."""

from __future__ import annotations

from fakes import wait_for
from textual.app import App, ComposeResult
from textual.widgets import Static

from damtui.records import EpochRow
from damtui.tui.screens.monitor import set_text
from damtui.tui.widgets import charts


class _Charts(App):
    def compose(self) -> ComposeResult:
        yield charts.MetricCharts()


def _rows(n: int) -> list[EpochRow]:
    return [EpochRow(e, train_auc=0.5 + e / 100, val_auc=0.6, test_auc=0.55, train_loss=1 / e)
            for e in range(1, n + 1)]


async def test_fast_updates_are_coalesced_and_the_newest_rows_are_drawn(monkeypatch):
    monkeypatch.setattr(charts, "RENDER_SHARE", 0.05)
    app = _Charts()
    async with app.run_test(size=(160, 48)) as pilot:
        group = app.query_one(charts.MetricCharts)
        widgets = list(app.query(charts.MetricChart))
        group.show(_rows(1), 1, 10)
        assert not group.waiting and all(len(w._data[0]) == 1 for w in widgets)  # the first draw is at once
        assert all(w.render_s > 0 for w in widgets if w.display)  # measured when the empty charts were mounted
        group.show(_rows(2), 2, 10)
        group.show(_rows(3), 3, 10)
        assert group.waiting and all(len(w._data[0]) == 1 for w in widgets)  # too soon: deferred
        await wait_for(pilot, lambda: not group.waiting)
        assert all(len(w._data[0]) == 3 for w in widgets)  # rows 2 were skipped, the newest drawn


async def test_set_text_skips_unchanged_text():
    class _Text(App):
        def compose(self) -> ComposeResult:
            yield Static("", id="box")

    app = _Text()
    async with app.run_test() as pilot:
        box = app.query_one("#box", Static)
        layouts: list[bool] = []
        real = box.refresh
        box.refresh = lambda *a, layout=False, **k: (layouts.append(layout), real(*a, layout=layout, **k))[1]
        for text in ("epoch 1", "epoch 1", "epoch 1", "epoch 2", "epoch 10"):
            set_text(box, text)
        set_text(box, "batch 3/9", layout=False)
        await pilot.pause()
        # a change that keeps every line's length (the monitor's elapsed time, each second) takes
        # the room the text had: no layout pass; a longer line may wrap, so it gets one
        assert layouts == [True, False, True, False] and box.content == "batch 3/9"


async def test_a_long_runs_table_slides_without_being_filled_again(monkeypatch):
    """A run of thousands of epochs shows its newest 500: each new epoch removes the oldest row and
    appends one (filling 500 rows again for every epoch cost ~0.3 s of the app's thread each:
    benchmarks/big_runs.py); rows only go in again when one must come before those shown."""
    from damtui.tui.widgets.epoch_table import EpochTable

    class _Table(App):
        def compose(self) -> ComposeResult:
            yield EpochTable()

    app = _Table()
    async with app.run_test(size=(100, 20)) as pilot:
        table = app.query_one(EpochTable)
        refills: list[int] = []
        real = table.clear
        monkeypatch.setattr(table, "clear", lambda *a, **k: refills.append(1) or real(*a, **k))
        rows = _rows(40)
        keys = lambda: [k.value for k in table.rows]  # noqa: E731 - the shown order
        table.show([rows[4], *rows[10:30]], 5)  # the best pinned above the window
        table.show([rows[4], *rows[11:31]], 5)
        await pilot.pause()
        assert keys() == ["5", *map(str, range(12, 32))] and refills == []
        table.show(rows[12:32], 32)  # a new best inside the window: the pinned row goes
        assert keys() == list(map(str, range(13, 33))) and refills == []
        assert str(table.get_row("32")[0]).strip() == "32*"
        table.show([rows[0], *rows[12:32]], 1)  # an earlier row that must go first: filled again, in order
        assert keys() == ["1", *map(str, range(13, 33))] and refills == [1]
        assert str(table.get_row("1")[0]).strip() == "1*" and str(table.get_row("32")[0]).strip() == "32"
