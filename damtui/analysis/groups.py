"""Seed groups: runs whose configs differ only by seed, as one typed record with mean ± std.

MedMNIST test sets are small (BreastMNIST: 156 images), so one run's 0.01 is noise; what a result
is worth is its spread over seeds. The identity is THE rule of config.py,
`hyperparameters(config, ["seed"])` (provenance and runtime keys out), the one sweeps and packing
use; a fine-tune is additionally identified by its source pretrain's group, so two fine-tunes
with the same settings from differently trained pretrains never mix.

A group counts seeds, not runs: a second run of a seed (the app's, another sweep's) is a repeat,
shown but not averaged; the statistics take the newest finished run of each seed. Runs that never
finished an epoch do not join. Each group is labelled by what differs from the other groups of its
dataset and stage (`lr=0.003 width=8`). Pure: no files, no UI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from damtui.config import hyperparameters
from damtui.records import SELECTED_METRICS, MeanStd, Selected
from damtui.store.runs import DAMAGED, FINISHED, RunInfo

UNKNOWN_SOURCE = "?"  # a fine-tune whose pretrain is not in the list: grouped by its own config


@dataclass(frozen=True)
class SeedGroup:
    """Runs of one configuration over seeds (members sorted by seed, then start), and for a
    fine-tune the pretrain each member started from (`sources[i]` belongs to `members[i]`; None
    when unknown)."""

    key: str  # stable short id of the identity (same runs -> same key across listings)
    dataset: str
    stage: str
    preset: str
    members: tuple[RunInfo, ...]
    sources: tuple[RunInfo | None, ...] = ()
    source_key: str | None = None  # the pretrain group's key (fine-tunes), UNKNOWN_SOURCE if not listed
    stats: dict[str, MeanStd] = field(default_factory=dict)  # SELECTED_METRICS over `finished`
    detail: str = ""  # what tells it from the other groups of its dataset and stage (`lr=0.003 width=8`)

    @property
    def seeds(self) -> list[int]:
        """The distinct seeds (a repeat of a seed counts once)."""
        return sorted({m.seed for m in self.members})

    @property
    def run_ids(self) -> list[str]:
        return [m.run_id for m in self.members]

    @property
    def finished(self) -> list[RunInfo]:
        """One run per seed, the newest that ended normally with a result: the only ones the
        statistics count."""
        return [r for r in (_newest(m for m in self.members if m.seed == seed and _done(m)) for seed in self.seeds)
                if r is not None]

    @property
    def chosen(self) -> list[RunInfo]:
        """One run per seed: the newest finished one, else (a seed still training) its newest run."""
        out = []
        for seed in self.seeds:
            runs_of_seed = [m for m in self.members if m.seed == seed]
            out.append(_newest(m for m in runs_of_seed if _done(m)) or _newest(runs_of_seed))
        return out

    @property
    def repeats(self) -> list[RunInfo]:
        """Members that are not their seed's chosen run: shown, not averaged."""
        chosen = {m.run_id for m in self.chosen}
        return [m for m in self.members if m.run_id not in chosen]

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.stage} {self.detail or self.preset}".strip()

    def stat(self, metric: str) -> MeanStd:
        return self.stats.get(metric, MeanStd(None, None, 0))

    def pairs(self) -> list[tuple[RunInfo | None, RunInfo]]:
        """(pretrain, fine-tune) per member of a two-stage group; (None, run) for a pretrain."""
        sources = self.sources or tuple(None for _ in self.members)
        return list(zip(sources, self.members))


def _done(info: RunInfo) -> bool:
    return info.status == FINISHED and info.result is not None


def _newest(infos: Iterable[RunInfo]) -> RunInfo | None:
    return max(infos, key=lambda m: (m.started, m.run_id), default=None)


def identity(info: RunInfo) -> str:
    """The run's configuration without its seed, as canonical text (the identity rule)."""
    return json.dumps(hyperparameters(info.config, ["seed"]), sort_keys=True, default=str)


def source_id(info: RunInfo) -> str | None:
    """The run id a fine-tune started from (its runtime's `from_run` is a path)."""
    return Path(info.from_run).name if info.from_run else None


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:10]


