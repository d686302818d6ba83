"""Charts plus epoch table: the monitor and the saved-run view both show a run through this, and
share its chart keys (`CHART_BINDINGS`, `ChartActions`)."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical

from damtui.records import EpochRow
from damtui.tui.widgets.charts import MetricCharts
from damtui.tui.widgets.epoch_table import EpochTable

CHART_BINDINGS = [
    Binding("g", "cycle_chart", "Chart"),
    Binding("b", "toggle_refs", "Benchmark"),
    *(Binding(str(i), f"chart('{name}')", name, show=False)
      for i, name in enumerate(("auc", "acc", "loss", "lr", "health", "aucm"), start=1)),
]


TABLE_ROWS = 500  # the epoch table shows the newest epochs (a 10,000-row table took 40 s to draw)
CHART_POINTS = 1000  # each chart draws at most this many epochs, evenly thinned


def thinned(rows: Sequence[EpochRow], n: int, keep: int | None = None) -> list[EpochRow]:
    """At most about `n` of `rows`, evenly spaced, always with the first, the last and epoch `keep`."""
    if len(rows) <= n:
        return list(rows)
    picked = {int(i * len(rows) / n) for i in range(n)} | {len(rows) - 1}
    picked |= {i for i, r in enumerate(rows) if r.epoch == keep}
    return [rows[i] for i in sorted(picked)]


class RunPanel(Vertical):
    DEFAULT_CSS = """
    RunPanel { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield MetricCharts()
        yield EpochTable()

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int, dataset: str = "") -> None:
        """`dataset` names the MedMNIST flag whose benchmark lines the AUC/ACC charts draw. A long
        run costs what the screen shows: thinned charts, the table's newest rows (and the best)."""
        self.query_one(MetricCharts).show(thinned(rows, CHART_POINTS, best_epoch), best_epoch, planned, dataset)
        tail = list(rows[-TABLE_ROWS:])
        best = [r for r in rows[:-TABLE_ROWS] if r.epoch == best_epoch] if len(rows) > TABLE_ROWS else []
        self.query_one(EpochTable).show(best + tail, best_epoch)

    def cycle_chart(self) -> str:
        return self.query_one(MetricCharts).cycle()

    def select_chart(self, chart: str) -> None:
        self.query_one(MetricCharts).select(chart)

    def toggle_refs(self) -> bool:
        charts = self.query_one(MetricCharts)
        charts.show_refs = not charts.show_refs
        return charts.show_refs


class ChartActions:
    """The chart keys of a screen that holds one RunPanel (monitor, run view)."""

    def action_cycle_chart(self) -> None:
        self.query_one(RunPanel).cycle_chart()  # type: ignore[attr-defined]

    def action_chart(self, chart: str) -> None:
        self.query_one(RunPanel).select_chart(chart)  # type: ignore[attr-defined]

    def action_toggle_refs(self) -> None:
        shown = self.query_one(RunPanel).toggle_refs()  # type: ignore[attr-defined]
        self.notify(f"MedMNIST v2 benchmark lines {'shown' if shown else 'hidden'}", timeout=2)  # type: ignore[attr-defined]
