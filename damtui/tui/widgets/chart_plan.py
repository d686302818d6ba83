"""What a per-epoch chart shows, as plain data: series, limits, reference lines and the legend.

Pure (no Textual, no plotext): `run_chart` plans one of a run's charts, `overlay_chart` one metric
of several runs (compare); `damtui.tui.widgets.charts.draw_plan` puts a plan on a plotext figure.
The legend is part of the plan's title line, never drawn inside the plot where it hid the curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from damtui.records import METRICS, EpochRow
from damtui.analysis.references import Reference, benchmark

SCORE, LOSS, FREE = "score", "loss", "free"  # y-axis kinds: [0, 1], [0, ...), anything
REF_COLOURS = ("magenta", "blue", "red")  # ResNet-18, ResNet-50, best cell
NOT_RECORDED = "not recorded in this run"


@dataclass(frozen=True)
class Series:
    key: str  # EpochRow key
    label: str  # legend words
    colour: str
    marker: str  # told apart by this without colour


@dataclass(frozen=True)
class ChartSpec:
    title: str
    series: tuple[Series, ...]
    axis: str = SCORE
    reference: str | None = None  # "auc" | "acc": the benchmark metric drawn as horizontal lines


def _trio(metric: str) -> tuple[Series, ...]:
    return (Series(f"train_{metric}", "train", "cyan", "+"), Series(f"val_{metric}", "val", "orange", "o"),
            Series(f"test_{metric}", "test", "green", "x"))


# chart id -> what it draws; the order is the cycling order, three to a wide page
CHARTS: dict[str, ChartSpec] = {
    "auc": ChartSpec("AUC", _trio("auc"), SCORE, "auc"),
    "acc": ChartSpec("ACC", _trio("acc"), SCORE, "acc"),
    "loss": ChartSpec("loss", (Series("train_loss", "train (stage loss)", "cyan", "+"),
                               Series("val_loss", "val CE of scores", "orange", "o")), LOSS),
    "lr": ChartSpec(METRICS["lr"].label, (Series("lr", "lr", "cyan", "+"),), LOSS),
    "health": ChartSpec("DAM health", (Series("train_saturated", "saturated", "red", "x"),
                                       Series("train_pos_share", "pos share", "cyan", "+"),
                                       Series("imratio", "imratio", "orange", "o")), SCORE),
    "aucm": ChartSpec("AUCM", (Series("aucm_a", "a", "cyan", "+"), Series("aucm_b", "b", "orange", "o"),
                               Series("aucm_alpha", "alpha", "green", "x")), FREE),
}
PAGE = 3  # charts side by side on a wide terminal


@dataclass(frozen=True)
class Line:
    xs: tuple[int, ...]
    ys: tuple[float, ...]
    colour: str
    marker: str


@dataclass(frozen=True)
class Plan:
    """One chart, ready to draw: `legend` and `note` make its title line, `refs` its footer."""

    title: str
    lines: tuple[Line, ...]
    legend: tuple[tuple[str, str, str], ...]  # (label, colour, marker) of the series drawn
    xlim: tuple[float, float]
    xticks: tuple[int, ...]
    ylim: tuple[float, float]
    vline: int | None = None  # the best-validation epoch
    refs: tuple[tuple[Reference, str], ...] = ()  # (reference, colour): horizontal lines
    note: str = ""


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def ticks(lo: int, hi: int, most: int = 6) -> tuple[int, ...]:
    step = max(1, math.ceil((hi - lo + 1) / most))
    return tuple(range(lo, hi + 1, step)) or (lo,)


def x_axis(epochs: Sequence[int]) -> tuple[tuple[float, float], tuple[int, ...]]:
    """Limits and ticks spanning the epochs that exist (one epoch sits in the middle)."""
    if not epochs:
        return (1.0, 2.0), (1, 2)
    lo, hi = min(epochs), max(epochs)
    if lo == hi:
        return (lo - 0.5, hi + 0.5), (lo,)
    return (float(lo), float(hi)), ticks(lo, hi)


def y_axis(values: Sequence[float], axis: str) -> tuple[float, float]:
    """Padded limits around the values; a score axis stays within [0, 1], a loss above 0."""
    if not values:
        return (0.0, 1.0)
    lo, hi = min(values), max(values)
    pad = max(0.02 if hi <= 1.5 else 0.0, (hi - lo) * 0.1, abs(hi) * 0.05 if lo == hi else 0.0)
    lo, hi = lo - pad, hi + pad
    if axis in (SCORE, LOSS):
        lo = max(0.0, lo)
    if axis == SCORE:
        hi = min(1.0, hi)
    if hi <= lo:  # everything at 1.0 (or at 0 on a loss axis)
        lo, hi = (hi - 0.05, hi) if axis == SCORE else (lo, lo + 0.05)
    return (lo, hi)


def axis_of(key: str) -> str:
    """The y-axis kind of a per-epoch key: its chart's, else a score for AUC/ACC keys."""
    for spec in CHARTS.values():
        if any(s.key == key for s in spec.series):
            return spec.axis
    return SCORE if key.endswith(("_auc", "_acc", "_acc_thr")) else FREE


