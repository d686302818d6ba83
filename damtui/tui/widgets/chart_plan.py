"""What a per-epoch chart shows, as plain data: series, limits, reference lines and the legend.

Pure (no Textual, no plotext): `run_chart` plans one of a run's charts, `overlay_chart` one metric
of several runs (compare); `damtui.tui.widgets.charts.draw_plan` puts a plan on a plotext figure.
The legend is part of the plan's title line, never drawn inside the plot where it hid the curves.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    short: str = ""  # legend words when the title line is short of room
    per_stage: bool = False  # means something else in the other stage: no pretrain part drawn


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
    "loss": ChartSpec("loss", (Series("train_loss", "train (stage loss)", "cyan", "+", "train", per_stage=True),
                               Series("val_loss", "val CE of scores", "orange", "o", "val CE")), LOSS),
    "lr": ChartSpec(METRICS["lr"].label, (Series("lr", "lr", "cyan", "+"),), LOSS),
    "health": ChartSpec("DAM health", (Series("train_saturated", "saturated", "red", "x", "sat"),
                                       Series("train_pos_share", "pos share", "cyan", "+", "pos"),
                                       Series("imratio", "imratio", "orange", "o", "imr")), SCORE),
    "aucm": ChartSpec("AUCM", (Series("aucm_a", "a", "cyan", "+"), Series("aucm_b", "b", "orange", "o"),
                               Series("aucm_alpha", "alpha", "green", "x")), FREE),
}
PAGE = 3  # charts side by side on a wide terminal


SMOOTHING = (0.0, 0.5, 0.75, 0.9)  # `+` / `-` step through these EMA weights (TensorBoard's slider)


@dataclass(frozen=True)
class View:
    """How the user asked to see a chart: benchmark lines (b), log y-axis (y), smoothing (+ -)."""

    show_refs: bool = True
    log_y: bool = False
    smoothing: float = 0.0

    def smoother(self, step: int) -> View:
        i = min(range(len(SMOOTHING)), key=lambda j: abs(SMOOTHING[j] - self.smoothing))
        return replace(self, smoothing=SMOOTHING[max(0, min(len(SMOOTHING) - 1, i + step))])


@dataclass(frozen=True)
class Line:
    xs: tuple[float, ...]
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
    vline: float | None = None  # the best-validation epoch (a fine-tune's answer, where it is)
    refs: tuple[tuple[Reference, str], ...] = ()  # (reference, colour): horizontal lines
    note: str = ""
    short_legend: tuple[str, ...] = ()  # the legend's labels when the title line is short of room
    short_note: str = ""  # the note when the title line is short of room
    xlabels: tuple[str, ...] = ()  # the x ticks' labels when they are not the numbers themselves
    yticks: tuple[tuple[float, str], ...] = ()  # (position, label) on a log axis
    ref_ys: tuple[float, ...] = ()  # where each reference is drawn (its value, or log10 of it)


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def ticks(lo: int, hi: int, most: int = 6) -> tuple[int, ...]:
    step = max(1, math.ceil((hi - lo + 1) / most))
    return tuple(range(lo, hi + 1, step)) or (lo,)


def x_axis(epochs: Sequence[float]) -> tuple[tuple[float, float], tuple[int, ...]]:
    """Limits and ticks spanning the epochs that exist (one epoch sits in the middle)."""
    if not epochs:
        return (1.0, 2.0), (1, 2)
    lo, hi = int(min(epochs)), int(max(epochs))
    if lo == hi:
        return (lo - 0.5, hi + 0.5), (lo,)
    return (float(lo), float(hi)), ticks(lo, hi)


def y_axis(values: Sequence[float], axis: str) -> tuple[float, float]:
    """Limits a tenth of the values' range beyond them (a flat line: 5% of its value); a score axis
    stays within [0, 1] and keeps at least 0.02 of room, a loss stays above 0. The pad is never a
    fixed amount on a loss, lr or AUCM axis: lr 0.001 must not sit flat on a 0-0.02 axis."""
    if not values:
        return (0.0, 1.0)
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.1, abs(hi) * 0.05 if lo == hi else 0.0, 0.02 if axis == SCORE else 0.0)
    if pad == 0.0:  # every value is 0
        pad = 0.05
    lo, hi = lo - pad, hi + pad
    if axis in (SCORE, LOSS):
        lo = max(0.0, lo)
    if axis == SCORE:
        hi = min(1.0, hi)
    if hi <= lo:  # everything at 1.0 (or at 0 on a loss axis)
        lo, hi = (hi - 0.05, hi) if axis == SCORE else (lo, lo + 0.05)
    return (lo, hi)


def log_ticks(lo: float, hi: float) -> tuple[tuple[float, str], ...]:
    """Ticks of a log10 axis from lo to hi (both log10 values): decades, with 2 and 5 between
    when fewer than three decades show."""
    first, last = math.floor(lo), math.ceil(hi)
    steps = (1,) if last - first >= 3 else (1, 2, 5)
    out = []
    for d in range(first, last + 1):
        for m in steps:
            pos = d + math.log10(m)
            if lo - 1e-9 <= pos <= hi + 1e-9:
                out.append((pos, f"{m * 10.0 ** d:.3g}"))
    return tuple(out)


def smooth(ys: Sequence[float], weight: float) -> tuple[float, ...]:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first points do
    not start at 0."""
    if weight <= 0:
        return tuple(ys)
    out, last = [], 0.0
    for n, y in enumerate(ys, start=1):
        last = last * weight + (1 - weight) * y
        out.append(last / (1 - weight ** n))
    return tuple(out)


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


