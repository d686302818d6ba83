"""Per-epoch charts drawn with plotext: a run's AUC, ACC, loss, lr, DAM health and AUCM charts.

Data in, pixels out: `MetricCharts.show(rows, best_epoch, planned, dataset)`; the widget never
reads files. What a chart shows is planned in `chart_plan` (pure); here a plan is drawn. The
legend sits in the chart's top border and the benchmark lines' labels in its bottom border, so
nothing covers the curves. Narrow terminals show one chart at a time (`select`), wide ones a page
of three side by side.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from damtui.text import shown
from damtui.records import EpochRow
from damtui.tui.widgets.chart_plan import CHARTS, PAGE, Plan, run_chart

WIDE = 120  # columns from which a page of three charts sits side by side
# Redraws may take at most this share of the app's thread: plotext renders in pure Python and
# holds the GIL, which the training thread needs to launch its kernels. At ~15 ms for three charts
# this is one redraw per ~0.75 s; epochs longer than that redraw every epoch.
RENDER_SHARE = 0.02
RICH_COLOURS = {"orange": "dark_orange", "gray": "grey50"}  # plotext colour -> Rich style


def _style(colour: str) -> str:
    return RICH_COLOURS.get(colour, colour)


def legend_text(plan: Plan, mono: bool = False) -> Text:
    """The chart's title line: title, one coloured key per series drawn (markers without colour),
    and the note (best epoch, or why nothing is drawn)."""
    out = Text(plan.title, style="bold")
    for label, colour, marker in plan.legend:
        out.append("  ")
        out.append(f"{marker if mono else '━'} {shown(label)}", style="" if mono else _style(colour))
    if plan.note:
        out.append(f"  · {plan.note}", style="italic" if not plan.lines else "")
    return out


def refs_text(plan: Plan, mono: bool = False) -> Text:
    """The bottom border of a chart with benchmark lines: each line's label and value."""
    out = Text("MedMNIST v2 test:", style="bold")
    for ref, colour in plan.refs:
        name = f"best {ref.model}" if ref.row == "best" else ref.model  # the paper is named once
        out.append("  ")
        out.append(f"─ {name} {ref.value:.3f}", style="" if mono else _style(colour))
    return out


def draw_plan(plt: Any, plan: Plan, mono: bool) -> None:
    """Put a plan on a plotext figure: no plotext title or legend (both are the widget's borders)."""
    plt.clear_data()  # also resets the axis limits: set them again below
    plt.clear_figure()
    if plan.vline is not None:
        plt.vline(plan.vline, "gray")  # first, so the points are drawn over it
    for ref, colour in plan.refs:
        plt.hline(ref.value, colour)
    for line in plan.lines:
        if mono or len(line.xs) == 1:
            # without colour, series differ by their marker: draw the epochs only
            plt.scatter(line.xs, line.ys, color=line.colour, marker=line.marker if mono else "o")
        else:
            plt.plot(line.xs, line.ys, color=line.colour, marker="braille")
    plt.xlim(*plan.xlim)
    plt.xticks(list(plan.xticks))
    plt.ylim(*plan.ylim)


