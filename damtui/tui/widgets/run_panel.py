"""Charts plus epoch table: the monitor and the saved-run view both show a run through this, and
share its chart keys (`CHART_BINDINGS`, `ChartActions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message

from damtui.records import EpochRow
from damtui.tui.widgets.chart_plan import CHARTS, Pretrain, has_references
from damtui.tui.widgets.charts import MetricCharts
from damtui.tui.widgets.epoch_table import EpochTable

# the chart keys of every screen with charts (monitor, run page; compare has the same ones)
CHART_BINDINGS = [
    Binding("right_square_bracket", "cycle_chart(1)", "Chart", key_display="[ ]"),
    Binding("left_square_bracket", "cycle_chart(-1)", "Previous chart", show=False),
    *(Binding(str(i), f"chart('{name}')", f"{spec.title} chart", show=False)
      for i, (name, spec) in enumerate(CHARTS.items(), start=1)),
    Binding("b", "toggle_refs", "Benchmark"),
    Binding("y", "log_scale", "Log y-axis", show=False),
    Binding("plus,equals_sign", "smooth(1)", "Smooth more", key_display="+", show=False),
    Binding("minus", "smooth(-1)", "Smooth less", key_display="-", show=False),
]


class PretrainRead(Message):
    """A fine-tune's source epochs up to the checkpoint it started from, read in a worker
    (store.results), drawn before its own epochs as one curve."""

    def __init__(self, rows: list[EpochRow]) -> None:
        super().__init__()
        self.rows = rows


TABLE_ROWS = 500  # the epoch table shows the newest epochs (a long run's page cost: benchmarks/big_runs.py)
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

    def __init__(self) -> None:
        super().__init__()
        self.dataset = ""

    def compose(self) -> ComposeResult:
        yield MetricCharts()
        yield EpochTable()

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int, dataset: str = "",
             pretrain: Pretrain | None = None) -> None:
        """`dataset` names the MedMNIST flag whose benchmark lines the AUC/ACC charts draw; a
        fine-tune's `pretrain` is drawn before its own epochs. A long run costs what the screen
        shows: thinned charts, the table's newest rows (and the best)."""
        self.dataset = dataset
        charts = self.query_one(MetricCharts)
        charts.pretrain = pretrain
        charts.show(thinned(rows, CHART_POINTS, best_epoch), best_epoch, planned, dataset)
        tail = list(rows[-TABLE_ROWS:])
        best = [r for r in rows[:-TABLE_ROWS] if r.epoch == best_epoch] if len(rows) > TABLE_ROWS else []
        self.query_one(EpochTable).show(best + tail, best_epoch)

    def cycle_chart(self, step: int = 1) -> str:
        return self.query_one(MetricCharts).cycle(step)

    def select_chart(self, chart: str) -> None:
        self.query_one(MetricCharts).select(chart)

    def toggle_refs(self) -> bool:
        charts = self.query_one(MetricCharts)
        charts.show_refs = not charts.show_refs
        return charts.show_refs

    def toggle_log(self) -> bool:
        charts = self.query_one(MetricCharts)
        charts.view = replace(charts.view, log_y=not charts.view.log_y)
        return charts.view.log_y

    def smooth(self, step: int) -> float:
        charts = self.query_one(MetricCharts)
        charts.view = charts.view.smoother(step)
        return charts.view.smoothing


class ChartActions:
    """The chart keys of a screen that holds one RunPanel (monitor, run view)."""

    def chart_check(self, action: str) -> bool | None:
        """check_action's answer for the chart keys (None for other actions): `b` only where the
        run's dataset has MedMNIST v2 benchmark rows (a synthetic set has none)."""
        if action == "toggle_refs":
            return has_references(self.query_one(RunPanel).dataset)  # type: ignore[attr-defined]
        return None

    def action_cycle_chart(self, step: int = 1) -> None:
        self.query_one(RunPanel).cycle_chart(step)  # type: ignore[attr-defined]

    def action_chart(self, chart: str) -> None:
        self.query_one(RunPanel).select_chart(chart)  # type: ignore[attr-defined]

    def action_toggle_refs(self) -> None:
        shown = self.query_one(RunPanel).toggle_refs()  # type: ignore[attr-defined]
        self.notify(f"MedMNIST v2 benchmark lines {'shown' if shown else 'hidden'}", timeout=2)  # type: ignore[attr-defined]

    def action_log_scale(self) -> None:
        log = self.query_one(RunPanel).toggle_log()  # type: ignore[attr-defined]
        self.notify(f"y-axis {'log' if log else 'linear'}", timeout=2)  # type: ignore[attr-defined]

    def action_smooth(self, step: int) -> None:
        weight = self.query_one(RunPanel).smooth(step)  # type: ignore[attr-defined]
        self.notify(f"smoothing {weight:g}" if weight else "no smoothing", timeout=2)  # type: ignore[attr-defined]