def has_references(dataset: str) -> bool:
    """Whether `b` has any benchmark lines to show for this dataset."""
    return bool(references(dataset, "auc") or references(dataset, "acc"))


@dataclass(frozen=True)
class Pretrain:
    """A fine-tune's pretrain, drawn before it as one continuous curve: the source's rows up to
    the checkpoint the fine-tune started from, and the answer's stage and epoch."""

    rows: tuple[EpochRow, ...]
    answer: tuple[str, int] | None = None  # ("pretrain" | "finetune", epoch)

    @property
    def offset(self) -> int:
        return max((r.epoch for r in self.rows), default=0)

    def answer_of(self, rows: Sequence[EpochRow], best: int | None) -> tuple[str, int] | None:
        """The recorded answer, else the two-stage rule on what is there (records.two_stage_answer):
        the pretrain's checkpoint epoch unless the fine-tune's best beats it on val AUC."""
        if self.answer is not None:
            return self.answer
        source = self.rows[-1] if self.rows else None
        mine = next((r for r in rows if r.epoch == best), None)
        theirs = source.val_auc if source is not None else None
        if source is not None and _num(theirs) and (mine is None or not _num(mine.val_auc)
                                                    or theirs > mine.val_auc):
            return ("pretrain", source.epoch)
        return ("finetune", best) if mine is not None else None


def _y_scale(lines: list[Line], values: list[float], refs: Sequence[tuple[Reference, str]], axis: str,
             log_y: bool) -> tuple[list[Line], tuple[float, float], tuple[tuple[float, str], ...], tuple[float, ...], str]:
    """Lines, limits, log ticks, reference positions and a note for a linear or log10 y-axis. A
    chart with a value at or below 0 stays linear (the note says so)."""
    ref_values = [r.value for r, _ in refs]
    every = values + ref_values
    if not log_y or not every:
        return lines, y_axis(every, axis), (), tuple(ref_values), ""
    if min(every) <= 0:
        return lines, y_axis(every, axis), (), tuple(ref_values), "linear: values ≤ 0"
    logged = [Line(ln.xs, tuple(math.log10(y) for y in ln.ys), ln.colour, ln.marker) for ln in lines]
    lo, hi = math.log10(min(every)), math.log10(max(every))
    pad = max((hi - lo) * 0.1, 0.05)
    ylim = (lo - pad, hi + pad)
    return logged, ylim, log_ticks(*ylim), tuple(math.log10(v) for v in ref_values), "log"


def _view_note(view: View, scale_note: str) -> str:
    parts = [scale_note] if scale_note else []
    if view.smoothing:
        parts.append(f"smoothed {view.smoothing:g}")
    return ", ".join(parts)


