"""Charts plus epoch table: the monitor and the saved-run view both show a run through this."""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.containers import Vertical

from damtui.records import EpochRow
from damtui.tui.widgets.charts import MetricCharts
from damtui.tui.widgets.epoch_table import EpochTable


class RunPanel(Vertical):
    DEFAULT_CSS = """
    RunPanel { height: 1fr; }
    """

    def compose(self) -> ComposeResult:
        yield MetricCharts()
        yield EpochTable()

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int) -> None:
        self.query_one(MetricCharts).show(rows, best_epoch, planned)
        self.query_one(EpochTable).show(rows, best_epoch)

    def cycle_chart(self) -> str:
        return self.query_one(MetricCharts).cycle()

    def select_chart(self, chart: str) -> None:
        self.query_one(MetricCharts).select(chart)