def group_key(info: RunInfo, by_id: dict[str, RunInfo], _seen: frozenset[str] = frozenset()) -> str:
    """A run's group key: its identity, and for a fine-tune its source pretrain's group key."""
    text = identity(info)
    if info.stage == "finetune":
        src = by_id.get(source_id(info) or "")
        if src is None or src.run_id in _seen:
            text += "|from:" + UNKNOWN_SOURCE
        else:
            text += "|from:" + group_key(src, by_id, _seen | {info.run_id})
    return _digest(text)


def _summary(finished: Sequence[RunInfo]) -> dict[str, MeanStd]:
    return {k: MeanStd.of(_value(m.result, k) for m in finished) for k in SELECTED_METRICS}


def _value(selected: Selected | None, metric: str) -> float | None:
    return selected.value(metric) if selected is not None else None


def group_runs(infos: Iterable[RunInfo], min_size: int = 1) -> list[SeedGroup]:
    """Seed groups of `infos` (damaged runs, runs without a config and runs that never finished an
    epoch left out), in the order of each group's first run in `infos`; only groups with at least
    `min_size` members. Labels name what differs between the groups of a dataset and stage."""
    listed = [i for i in infos if i.status != DAMAGED and i.config and i.epochs_done > 0]
    by_id = {i.run_id: i for i in listed}
    buckets: dict[str, list[RunInfo]] = {}
    for info in listed:
        buckets.setdefault(group_key(info, by_id), []).append(info)
    out = []
    for key, members in buckets.items():
        members = sorted(members, key=lambda m: (m.seed, m.started, m.run_id))
        first = members[0]
        sources: tuple[RunInfo | None, ...] = ()
        source_key = None
        if first.stage == "finetune":
            sources = tuple(by_id.get(source_id(m) or "") for m in members)
            known = [s for s in sources if s is not None]
            source_key = group_key(known[0], by_id) if known else UNKNOWN_SOURCE
        group = SeedGroup(key, first.dataset, first.stage, first.preset, tuple(members), sources, source_key)
        out.append(replace(group, stats=_summary(group.finished)))
    out = _labelled(out)
    return [g for g in out if len(g.members) >= min_size]


def _labelled(groups: list[SeedGroup]) -> list[SeedGroup]:
    """Each group with its `detail`: the config keys whose values differ between the groups of its
    dataset and stage, with its own values; a fine-tune group also names its pretrain's group
    where only that differs. Pretrains first, so fine-tunes can name theirs."""
    done: dict[str, SeedGroup] = {}
    for stage in ("pretrain", "finetune"):
        mine = [g for g in groups if g.stage == stage]
        for g in mine:
            peers = [p for p in mine if p.dataset == g.dataset]
            text = describe(g.members[0].config, [p.members[0].config for p in peers])
            if g.source_key and len({p.source_key for p in peers}) > 1:
                src = done.get(g.source_key)
                text = f"{text} from ({(src.detail or src.preset) if src else UNKNOWN_SOURCE})".strip()
            done[g.key] = replace(g, detail=text)
    return [done.get(g.key, g) for g in groups]


def describe(config: dict, peers: Sequence[dict]) -> str:
    """`k=v` for each compared key whose value differs among `peers` (config order; '' when none)."""
    mine = hyperparameters(config, ["seed"])
    others = [hyperparameters(p, ["seed"]) for p in peers]
    keys = [k for k in mine if any(o.get(k) != mine[k] for o in others)]
    keys += [k for o in others for k in o if k not in mine and k not in keys]
    return " ".join(f"{k}={value_text(mine.get(k))}" for k in keys)


def value_text(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(value_text(v) for v in value) + "]"
    return str(value)


def group_of(groups: Sequence[SeedGroup], run_id: str) -> SeedGroup | None:
    return next((g for g in groups if run_id in g.run_ids), None)


def pretrain_group(groups: Sequence[SeedGroup], group: SeedGroup) -> SeedGroup | None:
    """The pretrain group a fine-tune group was trained from (two-stage pairing)."""
    return next((g for g in groups if g.key == group.source_key), None) if group.source_key else None
