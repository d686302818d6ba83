"""Seed-group rows of the runs list: one collapsible row (mean ± std) per group of runs that differ
only by seed, placed where its first member sorts, members below it when expanded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.text import Text

from damtui.store import runs
from damtui.analysis.groups import SeedGroup
from damtui.text import markup, shown
from damtui.tui.format import duration, short_preset, short_run_id, timestamp

GROUP_PREFIX = "group:"
Entry = tuple[str, list[Any]]  # (row key, cells)


def group_row_key(group: SeedGroup) -> str:
    return GROUP_PREFIX + group.key


def group_cells(group: SeedGroup, members: Sequence[runs.RunInfo], expanded: bool,
                result_keys: Sequence[str]) -> list[Any]:
    """The group row, cell for cell under the runs list's COLUMNS: ▸/▾, seed count (repeats of a
    seed counted apart), identity, finished count, its seeds, mean ± std of each result column (one
    run per seed), total time, and in the preset column what tells the group from its neighbours."""
    done = len(group.finished)
    seeds = sorted({m.seed for m in members})
    repeats = len(members) - len(seeds)
    return [
        Text("▾" if expanded else "▸", style="bold"),
        Text(f"{len(seeds)} seeds" + (f" +{repeats}" if repeats else ""), style="bold"),
        Text(shown(group.dataset)),
        Text(shown(group.stage)),
        f"{done} done",
        "",
        Text(",".join(str(s) for s in seeds), justify="right"),
        *(Text(group.stat(k).format(3), justify="right", style="bold") for k in result_keys),
        Text(duration(sum(m.duration_s for m in members)), justify="right"),
        timestamp(min(m.started for m in members)),
        Text(shown(group.detail or short_preset(group.preset, group.dataset, group.stage))),
        "",
    ]


def entries(shown: Sequence[runs.RunInfo], groups: Sequence[SeedGroup], expanded: set[str],
            run_cells: Callable[[runs.RunInfo], list[Any]], result_keys: Sequence[str]) -> list[Entry]:
    """Rows in `shown`'s order; a group of two or more shown runs folds into one group row."""
    of_run = {rid: g for g in groups for rid in g.run_ids}
    shown_ids = {r.run_id for r in shown}
    out: list[Entry] = []
    placed: set[str] = set()
    for info in shown:
        group = of_run.get(info.run_id)
        members = [r for r in shown if group is not None and r.run_id in group.run_ids]
        if group is None or len(members) < 2:
            out.append((info.run_id, run_cells(info)))
            continue
        if group.key in placed:
            continue
        placed.add(group.key)
        is_open = group.key in expanded
        out.append((group_row_key(group), group_cells(group, members, is_open, result_keys)))
        if is_open:
            out += [(m.run_id, run_cells(m)) for m in members if m.run_id in shown_ids]
    return out


def group_line(group: SeedGroup, pretrains: SeedGroup | None) -> str:
    """The info line under the table for a highlighted group row."""
    parts = [markup(f"seed group {group.detail or group.preset}: {', '.join(short_run_id(r) for r in group.run_ids)}")]
    if group.repeats:
        parts.append(f"{len(group.repeats)} repeat(s) of a seed not averaged")
    if group.stage == "finetune":
        parts.append(f"from a pretrain group of {len(pretrains.members)}" if pretrains else "pretrains not listed")
    parts.append("enter opens/closes · space selects its runs")
    return " · ".join(parts)
