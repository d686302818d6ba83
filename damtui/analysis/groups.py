"""Seed groups: runs whose configs differ only by seed, as one typed record with mean ± std.

MedMNIST test sets are small (BreastMNIST: 156 images), so one run's 0.01 is noise; what a result
is worth is its spread over seeds. The identity is THE rule of config.py,
`hyperparameters(config, ["seed"])` (provenance and runtime keys out), the one sweeps and packing
use; a fine-tune is additionally identified by its source pretrain's group, so two fine-tunes
with the same settings from differently trained pretrains never mix. Pure: no files, no UI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from damtui.config import hyperparameters
from damtui.records import SELECTED_METRICS, MeanStd, Selected
from damtui.store.runs import DAMAGED, FINISHED, RunInfo

UNKNOWN_SOURCE = "?"  # a fine-tune whose pretrain is not in the list: grouped by its own config


@dataclass(frozen=True)
class SeedGroup:
    """Runs of one configuration over seeds (members sorted by seed), and for a fine-tune the
    pretrain each member started from (`sources[i]` belongs to `members[i]`; None when unknown)."""

    key: str  # stable short id of the identity (same runs -> same key across listings)
    dataset: str
    stage: str
    preset: str
    members: tuple[RunInfo, ...]
    sources: tuple[RunInfo | None, ...] = ()
    source_key: str | None = None  # the pretrain group's key (fine-tunes), UNKNOWN_SOURCE if not listed
    stats: dict[str, MeanStd] = field(default_factory=dict)  # SELECTED_METRICS over `finished`

    @property
    def seeds(self) -> list[int]:
        return [m.seed for m in self.members]

    @property
    def run_ids(self) -> list[str]:
        return [m.run_id for m in self.members]

    @property
    def finished(self) -> list[RunInfo]:
        """Members that ended normally with a result: the only ones the statistics count."""
        return [m for m in self.members if m.status == FINISHED and m.result is not None]

    @property
    def label(self) -> str:
        return f"{self.dataset} {self.stage} {self.preset}".strip()

    def stat(self, metric: str) -> MeanStd:
        return self.stats.get(metric, MeanStd(None, None, 0))

    def pairs(self) -> list[tuple[RunInfo | None, RunInfo]]:
        """(pretrain, fine-tune) per member of a two-stage group; (None, run) for a pretrain."""
        sources = self.sources or tuple(None for _ in self.members)
        return list(zip(sources, self.members))


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


def _summary(members: Sequence[RunInfo]) -> dict[str, MeanStd]:
    done = [m for m in members if m.status == FINISHED and m.result is not None]
    return {k: MeanStd.of(_value(m.result, k) for m in done) for k in SELECTED_METRICS}


def _value(selected: Selected | None, metric: str) -> float | None:
    return selected.value(metric) if selected is not None else None


def group_runs(infos: Iterable[RunInfo], min_size: int = 1) -> list[SeedGroup]:
    """Seed groups of `infos` (damaged runs and runs without a config left out), in the order of
    each group's first run in `infos`; only groups with at least `min_size` members."""
    listed = [i for i in infos if i.status != DAMAGED and i.config]
    by_id = {i.run_id: i for i in listed}
    buckets: dict[str, list[RunInfo]] = {}
    for info in listed:
        buckets.setdefault(group_key(info, by_id), []).append(info)
    out = []
    for key, members in buckets.items():
        if len(members) < min_size:
            continue
        members = sorted(members, key=lambda m: (m.seed, m.run_id))
        first = members[0]
        sources: tuple[RunInfo | None, ...] = ()
        source_key = None
        if first.stage == "finetune":
            sources = tuple(by_id.get(source_id(m) or "") for m in members)
            known = [s for s in sources if s is not None]
            source_key = group_key(known[0], by_id) if known else UNKNOWN_SOURCE
        out.append(SeedGroup(key, first.dataset, first.stage, first.preset, tuple(members), sources,
                             source_key, _summary(members)))
    return out


def group_of(groups: Sequence[SeedGroup], run_id: str) -> SeedGroup | None:
    return next((g for g in groups if run_id in g.run_ids), None)


def pretrain_group(groups: Sequence[SeedGroup], group: SeedGroup) -> SeedGroup | None:
    """The pretrain group a fine-tune group was trained from (two-stage pairing)."""
    return next((g for g in groups if g.key == group.source_key), None) if group.source_key else None