def reference_metric(key: str) -> str | None:
    """The benchmark metric a curve of `key` is compared with: only test AUC and ACC."""
    return {"test_auc": "auc", "test_acc": "acc"}.get(key)


def references(dataset: str, metric: str | None) -> list[Reference]:
    """The benchmark rows a chart of `metric` ("auc" | "acc") of this dataset draws; none for
    synthetic sets or charts without a reference metric."""
    bench = benchmark(dataset) if metric else None
    return bench.lines(metric) if bench is not None and metric else []


def run_chart(chart: str, rows: Sequence[EpochRow], best: int | None = None, planned: int = 0,
              dataset: str = "", show_refs: bool = True) -> Plan:
    """One chart of one run: its series over the epochs that exist."""
    spec = CHARTS[chart]
    lines, legend, values = [], [], []
    for s in spec.series:
        pts = [(r.epoch, float(r.value(s.key))) for r in rows if _num(r.value(s.key))]
        if not pts:
            continue
        xs, ys = zip(*pts)
        values += ys
        lines.append(Line(xs, ys, s.colour, s.marker))
        legend.append((s.label, s.colour, s.marker))
    refs = tuple(zip(references(dataset, spec.reference), REF_COLOURS)) if show_refs else ()
    values += [r.value for r, _ in refs]
    note = ""
    best_row = next((r for r in rows if r.epoch == best), None)
    val = METRICS.get(f"val_{chart}")
    if not rows:
        note = f"waiting for the first of {planned} epochs" if planned else "waiting for the first epoch"
    elif not lines:
        note = NOT_RECORDED
    elif best_row is not None and val is not None and _num(best_row.value(val.key)):
        note = f"val {val.format(best_row.value(val.key))} at best epoch {best}"
    xlim, xt = x_axis([r.epoch for r in rows])
    return Plan(spec.title, tuple(lines), tuple(legend), xlim, xt, y_axis(values, spec.axis),
                best if best_row is not None else None, refs, note)


def overlay_chart(curves: Sequence[tuple[str, Sequence[int], Sequence[float]]], metric: str,
                  colours: Sequence[str], markers: Sequence[str], refs: Sequence[Reference] = ()) -> Plan:
    """One metric of several runs (label, epochs, values each), x to the longest run that exists."""
    lines, legend, values, epochs = [], [], [], []
    for i, (label, xs, ys) in enumerate(curves):
        colour, marker = colours[i % len(colours)], markers[i % len(markers)]
        legend.append((label, colour, marker))
        if xs:
            lines.append(Line(tuple(xs), tuple(ys), colour, marker))
            values += ys
            epochs += xs
    drawn = tuple(zip(refs, REF_COLOURS))
    values += [r.value for r, _ in drawn]
    xlim, xt = x_axis(epochs)
    return Plan(f"{METRICS[metric].label} per epoch", tuple(lines), tuple(legend), xlim, xt,
                y_axis(values, axis_of(metric)),
                refs=drawn, note="" if lines else NOT_RECORDED)
