"""Per-epoch charts (AUC, ACC, loss) drawn with plotext; the best-validation epoch is marked.

Data in, pixels out: `MetricCharts.show(rows, best_epoch, planned)`; the widget never reads files.
Narrow terminals show one chart at a time (`select`), wide ones all three side by side.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual_plotext import PlotextPlot

from damtui.records import METRICS, EpochRow

WIDE = 120  # columns from which the three charts sit side by side
# Redraws may take at most this share of the app's thread: plotext renders in pure Python and
# holds the GIL, which the training thread needs to launch its kernels. At ~15 ms for three charts
# this is one redraw per ~0.75 s; epochs longer than that redraw every epoch.
RENDER_SHARE = 0.02

# chart id -> (title, [(row key, legend label, colour, marker without colour)])
CHARTS: dict[str, tuple[str, list[tuple[str, str, str, str]]]] = {
    "auc": (
        "AUC",
        [
            ("train_auc", "train", "cyan", "+"),
            ("val_auc", "val", "orange", "o"),
            ("test_auc", "test", "green", "x"),
        ],
    ),
    "acc": (
        "ACC",
        [
            ("train_acc", "train", "cyan", "+"),
            ("val_acc", "val", "orange", "o"),
            ("test_acc", "test", "green", "x"),
        ],
    ),
    "loss": (METRICS["train_loss"].label, [("train_loss", "train", "cyan", "+")]),
}


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _ticks(lo: int, hi: int, most: int = 6) -> list[int]:
    step = max(1, math.ceil((hi - lo + 1) / most))
    ticks = list(range(lo, hi + 1, step))
    return ticks or [lo]


class MetricChart(PlotextPlot):
    """One plotext chart of a few per-epoch series."""

    def __init__(self, chart: str, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.chart = chart
        self._data: tuple[list[EpochRow], int | None, int] = ([], None, 0)
        self.render_s = 0.0  # how long the last render took

    def on_mount(self) -> None:
        super().on_mount()
        self.draw()

    def render(self) -> Any:
        t0 = time.perf_counter()
        out = super().render()
        self.render_s = time.perf_counter() - t0
        return out

    def set_data(
        self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int
    ) -> None:
        self._data = (list(rows), best_epoch, planned)
        if self.is_mounted:
            self.draw()

    def draw(self) -> None:
        rows, best, planned = self._data
        title, series = CHARTS[self.chart]
        plt = self.plt
        plt.clear_data()  # also resets the axis limits: set them again below
        plt.clear_figure()
        mono = bool(getattr(self.app, "no_color", False))
        last = max([r.epoch for r in rows] or [0])
        hi_x = max(planned or 0, last, 2)
        values: list[float] = []
        if best is not None and any(r.epoch == best for r in rows):
            plt.vline(best, "gray")  # first, so the points are drawn over it
        for key, label, colour, char in series:
            pts = [(r.epoch, float(r.value(key))) for r in rows if _num(r.value(key))]
            if not pts:
                continue
            xs, ys = zip(*pts)
            values += ys
            if mono or len(xs) == 1:
                # without colour, series differ by their marker: draw the epochs only
                plt.scatter(xs, ys, label=label, color=colour, marker=char if mono else "o")
            else:
                plt.plot(xs, ys, label=label, color=colour, marker="braille")
        best_row = next((r for r in rows if r.epoch == best), None)
        if best is not None and best_row is not None:
            val = METRICS.get(f"val_{self.chart}")
            if val is not None and _num(best_row.value(val.key)):
                title = f"{title} · val {val.format(best_row.value(val.key))} at best epoch {best}"
        elif not rows:
            title = f"{title} (waiting for the first epoch)"
        plt.title(title)
        plt.xlim(1, hi_x)
        plt.xticks(_ticks(1, hi_x))
        if values:
            lo, hi = min(values), max(values)
            pad = max(0.02, (hi - lo) * 0.1)
            if self.chart == "loss":
                plt.ylim(max(0.0, lo - pad), hi + pad)
            else:
                plt.ylim(
                    max(0.0, lo - pad), min(1.0, hi + pad) if hi + pad > lo - pad else lo + pad
                )
        elif self.chart != "loss":
            plt.ylim(0.0, 1.0)
        self.refresh()


class MetricCharts(Horizontal):
    """The three charts; on narrow terminals only the selected one is visible."""

    DEFAULT_CSS = """
    MetricCharts { height: 1fr; min-height: 8; }
    MetricCharts MetricChart { width: 1fr; height: 1fr; }
    MetricCharts.-narrow MetricChart { display: none; }
    MetricCharts.-narrow MetricChart.-selected { display: block; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.selected = "auc"
        self._pending: tuple[list[EpochRow], int | None, int] | None = None
        self._next_draw = 0.0
        self._timer: Any = None

    def compose(self) -> ComposeResult:
        for chart in CHARTS:
            yield MetricChart(
                chart, id=f"chart-{chart}", classes="-selected" if chart == self.selected else ""
            )

    def on_resize(self) -> None:
        self.set_class(self.app.size.width < WIDE, "-narrow")

    def on_mount(self) -> None:
        self.set_class(self.app.size.width < WIDE, "-narrow")

    def select(self, chart: str) -> None:
        self.selected = chart
        for widget in self.query(MetricChart):
            widget.set_class(widget.chart == chart, "-selected")

    def cycle(self) -> str:
        names = list(CHARTS)
        self.select(names[(names.index(self.selected) + 1) % len(names)])
        return self.selected

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None, planned: int) -> None:
        """Show these rows now, or, while redraws would exceed RENDER_SHARE, as soon as they fit
        (only the newest data is drawn then)."""
        self._pending = (list(rows), best_epoch, planned)
        wait = self._next_draw - time.monotonic()
        if wait <= 0:
            self._draw_pending()
        elif self._timer is None:
            self._timer = self.set_timer(wait, self._draw_pending)

    @property
    def waiting(self) -> bool:
        """True while the newest rows wait for their redraw slot."""
        return self._pending is not None

    def _draw_pending(self) -> None:
        self._timer = None
        if self._pending is None:
            return
        data, self._pending = self._pending, None
        widgets = list(self.query(MetricChart))
        for widget in widgets:
            widget.set_data(*data)
        cost = sum(w.render_s for w in widgets if w.display)
        self._next_draw = time.monotonic() + cost / RENDER_SHARE
