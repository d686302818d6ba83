"""Typed records of a run and the one metrics spec every front end renders from.

`EpochRow` is one line of metrics.jsonl, `Selected` the numbers read at one validation-selected
epoch, `RunSummary` what summary.json holds. The JSON on disk keeps its old flat layout, so runs
written before these records existed read back unchanged. `METRICS` is the only place that says
what a metric is called, how it is printed and which direction is better. Pure: no torch, no UI.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field, fields
from typing import Any, Iterable, Sequence


@dataclass(frozen=True)
class Metric:
    key: str  # attribute of EpochRow / Selected, and the metrics.jsonl key
    label: str  # words for headings and legends
    short: str  # a narrow column head
    fmt: str  # format spec of the value
    better: bool | None  # True: higher is better, False: lower, None: not a score

    def format(self, value: Any) -> str:
        """Text of one value: '-' for missing or NaN."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(self.format(v) for v in value) + "]"
        return format(value, self.fmt)


_SCORE = ".4f"
METRICS: dict[str, Metric] = {m.key: m for m in (
    Metric("epoch", "epoch", "ep", "d", None),
    Metric("train_loss", "train loss", "loss", ".4f", False),
    Metric("train_auc", "train AUC", "trAUC", _SCORE, True),
    Metric("train_acc", "train ACC", "trACC", _SCORE, True),
    Metric("train_acc_thr", "train ACC (val thr)", "trACC@thr", _SCORE, True),
    Metric("val_auc", "val AUC", "vAUC", _SCORE, True),
    Metric("val_acc", "val ACC", "vACC", _SCORE, True),
    Metric("val_acc_thr", "val ACC (val thr)", "vACC@thr", _SCORE, True),
    Metric("test_auc", "test AUC", "tAUC", _SCORE, True),
    Metric("test_acc", "test ACC", "tACC", _SCORE, True),
    Metric("test_acc_thr", "test ACC (val thr)", "tACC@thr", _SCORE, True),
    Metric("threshold", "val threshold", "thr", ".3f", None),
    Metric("lr", "learning rate", "lr", ".2g", None),
    Metric("epoch_s", "seconds per epoch", "s", ".1f", False),
    Metric("train_s", "training seconds", "train s", ".1f", False),
    Metric("eval_s", "evaluation seconds", "eval s", ".1f", False),
    Metric("images_per_s", "images/s", "img/s", ",.0f", True),
    # training health (damtui.train.health): val_loss is the CE/BCE of the validation scores in both
    # stages (AUCM's own loss is no progress measure); a/b/alpha/imratio exist for fine-tunes only
    Metric("val_loss", "val loss (CE of scores)", "vCE", ".4f", False),
    Metric("train_saturated", "saturated train scores", "sat", ".3f", False),
    Metric("train_pos_share", "positive share of batches", "pos", ".3f", None),
    Metric("imratio", "imratio given to AUCM", "imr", ".3f", None),
    Metric("aucm_a", "AUCM a", "a", ".4f", None),
    Metric("aucm_b", "AUCM b", "b", ".4f", None),
    Metric("aucm_alpha", "AUCM alpha", "alpha", ".4f", None),
)}
# What selection is judged by (validation only), and what is read at the selected epoch.
SELECT_BY = "val_auc"
SELECTED_METRICS = ("val_auc", "val_acc", "test_auc", "test_acc", "test_acc_thr")
# Per-epoch values a curve can be drawn for.
CURVE_METRICS = ("val_auc", "test_auc", "train_auc", "val_acc", "test_acc", "train_acc", "val_acc_thr",
                 "test_acc_thr", "train_loss", "val_loss", "lr", "train_saturated", "aucm_alpha", "epoch_s",
                 "images_per_s")


def metric(key: str) -> Metric:
    return METRICS[key]


@dataclass(frozen=True)
class Interval:
    """A 95% interval of one test metric (damtui.analysis.uncertainty: stratified bootstrap)."""

    lo: float
    hi: float


INTERVAL_FMT = ".3f"  # with an interval beside it, a fourth digit would only be noise


def format_with_interval(key: str, value: Any, interval: Interval | None) -> str:
    """'0.901 [0.862, 0.938]'; the plain METRICS format when no interval was recorded."""
    if interval is None or value is None:
        return METRICS[key].format(value)
    return f"{value:{INTERVAL_FMT}} [{interval.lo:{INTERVAL_FMT}}, {interval.hi:{INTERVAL_FMT}}]"