class PlanPlot(PlotextPlot):
    """A plotext chart that draws a Plan, its legend in the top border, its references below."""

    DEFAULT_CSS = """
    PlanPlot { border-top: solid $panel-lighten-2; border-title-align: left; }
    PlanPlot.-refs { border-bottom: solid $panel-lighten-2; border-subtitle-align: left; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.plan: Plan | None = None
        self.render_s = 0.0  # how long the last render took

    def render(self) -> Any:
        t0 = time.perf_counter()
        out = super().render()
        self.render_s = time.perf_counter() - t0
        return out

    def draw(self, plan: Plan) -> None:
        self.plan = plan
        mono = bool(getattr(self.app, "no_color", False))
        draw_plan(self.plt, plan, mono)
        self.border_title = legend_text(plan, mono)  # type: ignore[assignment]
        self.border_subtitle = refs_text(plan, mono) if plan.refs else ""  # type: ignore[assignment]
        self.set_class(bool(plan.refs), "-refs")
        self.refresh()


class MetricChart(PlanPlot):
    """One of a run's charts (a key of chart_plan.CHARTS)."""

    def __init__(self, chart: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart = chart
        self._data: tuple[list[EpochRow], int | None, int, str, bool] = ([], None, 0, "", True)

    def on_mount(self) -> None:
        super().on_mount()
        self.draw(run_chart(self.chart, *self._data))

    def set_data(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int, dataset: str = "",
                 show_refs: bool = True) -> None:
        self._data = (list(rows), best_epoch, planned, dataset, show_refs)
        if self.is_mounted:
            self.draw(run_chart(self.chart, *self._data))


class MetricCharts(Horizontal):
    """A run's charts; narrow terminals show the selected one, wide ones its page of three."""

    DEFAULT_CSS = """
    MetricCharts { height: 1fr; min-height: 8; }
    MetricCharts MetricChart { width: 1fr; height: 1fr; display: none; }
    MetricCharts MetricChart.-page { display: block; }
    MetricCharts.-narrow MetricChart.-page { display: none; }
    MetricCharts.-narrow MetricChart.-selected { display: block; }
    /* side by side, every chart keeps a bottom border row so that their x-axes line up */
    MetricCharts MetricChart { border-bottom: blank; }
    MetricCharts.-narrow MetricChart { border-bottom: none; }
    MetricCharts MetricChart.-refs { border-bottom: solid $panel-lighten-2; }
    """

    show_refs: reactive[bool] = reactive(True, init=False)  # the benchmark lines (b)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.selected = "auc"
        self._data: tuple[list[EpochRow], int | None, int, str] = ([], None, 0, "")
        self._pending = False
        self._next_draw = 0.0
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        for chart in CHARTS:
            yield MetricChart(chart, id=f"chart-{chart}")

    def _narrow(self) -> None:
        self.set_class(self.app.size.width < WIDE, "-narrow")

    def on_resize(self) -> None:
        self._narrow()

    def on_mount(self) -> None:
        self._narrow()
        self.select(self.selected)

    @property
    def narrow(self) -> bool:
        return self.has_class("-narrow")

    def select(self, chart: str) -> None:
        """Show this chart (and, when wide, the page of three it is on)."""
        self.selected = chart
        names = list(CHARTS)
        page = names.index(chart) // PAGE
        for widget in self.query(MetricChart):
            widget.set_class(widget.chart == chart, "-selected")
            widget.set_class(names.index(widget.chart) // PAGE == page, "-page")

    def cycle(self) -> str:
        """The next chart; on a wide terminal the first chart of the next page."""
        names = list(CHARTS)
        i = names.index(self.selected)
        step = 1 if self.narrow else PAGE - i % PAGE
        self.select(names[(i + step) % len(names)])
        return self.selected

    def watch_show_refs(self) -> None:
        self._pending = True
        self._draw_pending()

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int, dataset: str = "") -> None:
        """Show these rows now, or, while redraws would exceed RENDER_SHARE, as soon as they fit
        (only the newest data is drawn then)."""
        self._data, self._pending = (list(rows), best_epoch, planned, dataset), True
        wait = self._next_draw - time.monotonic()
        if wait <= 0:
            self._draw_pending()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._draw_pending)

    @property
    def waiting(self) -> bool:
        """True while the newest rows wait for their redraw slot."""
        return self._pending

    def _draw_pending(self) -> None:
        self._timer = None
        if not self._pending:
            return
        self._pending = False
        widgets = list(self.query(MetricChart))
        for widget in widgets:
            widget.set_data(*self._data, show_refs=self.show_refs)
        cost = sum(w.render_s for w in widgets if w.display)
        self._next_draw = time.monotonic() + cost / RENDER_SHARE
