"""What a sweep shows: the dry-run plan, one line per result, the totals, and the app's view.

`sweep_groups()` turns a runs list into per-sweep progress and per-configuration mean +- std over
seeds, for the TUI's sweeps screen.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from damtui.store import runs
from damtui.records import MeanStd
from damtui.sweeps.command import toml_literal
from damtui.sweeps.execute import SKIPPED, describe_action
from damtui.sweeps.plan import INTERRUPTED, RUNNING, Job
from damtui.sweeps.space import params_text


def format_plan(jobs: list[Job], root: Path | None = None, missing: Iterable[str] = ()) -> str:
    """The dry-run listing: one line per run (with what starting it now means, given `root`; a run
    whose dataset file is `missing` cannot start)."""
    missing = set(missing)
    headers = ["name", "dataset", "stage", "preset", "overrides", "depends-on"] + (["now"] if root is not None else [])
    rows = []
    for j in jobs:
        over = " ".join(f"{k}={toml_literal(v)}" for k, v in j.overrides.items()) or "-"
        row = [j.name, j.dataset, j.stage, j.preset, over, j.depends_on or "-"]
        if root is not None:
            row.append("no data" if j.dataset in missing else describe_action(j, root))
        rows.append(row)
    return "\n".join(plain_table(headers, rows))


def count_line(jobs: list[Job]) -> str:
    """The dry run's last line: how many runs of each stage."""
    n_pre = sum(j.stage == "pretrain" for j in jobs)
    return f"{len(jobs)} runs ({n_pre} pretrain, {len(jobs) - n_pre} finetune)"


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
    """The sweep's last line. Runs that were finished before it started are told apart from the
    ones it trained: a re-run that skips everything read `8 runs: 8 finished`."""
    already = sum(r["action"] == "skip" for r in results)
    counts: dict[str, int] = {}
    for r in results:
        if r["action"] != "skip":
            status = PRUNED_TAG if str(r.get("message", "")).startswith(PRUNED_BY) else r["status"]
            counts[status] = counts.get(status, 0) + 1
    if results and already == len(results):
        return f"sweep {sweep}: {len(results)} runs: all were finished already, nothing to train"
    words = {runs.FINISHED: "finished", SKIPPED: "not started (their pretrain did not finish)",
             PRUNED_TAG: "stopped or not started by the search's pruner"}
    parts = [f"{n} {words.get(s, s)}" for s, n in sorted(counts.items(), key=lambda kv: kv[0] != runs.FINISHED)]
    if already:
        parts.append(f"{already} finished already (skipped)")
    return f"sweep {sweep}: {len(results)} runs: {', '.join(parts) or 'nothing to do'}"


# ----------------------------------------------------------------------------- the TUI's view


_STATE_BUCKET = {runs.FINISHED: "done", runs.RUNNING: "running", runs.FAILED: "failed",
                 runs.CRASHED: "failed", runs.CANCELLED: "cancelled"}
PRUNED_TAG = "pruned"  # the tag a search puts on the runs it stopped (damtui.sweeps.search)
PRUNED_BY = "pruned by the search"  # how the stop request of a pruned trial's runs begins
METRIC_KEYS = ("val_auc", "val_acc", "test_auc", "test_acc", "test_acc_thr")  # validation first: it chose


def sweep_state(plan: dict[str, Any]) -> tuple[str | None, str]:
    """(state, message) of the sweep process that wrote `plan`: running, finished, failed or
    interrupted; a `running` sweep whose process on this host is gone was interrupted (killed).
    None for plans written before damtui recorded it."""
    state = plan.get("state")
    if not isinstance(state, dict):
        return None, ""
    status, message = str(state.get("status", "")), str(state.get("message", ""))
    if status == RUNNING and state.get("host") == socket.gethostname():
        pid = state.get("pid")
        alive = isinstance(pid, int) and runs.pid_alive(pid)
        started = state.get("pid_start")
        if not alive or (started and runs.process_start(pid) not in (None, started)):
            return INTERRUPTED, (f"the sweep process (pid {pid}) is no longer running (killed?);"
                                 " run the sweep again to resume")
    return status, message