def run_chart(chart: str, rows: Sequence[EpochRow], best: int | None = None, planned: int = 0,
              dataset: str = "", show_refs: bool = True, view: View | None = None,
              pretrain: Pretrain | None = None) -> Plan:
    """One chart of one run: its series over the epochs that exist. A fine-tune with its
    `pretrain` draws the pretrain's epochs first (x 1..P) and its own after them (P+1..), the
    answer's epoch marked where it is, in either stage."""
    view = view or View(show_refs=show_refs)
    spec = CHARTS[chart]
    offset = pretrain.offset if pretrain is not None else 0
    lines, legend, short, values = [], [], [], []
    for s in spec.series:
        pts = []
        if pretrain is not None and not s.per_stage:
            pts += [(float(r.epoch), float(r.value(s.key))) for r in pretrain.rows if _num(r.value(s.key))]
        pts += [(float(r.epoch + offset), float(r.value(s.key))) for r in rows if _num(r.value(s.key))]
        if not pts:
            continue
        xs, ys = zip(*pts)
        ys = smooth(ys, view.smoothing)
        values += ys
        lines.append(Line(xs, ys, s.colour, s.marker))
        legend.append((s.label, s.colour, s.marker))
        short.append(s.short or s.label)
    refs = tuple(zip(references(dataset, spec.reference), REF_COLOURS)) if view.show_refs else ()
    lines, ylim, yticks, ref_ys, scale = _y_scale(lines, values, refs, spec.axis, view.log_y)
    note, short_note = "", ""
    best_row = next((r for r in rows if r.epoch == best), None)
    val = METRICS.get(f"val_{chart}")
    vline: float | None = best + offset if best_row is not None and best is not None else None
    answer = pretrain.answer_of(rows, best) if pretrain is not None else None
    if answer is not None:
        stage, epoch = answer
        best_row = next((r for r in (pretrain.rows if stage == "pretrain" else rows) if r.epoch == epoch), None)
        vline = (epoch if stage == "pretrain" else epoch + offset) if best_row is not None else None
    if not rows and not (pretrain and pretrain.rows):
        note = f"waiting for the first of {planned} epoch{'' if planned == 1 else 's'}" if planned else "waiting for the first epoch"
    elif not lines:
        note = NOT_RECORDED
    elif best_row is not None and val is not None and _num(best_row.value(val.key)):
        value = val.format(best_row.value(val.key))
        if answer is not None:
            note, short_note = f"answer: val {value} at {answer[0]} epoch {best_row.epoch}", \
                f"val {value} @{'p' if answer[0] == 'pretrain' else 'f'}{best_row.epoch}"
        else:
            note, short_note = f"val {value} at best epoch {best}", f"val {value} @{best}"
    extra = _view_note(view, scale)
    if extra:
        note = f"{note} · {extra}" if note else extra
        short_note = f"{short_note} · {extra}" if short_note else extra
    epochs = [float(r.epoch + offset) for r in rows] + ([float(r.epoch) for r in pretrain.rows] if pretrain else [])
    xlim, xt = x_axis(epochs)
    xlabels: tuple[str, ...] = ()
    if offset:  # pretrain epochs as numbers, the fine-tune's as f1, f2, ...
        xlabels = tuple(str(x) if x <= offset else f"f{x - offset}" for x in xt)
    title = spec.title + (" · pretrain → fine-tune" if offset and rows else "")
    return Plan(title, tuple(lines), tuple(legend), xlim, xt, ylim, vline, refs, note, tuple(short),
                short_note or note, xlabels, yticks, ref_ys)


def overlay_chart(curves: Sequence[tuple[str, Sequence[int], Sequence[float]]], metric: str,
                  colours: Sequence[str], markers: Sequence[str], refs: Sequence[Reference] = (),
                  view: View | None = None) -> Plan:
    """One metric of several runs (label, epochs, values each), x to the longest run that exists."""
    view = view or View()
    lines, legend, values, epochs = [], [], [], []
    for i, (label, xs, ys) in enumerate(curves):
        colour, marker = colours[i % len(colours)], markers[i % len(markers)]
        legend.append((label, colour, marker))
        if xs:
            ys = smooth(ys, view.smoothing)
            lines.append(Line(tuple(float(x) for x in xs), tuple(ys), colour, marker))
            values += ys
            epochs += xs
    drawn = tuple(zip(refs, REF_COLOURS)) if view.show_refs else ()
    lines, ylim, yticks, ref_ys, scale = _y_scale(lines, values, drawn, axis_of(metric), view.log_y)
    xlim, xt = x_axis(epochs)
    note = "" if lines else NOT_RECORDED
    extra = _view_note(view, scale)
    note = f"{note} · {extra}" if note and extra else (note or extra)
    return Plan(f"{METRICS[metric].label} per epoch", tuple(lines), tuple(legend), xlim, xt, ylim,
                refs=drawn, note=note, short_legend=tuple(label for label, _, _ in legend), short_note=note,
                yticks=yticks, ref_ys=ref_ys)
