"""Side-by-side comparison of saved runs: pure functions shared by the TUI and the CLI.

Input is a list of `runs.RunRecord` (what `runs.load_run` returns). Nothing here reads or writes
files or imports textual; exports return text that the caller writes with `runs.write_text_file`.

Summary metrics follow the honest protocol of `records.RunSummary`: the best epoch is chosen on
validation AUC and the test numbers are read at that epoch; a fine-tune reports its two-stage
answer (the best validation epoch of both stages). Labels and formats come from `records.METRICS`.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from damtui.store import results as run_results
from damtui.config import PROVENANCE_KEYS, RUNTIME_KEYS
from damtui.analysis.groups import group_runs, source_id
from damtui.records import CURVE_METRICS, METRICS, SELECTED_METRICS, Interval, MeanStd, format_difference, \
    format_with_interval
from damtui.store.runs import RunRecord, short_id  # noqa: F401  (front ends import it from here)

# Config keys that say where values came from or how a run executes: never listed as a difference.
NON_TRAINING_KEYS = tuple(sorted(PROVENANCE_KEYS | RUNTIME_KEYS))

# The result columns: where the result was selected, then the selected metrics read there.
SCORE_COLUMNS = SELECTED_METRICS
SUMMARY_COLUMNS = ("selected_stage", "selected_epoch", *SCORE_COLUMNS)
# 95% interval bounds of the test metrics (exports' own columns; tables show them in the cell)
INTERVAL_KEYS = ("test_auc", "test_acc", "test_acc_thr")
INTERVAL_COLUMNS = tuple(f"{k}_{end}" for k in INTERVAL_KEYS for end in ("lo", "hi"))
IDENTITY_COLUMNS = (
    "run",
    "dataset",
    "stage",
    "preset",
    "status",
    "epochs_done",
    "epochs_planned",
    "duration_s",
)
# What the user wrote about the runs (notes.json): columns only when some run has them.
NOTE_COLUMNS = ("name", "tags", "notes")
__all__ = ["CURVE_METRICS"]  # re-exported: the compare screen picks curves from it


def _is_num(v: Any) -> bool:
    return (
        isinstance(v, (int, float))
        and not isinstance(v, bool)
        and not (isinstance(v, float) and math.isnan(v))
    )


def run_label(record: RunRecord) -> str:
    """Short, unique-enough name for legends: the run's short id and its preset."""
    return f"{short_id(record.info.run_id)} {record.info.preset}".strip()


def differing_keys(records: Sequence[RunRecord]) -> list[str]:
    """Config keys whose values are not the same in every record (in config order)."""
    keys: list[str] = []
    for rec in records:
        for k in rec.config:
            if k not in keys and k not in NON_TRAINING_KEYS:
                keys.append(k)
    missing = object()
    out = []
    for k in keys:
        values = [rec.config.get(k, missing) for rec in records]
        if any(v != values[0] for v in values[1:]):
            out.append(k)
    return out


def summary(record: RunRecord) -> dict[str, Any]:
    """The result columns of one run: the two-stage answer of a fine-tune, else its best epoch
    (None where no epoch has finished)."""
    r = run_results.result(record)
    out = {"selected_stage": r.stage if r else None, "selected_epoch": r.epoch if r else None,
           **{k: r.value(k) if r else None for k in SCORE_COLUMNS}}
    for k in INTERVAL_KEYS:
        iv = r.intervals.get(k) if r else None
        out[f"{k}_lo"], out[f"{k}_hi"] = (iv.lo, iv.hi) if iv else (None, None)
    return out


def cell(row: dict[str, Any], column: str) -> str:
    """A table cell: a test metric with its 95% interval when the run recorded one."""
    if column in INTERVAL_KEYS and _is_num(row.get(f"{column}_lo")):
        return format_with_interval(column, row.get(column), Interval(row[f"{column}_lo"], row[f"{column}_hi"]))
    return fmt(row.get(column), column)


INTERVAL_NOTE = "brackets: 95% interval, stratified bootstrap over test images"  # no [tag]: Static reads markup


def has_intervals(rows: Sequence[dict[str, Any]]) -> bool:
    return any(_is_num(r.get(c)) for r in rows for c in INTERVAL_COLUMNS)