def sweep_groups(infos: list[runs.RunInfo], plans: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Group runs by sweep: counts (done / running / failed / cancelled / pruned; waiting while the
    sweep runs, not started once it ended) and, per configuration, the mean and sample std over
    seeds of validation then test metrics (at each run's result: its best-validation epoch, a
    fine-tune's two-stage answer) of finished runs.

    `infos` come from runs.list_runs; `plans` from runs.load_sweep_plans(runs_dir) (optional). Crashed
    and failed runs count as failed; cancelled ones apart (a pruned trial's runs: pruned). Sorted by
    sweep name; configurations in plan order, else by key.
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
        plan = plans.get(name, {})
        plan_jobs = [j for j in plan.get("jobs", []) if isinstance(j, dict)]
        state, message = sweep_state(plan)
        live = state in (None, RUNNING)  # runs not started yet are waiting only while the sweep runs
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
                left = waiting_by_key.get(key, 0)
                entry["waiting"], entry["not_started"] = (left, 0) if live else (0, left)
            for metric in METRIC_KEYS:
                entry[metric] = MeanStd.of(i.result.value(metric) if i.result else None for i in finished)
            configs.append(entry)
        group_entry: dict[str, Any] = {"sweep": name, "runs": len(members), **_counts(members),
                                       "state": state, "message": message}
        if plan_jobs:
            left = sum(waiting_by_key.values())
            group_entry["planned"] = len(plan_jobs)
            group_entry["waiting"], group_entry["not_started"] = (left, 0) if live else (0, left)
        if isinstance(plan.get("search"), dict):
            trials = [t for t in plan.get("trials", []) if isinstance(t, dict)]
            group_entry["trials"] = (sum(t.get("state") in ("complete", "pruned", "failed") for t in trials),
                                     int(plan["search"].get("trials", 0)))
        group_entry["configs"] = configs
        out.append(group_entry)
    return out


def _counts(infos: list[runs.RunInfo]) -> dict[str, int]:
    counts = {"done": 0, "running": 0, "failed": 0, "cancelled": 0, "pruned": 0}
    for i in infos:
        if i.status == runs.CANCELLED and PRUNED_TAG in i.notes.tags:
            counts["pruned"] += 1
        else:
            counts[_STATE_BUCKET.get(i.status, "failed")] += 1
    return counts


# ----------------------------------------------------------------------------- a sweep's page: trials


WAITING, NOT_STARTED = "waiting", "not started"


@dataclass(frozen=True)
class Trial:
    """One configuration a sweep tried (a search trial, or a grid point of its last stage), scored
    on validation over its seeds; test metrics at the same epochs are shown after, never chosen on."""

    number: int
    dataset: str
    params: dict[str, Any]
    state: str  # complete | running | waiting | not started | pruned | failed | cancelled | interrupted
    runs: tuple[str, ...]  # the runs it is scored on (its last stage), one per seed
    value: float | None  # the sweep's metric, mean over finished seeds
    metrics: dict[str, MeanStd]
    ended: float = 0.0  # when its last run ended
    message: str = ""
    label: str = ""  # its values in words: a search's parameters, a grid point's preset and --set values


def sweep_metric(plan: dict[str, Any]) -> str:
    """What a sweep's trials are scored on: the search's metric, else validation AUC."""
    search = plan.get("search")
    return str(search.get("metric", "val_auc")) if isinstance(search, dict) else "val_auc"


def sweep_trials(infos: list[runs.RunInfo], plan: dict[str, Any], sweep: str) -> list[Trial]:
    """The trials of one sweep from its plan (search trials, else the last stage's configurations)
    and its runs' infos; runs of a sweep without a plan are grouped by their configuration key."""
    mine = {i.run_id: i for i in infos if getattr(i, "sweep", None) == sweep}
    metric = sweep_metric(plan)
    state, _ = sweep_state(plan)
    live = state in (None, RUNNING)
    if isinstance(plan.get("search"), dict):
        groups = [(int(t.get("number", n)), list(t.get("final", [])), dict(t.get("params", {})), t,
                   params_text(dict(t.get("params", {}))))
                  for n, t in enumerate(plan.get("trials", [])) if isinstance(t, dict)]
    else:
        jobs = [j for j in plan.get("jobs", []) if isinstance(j, dict)]
        last = "finetune" if any(j.get("stage") == "finetune" for j in jobs) else "pretrain"
        by_key: dict[str, list[dict[str, Any]]] = {}
        for j in jobs:
            if j.get("stage") == last:
                by_key.setdefault(str(j.get("config_key")), []).append(j)
        if not jobs:  # no plan: the last stage of the runs there are
            last = "finetune" if any(i.stage == "finetune" for i in mine.values()) else "pretrain"
            for i in sorted(mine.values(), key=lambda i: i.run_id):
                if i.stage == last:
                    by_key.setdefault(i.sweep_config or i.run_id, []).append(
                        {"name": i.run_id, "overrides": {}, "label": i.preset})
        groups = [(n, [str(j.get("name")) for j in js], dict(js[0].get("overrides") or {}), None,
                   str(js[0].get("label") or ""))
                  for n, js in enumerate(by_key.values())]
    out = []
    for number, names, params, record, label in groups:
        params = {k: v for k, v in params.items() if k not in ("seed",)}
        have = [mine[n] for n in names if n in mine]
        finished = [i for i in have if i.status == runs.FINISHED]
        metrics = {k: MeanStd.of(i.result.value(k) if i.result else None for i in finished) for k in METRIC_KEYS}
        dataset = have[0].dataset if have else str((plan.get("jobs") or [{}])[0].get("dataset", "?"))
        status = _trial_state(have, len(names), record, live)
        value = record.get("value") if record and record.get("value") is not None else metrics[metric].mean
        ended = max((i.updated for i in finished), default=0.0) if status == "complete" else 0.0
        out.append(Trial(number, dataset, params, status, tuple(names), value if status == "complete" else None,
                         metrics, ended, str(record.get("message", "")) if record else "", label or "-"))
    return out


def _trial_state(have: list[runs.RunInfo], planned: int, record: dict[str, Any] | None, live: bool) -> str:
    states = {i.status for i in have}
    if record is not None and record.get("state") in ("complete", "pruned", "failed"):
        return str(record["state"])
    if runs.RUNNING in states:
        return "running"
    if have and len(have) == planned and states == {runs.FINISHED}:
        return "complete"
    if states & {runs.FAILED, runs.CRASHED, runs.DAMAGED}:
        return "failed"
    if runs.CANCELLED in states:
        return "cancelled"
    if record is not None and record.get("state") == "interrupted":
        return "interrupted"
    return WAITING if live else NOT_STARTED


def best_so_far(trials: list[Trial]) -> list[tuple[Trial, float]]:
    """Completed trials by number (Optuna's optimization history), each with the best value up to it."""
    done = sorted((t for t in trials if t.state == "complete" and t.value is not None), key=lambda t: t.number)
    out, best = [], float("-inf")
    for t in done:
        best = max(best, t.value)  # type: ignore[arg-type]
        out.append((t, best))
    return out


def winners(trials: list[Trial]) -> list[Trial]:
    """The best completed trial of each dataset (a search has one dataset; a grid may have more)."""
    best: dict[str, Trial] = {}
    for t in trials:
        if t.state == "complete" and t.value is not None:
            if t.dataset not in best or t.value > (best[t.dataset].value or float("-inf")):
                best[t.dataset] = t
    return list(best.values())
