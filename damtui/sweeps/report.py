"""What a sweep shows: the dry-run plan, one line per result, the totals, and the app's view.

`sweep_groups()` turns a runs list into per-sweep progress and per-configuration mean +- std over
seeds, for the TUI's sweeps screen.
"""

from __future__ import annotations

import io

from pathlib import Path
from typing import Any

from damtui.store import runs
from damtui.records import MeanStd
from damtui.sweeps.command import toml_literal
from damtui.sweeps.execute import describe_action
from damtui.sweeps.plan import Job


def format_plan(jobs: list[Job], root: Path | None = None) -> str:
    """The dry-run listing: one line per run (with what starting it now means, given `root`), then
    the count."""
    headers = ["name", "dataset", "stage", "preset", "overrides", "depends-on"] + (["now"] if root is not None else [])
    rows = []
    for j in jobs:
        over = " ".join(f"{k}={toml_literal(v)}" for k, v in j.overrides.items()) or "-"
        row = [j.name, j.dataset, j.stage, j.preset, over, j.depends_on or "-"]
        if root is not None:
            row.append(describe_action(j, root))
        rows.append(row)
    n_pre = sum(j.stage == "pretrain" for j in jobs)
    count = f"{len(jobs)} runs ({n_pre} pretrain, {len(jobs) - n_pre} finetune)"
    return "\n".join([*plain_table(headers, rows), count])


def plain_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns aligned by rich, two spaces apart, as plain text lines (no markup, colour, wrapping
    or trailing spaces): what a pipe or a test reads."""
    from rich.console import Console
    from rich.table import Table

    table = Table(*headers, box=None, show_edge=False, pad_edge=False, padding=(0, 1), highlight=False)
    for row in rows:
        table.add_row(*row)
    out = io.StringIO()
    Console(file=out, width=1 << 16, color_system=None, markup=False, emoji=False, highlight=False,
            force_terminal=False, legacy_windows=False).print(table)
    return [line.rstrip() for line in out.getvalue().splitlines()]


def flat_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One result per run: a packed job's result carries its members' results."""
    return [m for r in results for m in r.get("members", [r])]


def result_line(r: dict[str, Any]) -> str:
    if "members" in r:
        return "\n".join(result_line(m) for m in r["members"])
    where = f" CUDA_VISIBLE_DEVICES={r['cuda_visible_devices']}" if r.get("cuda_visible_devices") else ""
    took = f" in {r['seconds']:.0f}s" if r.get("seconds") else ""
    msg = f": {r['message']}" if r.get("message") else ""
    return f"{r['status']:<9} {r['name']} ({r['action']}{took}{where}){msg}"


def totals_line(sweep: str, results: list[dict[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    parts = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: kv[0] != runs.FINISHED))
    return f"sweep {sweep}: {len(results)} runs: {parts or 'nothing to do'}"


# ----------------------------------------------------------------------------- the TUI's view


_STATE_BUCKET = {runs.FINISHED: "done", runs.RUNNING: "running", runs.FAILED: "failed",
                 runs.CRASHED: "failed", runs.CANCELLED: "failed"}


def sweep_groups(infos: list[runs.RunInfo], plans: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Group runs by sweep: counts (done / running / failed; waiting when the plan is known) and,
    per configuration, the mean and sample std over seeds of the honest test metrics (test AUC,
    ACC and ACC at the validation threshold, at the best-validation epoch) of finished runs.

    `infos` come from runs.list_runs; `plans` from runs.load_sweep_plans(runs_dir) (optional). Crashed and
    cancelled runs count as failed. Sorted by sweep name; configurations in plan order, else by key.
    """
    plans = plans or {}
    by_sweep: dict[str, list[runs.RunInfo]] = {}
    for info in infos:
        name = getattr(info, "sweep", None)
        if name:
            by_sweep.setdefault(name, []).append(info)
    out = []
    for name in sorted(set(by_sweep) | set(plans)):
        members = by_sweep.get(name, [])
        plan_jobs = [j for j in plans.get(name, {}).get("jobs", []) if isinstance(j, dict)]
        have = {i.run_id for i in members}
        order: list[str] = []
        labels: dict[str, dict[str, Any]] = {}
        waiting_by_key: dict[str, int] = {}
        for j in plan_jobs:
            key = str(j.get("config_key"))
            if key not in labels:
                order.append(key)
                labels[key] = j
            if j.get("name") not in have:
                waiting_by_key[key] = waiting_by_key.get(key, 0) + 1
        by_key: dict[str, list[runs.RunInfo]] = {}
        for info in members:
            key = getattr(info, "sweep_config", None) or f"{info.dataset}-?-{info.stage}"
            by_key.setdefault(key, []).append(info)
            if key not in labels:
                order.append(key)
        configs = []
        for key in sorted(order, key=lambda k: (k not in labels, order.index(k) if k in labels else 0, k)):
            group = by_key.get(key, [])
            finished = sorted((i for i in group if i.status == runs.FINISHED), key=lambda i: i.seed)
            meta = labels.get(key, {})
            first = group[0] if group else None
            entry: dict[str, Any] = {
                "config": key,
                "label": meta.get("label") or (first.preset if first else key),
                "dataset": meta.get("dataset") or (first.dataset if first else "?"),
                "stage": meta.get("stage") or (first.stage if first else "?"),
                "preset": meta.get("preset") or (first.preset if first else ""),
                "runs": sorted(i.run_id for i in group),
                "seeds": [i.seed for i in finished],
                "n": len(finished),
                **_counts(group),
            }
            if plan_jobs:
                entry["waiting"] = waiting_by_key.get(key, 0)
            for metric in ("test_auc", "test_acc", "test_acc_thr"):
                entry[metric] = MeanStd.of(i.result.value(metric) if i.result else None for i in finished)
            configs.append(entry)
        group_entry: dict[str, Any] = {"sweep": name, "runs": len(members), **_counts(members)}
        if plan_jobs:
            group_entry["planned"] = len(plan_jobs)
            group_entry["waiting"] = sum(waiting_by_key.values())
        group_entry["configs"] = configs
        out.append(group_entry)
    return out


def _counts(infos: list[runs.RunInfo]) -> dict[str, int]:
    counts = {"done": 0, "running": 0, "failed": 0}
    for i in infos:
        counts[_STATE_BUCKET.get(i.status, "failed")] += 1
    return counts