def paired_differences(records: Sequence[RunRecord], baseline: int = 0) -> list[tuple[str, str, Any]]:
    """(run id, baseline id, paired test AUC difference run - baseline) for each other run on the
    same test images (DeLong, paired); the baseline is `records[baseline]`, the first unless
    chosen; runs without saved scores are left out."""
    if not records:
        return []
    base = records[min(max(baseline, 0), len(records) - 1)]
    out = []
    for rec in records:
        d = None if rec is base else run_results.paired(rec, base)
        if d is not None:
            out.append((rec.info.run_id, base.info.run_id, d))
    return out


def paired_lines(records: Sequence[RunRecord], baseline: int = 0) -> list[str]:
    """paired_differences as lines: 'test AUC b - a: +0.012 [-0.018, +0.041]: no clear difference'."""
    return [f"{METRICS['test_auc'].label} {short_id(rid)} - {short_id(base)}:"
            f" {format_difference(d.diff, d.lo, d.hi, d.resolved)}"
            for rid, base, d in paired_differences(records, baseline)]


def comparison_rows(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """One dict per run: identity, the differing config keys, then the summary metrics."""
    diff = [k for k in differing_keys(records) if k not in IDENTITY_COLUMNS and k not in NOTE_COLUMNS]
    notes = [c for c in NOTE_COLUMNS if any(_note(rec, c) for rec in records)]
    rows = []
    for rec in records:
        info = rec.info
        row: dict[str, Any] = {
            "run": info.run_id,
            "dataset": info.dataset,
            "stage": info.stage,
            "preset": info.preset,
            "status": info.status,
            "epochs_done": info.epochs_done,
            "epochs_planned": info.epochs_planned,
            "duration_s": round(info.duration_s, 1),
        }
        for c in notes:
            row[c] = _note(rec, c)
        for k in diff:
            row[k] = rec.config.get(k)
        row.update(summary(rec))
        rows.append(row)
    return rows


def _note(record: RunRecord, column: str) -> str:
    n = record.info.notes
    return {"name": n.name, "tags": " ".join(n.tags), "notes": n.text}[column]


def best_runs(rows: Sequence[dict[str, Any]]) -> dict[str, set[int]]:
    """For each score column, the indices of the rows holding its highest value (ties: all)."""
    out: dict[str, set[int]] = {}
    for col in SCORE_COLUMNS:
        values = [(i, r.get(col)) for i, r in enumerate(rows) if _is_num(r.get(col))]
        if not values:
            continue
        top = max(v for _, v in values)
        out[col] = {i for i, v in values if v == top}
    return out


def seed_groups(records: Sequence[RunRecord]) -> list[dict[str, Any]]:
    """Groups of runs of two or more seeds whose configs differ only by seed, with mean/std per metric.

    Membership is groups.group_runs (config.hyperparameters(c, ["seed"]), the rule packing and
    sweeps use; fine-tunes also by their pretrain's group where it is among `records`; runs without
    a finished epoch stay out). Each seed counts once: its newest finished run (else its newest
    run: a comparison shows what is there now); other runs of a seed are `repeats`, not averaged.
    Each group: key, label (what differs from the other groups), runs (the chosen ones), seeds,
    from (each chosen run's pretrain id or None), n, statuses, repeats, and metrics
    {column: MeanStd} over the chosen runs that have that metric.
    """
    by_id = {rec.info.run_id: rec for rec in records}
    infos = [rec.info if rec.info.config else replace(rec.info, config=rec.config) for rec in records]
    out = []
    for group in group_runs(infos, min_size=2):
        if len(group.seeds) < 2:
            continue  # one seed run twice is a repeat, not a seed sweep
        chosen = [by_id[m.run_id] for m in group.chosen]
        sums = [summary(rec) for rec in chosen]
        out.append(
            {
                "key": group.key,
                "label": group.label,
                "runs": [rec.info.run_id for rec in chosen],
                "seeds": [rec.info.seed for rec in chosen],
                "from": [source_id(rec.info) for rec in chosen],  # a fine-tune's pretrain run
                "statuses": [rec.info.status for rec in chosen],
                "repeats": [m.run_id for m in group.repeats],
                "n": len(chosen),
                "metrics": {col: MeanStd.of(s[col] for s in sums) for col in SCORE_COLUMNS},
            }
        )
    return out


def curve(record: RunRecord, metric: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one per-epoch metric, skipping epochs without a number."""
    xs, ys = [], []
    for row in record.metrics:
        v = row.value(metric)
        if _is_num(v):
            xs.append(row.epoch)
            ys.append(float(v))
    return xs, ys


# ----------------------------------------------------------------------------- formatting


def fmt(value: Any, column: str = "") -> str:
    """Human text for a table cell: scores with 4 decimals, None as '-'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if column == "duration_s":
            return format_duration(value)
        if column in METRICS:
            return METRICS[column].format(value)
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def column_label(column: str) -> str:
    """Human name of a comparison column."""
    if column in SCORE_COLUMNS:
        return f"{METRICS[column].label} @selected"
    if column == "selected_stage":
        return "selected in stage"
    if column == "selected_epoch":
        return "selected epoch"
    if column == "duration_s":
        return "duration"
    return column.replace("_", " ") if column in IDENTITY_COLUMNS else column


def to_csv(records: Sequence[RunRecord]) -> str:
    """One row per run, then one per seed group (`run` = "seed-group KEY", the runs' `seed_group`
    and `seed_group_label` columns name it, `repeat` marks a run its seed's newer run replaces;
    scores are means over one run per seed, `<score>_std` the sample std); raw full-precision values."""
    rows = comparison_rows(records)
    groups = seed_groups(records)
    of_run = {rid: g for g in groups for rid in [*g["runs"], *g["repeats"]]}
    for row in rows:
        g = of_run.get(row["run"])
        row["seed_group"], row["seed_group_label"] = (g["key"], g["label"]) if g else (None, None)
        row["repeat"] = g is not None and row["run"] in g["repeats"]
    for g in groups:
        row = {"run": f"seed-group {g['key']}", "seed_group": g["key"], "seed_group_label": g["label"], "n": g["n"],
               "seeds": g["seeds"], "repeats": g["repeats"]}
        for col in SCORE_COLUMNS:
            row[col], row[f"{col}_std"] = g["metrics"][col].mean, g["metrics"][col].std
        rows.append(row)
    buf = io.StringIO()
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return v


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(records: Sequence[RunRecord]) -> str:
    """Runs side by side (one column each), best scores in bold, then seed groups as mean ± std."""
    rows = comparison_rows(records)
    best = best_runs(rows)
    names = [run_label(rec) for rec in records]
    lines = ["# damtui run comparison", ""]
    lines.append("Test metrics are read at the epoch with the best validation AUC (for a fine-tune, the"
                 " best of both stages)." + (f" {INTERVAL_NOTE}." if has_intervals(rows) else ""))
    lines.append("")
    lines.append("| | " + " | ".join(_md_cell(n) for n in names) + " |")
    lines.append("|---|" + "---|" * len(names))
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    for col in (c for c in columns if c not in INTERVAL_COLUMNS):
        cells = []
        for i, row in enumerate(rows):
            text = _md_cell(cell(row, col))
            if i in best.get(col, set()) and len(rows) > 1:
                text = f"**{text}**"
            cells.append(text)
        lines.append(f"| {_md_cell(column_label(col))} | " + " | ".join(cells) + " |")
    paired = paired_lines(records)
    if paired:
        lines += ["", "## Paired differences on the same test images (DeLong, 95%)", ""]
        lines += [f"- {_md_cell(p)}" for p in paired]
    groups = seed_groups(records)
    if groups:
        lines += ["", "## Runs that differ only by seed (mean ± sample std)", ""]
        lines.append(
            "| group | n | seeds | " + " | ".join(column_label(c) for c in SCORE_COLUMNS) + " |"
        )
        lines.append("|---|---|---|" + "---|" * len(SCORE_COLUMNS))
        for g in groups:
            cells = [g["metrics"][c].format() for c in SCORE_COLUMNS]
            seeds = ", ".join(str(s) for s in g["seeds"])
            if any(g["from"]):
                seeds += " (from " + ", ".join(f"`{short_id(f)}`" if f else "?" for f in g["from"]) + ")"
            if g["repeats"]:
                seeds += f"; repeats not averaged: {', '.join(f'`{short_id(r)}`' for r in g['repeats'])}"
            lines.append(
                f"| {_md_cell(g['label'])} | {g['n']} | {seeds} | " + " | ".join(cells) + " |"
            )
        if any(g["repeats"] for g in groups):
            lines += ["", "Each seed counts once: its newest finished run; repeats of a seed are listed, not averaged."]
    lines.append("")
    lines.append("Runs: " + "; ".join(f"`{rec.info.run_id}`" for rec in records))
    lines.append("")
    return "\n".join(lines)