def format_difference(diff: float, lo: float, hi: float, resolved: bool) -> str:
    """A paired difference of two runs in words a reader takes in: '+0.012 [-0.018, +0.041]: no
    clear difference' (the 95% interval holds 0), else 'clearly higher' or 'clearly lower'."""
    if math.isnan(diff):
        return "-"
    verdict = ("clearly higher" if diff > 0 else "clearly lower") if resolved else "no clear difference"
    return f"{diff:+{INTERVAL_FMT}} [{lo:+{INTERVAL_FMT}}, {hi:+{INTERVAL_FMT}}]: {verdict}"


def _intervals(data: Any) -> dict[str, Interval]:
    """summary.json's {"test_auc": [lo, hi], ...}; anything else reads as no intervals."""
    if not isinstance(data, dict):
        return {}
    out = {}
    for key, pair in data.items():
        if key in METRICS and isinstance(pair, list) and len(pair) == 2 and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in pair):
            out[key] = Interval(float(pair[0]), float(pair[1]))
    return out


def _number(value: Any, key: str) -> float | None:
    """A metric read from JSON: a number or None (NaN is stored as null or NaN)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"'{key}' is {value!r}, not a number")
    return float(value)


@dataclass(frozen=True)
class EpochRow:
    """One finished epoch, as written to metrics.jsonl."""

    epoch: int  # 1-based
    train_loss: float | None = None
    train_auc: float | None = None
    train_acc: float | None = None
    train_acc_thr: float | None = None
    val_auc: float | None = None
    val_acc: float | None = None
    val_acc_thr: float | None = None
    test_auc: float | None = None
    test_acc: float | None = None
    test_acc_thr: float | None = None
    threshold: tuple[float, ...] = ()
    lr: float | None = None
    epoch_s: float | None = None
    train_s: float | None = None
    eval_s: float | None = None
    images_per_s: float | None = None
    val_loss: float | None = None
    train_saturated: float | None = None
    train_pos_share: float | None = None
    imratio: float | None = None
    aucm_a: float | None = None
    aucm_b: float | None = None
    aucm_alpha: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)  # keys this version does not know

    def value(self, key: str) -> Any:
        """The value of a metric by its spec key (None when this row lacks it)."""
        return getattr(self, key, None) if key in _ROW_KEYS else self.extra.get(key)

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"
               and not (f.name in HEALTH_KEYS and getattr(self, f.name) is None)}
        out["threshold"] = list(self.threshold)
        return {**out, **self.extra}

    @classmethod
    def from_json(cls, data: Any) -> EpochRow:
        """Validate one metrics.jsonl object; ValueError says what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        if type(data.get("epoch")) is not int:
            raise ValueError("not an epoch row (no integer 'epoch')")
        values: dict[str, Any] = {"epoch": data["epoch"]}
        for key in _ROW_KEYS - {"epoch", "threshold"}:
            if key in data:
                values[key] = _number(data[key], key)
        thr = data.get("threshold", [])
        if not isinstance(thr, list):
            thr = [thr]
        values["threshold"] = tuple(_number(t, "threshold") or 0.0 for t in thr)
        values["extra"] = {k: v for k, v in data.items() if k not in _ROW_KEYS}
        return cls(**values)


_ROW_KEYS = frozenset(f.name for f in fields(EpochRow)) - {"extra"}
# Keys added after the first runs were written: left out of a row's JSON when not recorded, so
# an old metrics line writes back unchanged (and a pretrain row carries no AUCM nulls).
HEALTH_KEYS = frozenset(("val_loss", "train_saturated", "train_pos_share", "imratio", "aucm_a", "aucm_b",
                         "aucm_alpha"))


@dataclass(frozen=True)
class Selected:
    """The numbers at one epoch chosen on validation AUC (test is read there, never chosen on)."""

    stage: str
    epoch: int
    val_auc: float | None = None
    val_acc: float | None = None
    test_auc: float | None = None
    test_acc: float | None = None
    test_acc_thr: float | None = None
    intervals: dict[str, Interval] = field(default_factory=dict)  # 95% intervals by METRICS key

    def value(self, key: str) -> Any:
        return getattr(self, key, None)

    def text(self, key: str) -> str:
        """One metric as shown: with its interval when one was recorded."""
        return format_with_interval(key, self.value(key), self.intervals.get(key))

    def describe(self) -> str:
        """One line for a terminal: where it was selected and the test numbers read there."""
        m = METRICS
        return (f"{m['val_auc'].label} {m['val_auc'].format(self.val_auc)} at {self.stage} epoch {self.epoch}: "
                + ", ".join(f"{m[k].label} {self.text(k)}" for k in ("test_auc", "test_acc", "test_acc_thr")))

    @classmethod
    def of(cls, row: EpochRow, stage: str) -> Selected:
        return cls(stage, row.epoch, **{k: row.value(k) for k in SELECTED_METRICS})

    def to_json(self) -> dict[str, Any]:
        """summary.json's flat layout: best_epoch, best_val_auc, ..."""
        out = {"stage": self.stage, "best_epoch": self.epoch,
               **{f"best_{k}": getattr(self, k) for k in SELECTED_METRICS}}
        if self.intervals:
            out["intervals"] = {k: [v.lo, v.hi] for k, v in self.intervals.items()}
        return out

    @classmethod
    def from_json(cls, data: Any, stage: str = "") -> Selected | None:
        if not isinstance(data, dict) or type(data.get("best_epoch")) is not int:
            return None
        return cls(str(data.get("stage") or stage), data["best_epoch"],
                   **{k: _number(data.get(f"best_{k}"), f"best_{k}") for k in SELECTED_METRICS},
                   intervals=_intervals(data.get("intervals")))


