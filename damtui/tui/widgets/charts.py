"""Per-epoch charts drawn with plotext: a run's AUC, ACC, loss, lr, DAM health and AUCM charts.

Data in, pixels out: `MetricCharts.show(rows, best_epoch, planned, dataset)`; the widget never
reads files. What a chart shows is planned in `chart_plan` (pure); here a plan is drawn. The
legend sits in the chart's top border and the benchmark lines' labels in its bottom border, so
nothing covers the curves. Narrow terminals show one chart at a time (`select`), wide ones a page
of three side by side.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from damtui.text import shown
from damtui.records import EpochRow
from damtui.analysis.references import Reference
from damtui.tui.widgets.chart_plan import CHARTS, PAGE, Plan, Pretrain, View, run_chart

WIDE = 120  # columns from which a page of three charts sits side by side
# Redraws may take at most this share of the app's time: plotext renders in pure Python, and the
# app shares the machine's cores with the run it watches (benchmarks/tui_overhead.py). At ~15 ms
# for three charts this is one redraw per ~1.5 s; epochs longer than that redraw every epoch.
RENDER_SHARE = 0.01
RICH_COLOURS = {"orange": "dark_orange", "gray": "grey50"}  # plotext colour -> Rich style


def _style(colour: str) -> str:
    return RICH_COLOURS.get(colour, colour)


def legend_text(plan: Plan, mono: bool = False, width: int | None = None) -> Text:
    """The chart's title line: title, one coloured key per series drawn (markers without colour),
    and the note (best epoch, or why nothing is drawn). Within `width` cells it drops words in
    turn (a shorter note, shorter labels, no note) rather than cut a number off."""

    def line(labels: Sequence[str], note: str, gap: str = "  ", key: str = " ", title: str = plan.title) -> Text:
        out = Text(title, style="bold")
        for label, (_, colour, marker) in zip(labels, plan.legend):
            out.append(gap)
            out.append(f"{marker if mono else '━'}{key}{shown(label)}", style="" if mono else _style(colour))
        if note:
            out.append(f"{gap}· {note}", style="italic" if not plan.lines else "")
        return out

    full = [label for label, _, _ in plan.legend]
    short = list(plan.short_legend) or full
    bare = plan.title.split(" · ")[0]  # 'AUC · pretrain → fine-tune' -> 'AUC' (the x labels say f1, f2…)
    tries = [line(full, plan.note), line(full, plan.short_note), line(short, plan.short_note),
             line(short, plan.short_note, " ", ""), line(short, plan.short_note, " ", "", bare),
             line(short, "", " ", "", bare)]
    return _fitting(tries, width)


def _fitting(candidates: list[Text], width: int | None) -> Text:
    """The first candidate that fits in `width` cells (all of them: the first), else the last."""
    if width is None:
        return candidates[0]
    return next((c for c in candidates if c.cell_len <= width), candidates[-1])


def plain_model(ref: Reference) -> str:
    """'ResNet-18 (28)' -> 'ResNet-18': the model without the image size."""
    return re.sub(r"\s*\(.*?\)", "", ref.model)


def short_model(ref: Reference) -> str:
    """'ResNet-18 (28)' -> 'R18', 'ResNet-50+3D' -> 'R50+3D': the bottom border at 80 columns."""
    return re.sub(r"ResNet-?(\d+)", r"R\1", plain_model(ref))


def refs_text(plan: Plan, mono: bool = False, width: int | None = None) -> Text:
    """The bottom border of a chart with benchmark lines: each line's label and value, shortened
    to fit `width` (the values are never cut)."""

    def line(head: str, name: Any, gap: str = "  ", dash: str = "─ ") -> Text:
        out = Text(head, style="bold")
        for ref, colour in plan.refs:
            out.append(gap)
            out.append(f"{dash}{name(ref)} {ref.value:.3f}", style="" if mono else _style(colour))
        return out

    best = "best"

    tries = [line("MedMNIST v2 test:", lambda r: f"{best} {r.model}" if r.row == best else r.model),
             line("MedMNIST v2 test:", lambda r: best if r.row == best else r.model),
             line("MedMNIST v2 test:", lambda r: best if r.row == best else plain_model(r)),
             line("v2 test:", lambda r: best if r.row == best else short_model(r)),
             line("v2:", lambda r: best if r.row == best else short_model(r)),
             line("v2", lambda r: best if r.row == best else short_model(r), " ", "")]
    return _fitting(tries, width)


def draw_plan(plt: Any, plan: Plan, mono: bool) -> None:
    """Put a plan on a plotext figure: no plotext title or legend (both are the widget's borders).
    The benchmark lines are thin braille lines drawn first, so the runs' curves cover them."""
    plt.clear_data()  # also resets the axis limits: set them again below
    plt.clear_figure()
    if plan.vline is not None:
        plt.vline(plan.vline, "gray")  # first, so the points are drawn over it
    lo, hi = plan.xlim
    for (ref, colour), y in zip(plan.refs, plan.ref_ys or [r.value for r, _ in plan.refs]):
        plt.plot([lo, hi], [y, y], color=colour, marker="braille")
    for line in plan.lines:
        if mono or len(line.xs) == 1:
            # without colour, series differ by their marker: draw the epochs only
            plt.scatter(line.xs, line.ys, color=line.colour, marker=line.marker if mono else "o")
        else:
            plt.plot(line.xs, line.ys, color=line.colour, marker="braille")
    plt.xlim(*plan.xlim)
    if plan.xlabels:
        plt.xticks(list(plan.xticks), list(plan.xlabels))
    else:
        plt.xticks(list(plan.xticks))
    plt.ylim(*plan.ylim)
    if plan.yticks:
        plt.yticks([p for p, _ in plan.yticks], [label for _, label in plan.yticks])


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
        draw_plan(self.plt, plan, self._mono)
        self._titles()
        self.set_class(bool(plan.refs), "-refs")
        self.refresh()

    @property
    def _mono(self) -> bool:
        return bool(getattr(self.app, "no_color", False))

    def _titles(self) -> None:
        """The border lines, fitted to the width the chart has now."""
        if self.plan is None:
            return
        room = max(8, self.size.width - 4) if self.size.width else None  # corners and the title's padding
        self.border_title = legend_text(self.plan, self._mono, room)  # type: ignore[assignment]
        self.border_subtitle = refs_text(self.plan, self._mono, room) if self.plan.refs else ""  # type: ignore[assignment]

    def on_resize(self) -> None:
        self._titles()


class MetricChart(PlanPlot):
    """One of a run's charts (a key of chart_plan.CHARTS)."""

    def __init__(self, chart: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart = chart
        self._data: tuple[list[EpochRow], int | None, int, str] = ([], None, 0, "")
        self._view = View()
        self._pretrain: Pretrain | None = None

    def on_mount(self) -> None:
        super().on_mount()
        self._plan()

    def set_data(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int, dataset: str = "",
                 show_refs: bool = True, view: View | None = None, pretrain: Pretrain | None = None) -> None:
        self._data = (list(rows), best_epoch, planned, dataset)
        self._view, self._pretrain = view or View(show_refs=show_refs), pretrain
        if self.is_mounted:
            self._plan()

    def _plan(self) -> None:
        self.draw(run_chart(self.chart, *self._data, view=self._view, pretrain=self._pretrain))


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

    view: reactive[View] = reactive(View, init=False)  # benchmark lines (b), log y (y), smoothing (+ -)

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.selected = "auc"
        self._data: tuple[list[EpochRow], int | None, int, str] = ([], None, 0, "")
        self.pretrain: Pretrain | None = None  # a fine-tune's pretrain, drawn before it
        self._pending = False
        self._next_draw = 0.0
        self._timer: Any = None

    @property
    def show_refs(self) -> bool:
        return self.view.show_refs

    @show_refs.setter
    def show_refs(self, shown: bool) -> None:
        self.view = replace(self.view, show_refs=shown)

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

    def cycle(self, step: int = 1) -> str:
        """The next (step 1) or previous (-1) chart; on a wide terminal the next or previous page."""
        names = list(CHARTS)
        i = names.index(self.selected)
        if not self.narrow:
            i, step = i - i % PAGE, step * PAGE
        self.select(names[(i + step) % len(names)])
        return self.selected

    def watch_view(self) -> None:
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
            widget.set_data(*self._data, view=self.view, pretrain=self.pretrain)
        cost = sum(w.render_s for w in widgets if w.display)
        self._next_draw = time.monotonic() + cost / RENDER_SHARE