def best_index(rows: Sequence[EpochRow], key: str = SELECT_BY) -> int | None:
    """Index of the row with the highest `key` (earliest on ties); None if no row has a number."""
    best, best_val = None, -math.inf
    for i, row in enumerate(rows):
        v = row.value(key)
        if v is None or math.isnan(v):
            continue
        if v > best_val:
            best, best_val = i, v
    return best


@dataclass(frozen=True)
class RunSummary:
    """summary.json: test metrics at the best-validation epoch, the optimistic figure labelled as
    such, and for a fine-tune the two-stage `answer` (the best validation epoch of both stages)."""

    run_id: str
    status: str
    dataset: str
    stage: str
    preset: str
    epochs_done: int
    best: Selected | None = None
    answer: Selected | None = None
    test_selected_auc_optimistic: float | None = None
    test_selected_epoch_optimistic: int | None = None
    message: str = ""

    @classmethod
    def of(cls, rows: Sequence[EpochRow], *, run_id: str, status: str, dataset: str, stage: str,
           preset: str, source: RunSummary | None = None, message: str = "") -> RunSummary:
        i, j = best_index(rows), best_index(rows, "test_auc")
        best = Selected.of(rows[i], stage) if i is not None else None
        return cls(run_id, status, dataset, stage, preset, len(rows), best, two_stage_answer(best, source),
                   rows[j].test_auc if j is not None else None, rows[j].epoch if j is not None else None,
                   message)

    @property
    def result(self) -> Selected | None:
        """What to report for this run: the two-stage answer, else the stage's own best."""
        return self.answer or self.best

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"run_id": self.run_id, "status": self.status, "dataset": self.dataset,
                               "stage": self.stage, "preset": self.preset, "epochs_done": self.epochs_done}
        if self.best is None:
            out["best_epoch"] = None
        else:
            out.update({k: v for k, v in self.best.to_json().items() if k != "stage"})
        if self.test_selected_epoch_optimistic is not None:
            out["test_selected_auc_optimistic"] = self.test_selected_auc_optimistic
            out["test_selected_epoch_optimistic"] = self.test_selected_epoch_optimistic
        out["answer"] = self.answer.to_json() if self.answer else {"stage": self.stage, "best_epoch": None}
        if self.message:
            out["message"] = self.message
        return out

    @classmethod
    def from_json(cls, data: Any) -> RunSummary:
        if not isinstance(data, dict):
            raise ValueError("summary is not a JSON object")
        stage = str(data.get("stage", ""))
        opt_epoch = data.get("test_selected_epoch_optimistic")
        return cls(str(data.get("run_id", "")), str(data.get("status", "")), str(data.get("dataset", "")),
                   stage, str(data.get("preset", "")), int(data.get("epochs_done") or 0),
                   Selected.from_json(data, stage), Selected.from_json(data.get("answer"), stage),
                   _number(data.get("test_selected_auc_optimistic"), "test_selected_auc_optimistic"),
                   opt_epoch if type(opt_epoch) is int else None, str(data.get("message", "")))


def two_stage_answer(best: Selected | None, source: RunSummary | None) -> Selected | None:
    """The pipeline's final answer: the best validation epoch across both stages (the pretrain's
    answer and this stage's best), test read at that epoch. Never below the pretrain in val AUC."""
    theirs = source.result if source is not None else None
    if theirs is None or theirs.val_auc is None:
        return best
    if best is None or best.val_auc is None or theirs.val_auc > best.val_auc:
        return theirs
    return best


# ----------------------------------------------------------------------------- seed statistics


@dataclass(frozen=True)
class MeanStd:
    """Mean and sample standard deviation (n - 1) over seeds; std is None below two values."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> MeanStd:
        nums = [float(v) for v in values if v is not None and not math.isnan(v)]
        if not nums:
            return cls(None, None, 0)
        return cls(statistics.fmean(nums), statistics.stdev(nums) if len(nums) > 1 else None, len(nums))

    def format(self, digits: int = 4) -> str:
        if self.mean is None:
            return "-"
        if self.std is None:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ± {self.std:.{digits}f}"
