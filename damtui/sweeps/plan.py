"""The sweep file and its plan: strict schema, jobs, packs and run names.

A sweep file lists datasets, presets, seeds, a grid over `--set` keys and the stage chain
(pretrain -> finetune). `plan()` expands it into jobs with deterministic run names
(<sweep>-<dataset>-<hash>-s<seed>-<stage>, the hash over the config but the seed); every job's
config is validated by the preset schema before anything starts. `pack()` groups the seeds of one
configuration into packed jobs. Nothing here imports torch, ray or submitit at module level.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from damtui import config as cfg
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.sweeps.command import toml_literal
from damtui.sweeps.space import STAGE_TABLES, SearchSection, SpaceError, split_params

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
RESERVED = {"dataset": "datasets", "stage": "stages", "preset": "presets", "seed": "seeds"}
STAGES = ("pretrain", "finetune")
MAX_RUNS = 10_000  # a bigger plan is refused unless forced: 10,000 runs take ~10 s just to plan


# ----------------------------------------------------------------------------- the file


class StageSection(BaseModel):
    """`[pretrain]` / `[finetune]`: settings for one stage only, on top of the top level."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    preset: str | None = Field(default=None, description="use this preset for the stage instead of `presets`")
    set: dict[str, Any] = Field(default_factory=dict, description="--set values for this stage")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="values to sweep for this stage")


class SweepFile(BaseModel):
    """The sweep file schema: strict like presets; an unknown key or wrong type names file and key."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str | None = Field(default=None, description="prefix of every run name (default: file stem)")
    description: str = ""
    datasets: list[str] = Field(min_length=1)
    stages: list[Literal["pretrain", "finetune"]] = Field(default_factory=lambda: ["pretrain", "finetune"])
    presets: list[str] | None = Field(default=None, min_length=1,
                                      description="short or full names; default: demo (synthetic) / report")
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    set: dict[str, Any] = Field(default_factory=dict, description="--set values for every stage")
    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="values to sweep, applied to both stages of a chain")
    pretrain: StageSection = Field(default_factory=StageSection)
    finetune: StageSection = Field(default_factory=StageSection)
    search: SearchSection | None = Field(default=None, description="sample the --set values (Optuna) instead of a grid")

    @field_validator("stages")
    @classmethod
    def _chain(cls, v: list[str]) -> list[str]:
        if v not in (["pretrain"], ["pretrain", "finetune"]):
            raise ValueError('give ["pretrain"] or ["pretrain", "finetune"] (a finetune needs its pretrain)')
        return v

    @field_validator("seeds")
    @classmethod
    def _distinct(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v):
            raise ValueError("seeds repeat a value")
        return v

    @field_validator("name")
    @classmethod
    def _plain(cls, v: str | None) -> str | None:
        if v is not None and not NAME_RE.match(v):
            raise ValueError("letters, digits, '_', '.', '-' (up to 40), not starting with '.' or '-'")
        return v


def _explain(err: ValidationError, where: str) -> DamtuiError:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc) or "(sweep)"
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        msg = ("unknown key; a sweep file has name, description, datasets, stages, presets, seeds, set, grid,"
               " [pretrain], [finetune] and [search] (docs/SWEEPS.md)")
    elif first["type"] == "missing":
        msg = "missing key"
    more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
    return DamtuiError(f"{where}: key '{key}': {msg}{more}")


def load_sweep_file(path: Path) -> SweepFile:
    """Read and validate a sweep file; every problem is a one-line DamtuiError naming file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamtuiError(f"{path}: no such sweep file") from None
    except IsADirectoryError:
        raise DamtuiError(f"{path}: is a folder, not a sweep file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DamtuiError(f"{path}: not valid TOML ({err})") from None
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as err:
        raise _explain(err, str(path)) from None
    if sweep.name is None:
        stem = path.stem
        if not NAME_RE.match(stem):
            raise DamtuiError(f"{path}: key 'name': the file name {stem!r} is not a plain run-name prefix; set name = \"...\"")
        sweep = sweep.model_copy(update={"name": stem})
    _check_keys(sweep, path)
    return sweep


def _check_keys(sweep: SweepFile, path: Path) -> None:
    fields = cfg.Config.model_fields
    tables = [("set", sweep.set), ("grid", sweep.grid)]
    for stage in STAGES:
        section: StageSection = getattr(sweep, stage)
        tables += [(f"{stage}.set", section.set), (f"{stage}.grid", section.grid)]
        if stage not in sweep.stages and section != StageSection():
            raise DamtuiError(f"{path}: key '{stage}': the sweep's stages do not include {stage}")
    for where, table in tables:
        for key, value in table.items():
            if key in RESERVED:
                raise DamtuiError(f"{path}: key '{where}.{key}': set it with the top-level key '{RESERVED[key]}'")
            if key not in fields:
                raise DamtuiError(f"{path}: key '{where}.{key}': unknown preset key;"
                                  " `damtui presets show NAME` lists the valid keys")
            if where.endswith("grid") and not value:
                raise DamtuiError(f"{path}: key '{where}.{key}': give at least one value")
    if sweep.search is not None:
        _check_search(sweep, sweep.search, path)


def _check_search(sweep: SweepFile, search: SearchSection, path: Path) -> None:
    """A search tunes one dataset and one preset, sampling what a grid would list."""
    if len(sweep.datasets) != 1:
        raise DamtuiError(f"{path}: key 'datasets': a search tunes one dataset; give one (a search per dataset)")
    if sweep.presets is not None and len(sweep.presets) != 1:
        raise DamtuiError(f"{path}: key 'presets': a search tunes one preset; give one")
    for where, grid in (("grid", sweep.grid), ("pretrain.grid", sweep.pretrain.grid),
                        ("finetune.grid", sweep.finetune.grid)):
        if grid:
            raise DamtuiError(f"{path}: key '{where}': a search samples [search.space]; write a list as"
                              " choices = [...] there instead of a grid")
    try:
        space = search.flat_space()
    except SpaceError as err:
        raise DamtuiError(f"{path}: key 'search.space.{err.key}': {err}") from None
    fields = cfg.Config.model_fields
    for name in space:
        stage, _, key = name.rpartition(".")
        where = f"{path}: key 'search.space.{name}'"
        if key in RESERVED:
            raise DamtuiError(f"{where}: set it with the top-level key '{RESERVED[key]}'")
        if key not in fields:
            raise DamtuiError(f"{where}: unknown preset key; `damtui presets show NAME` lists the valid keys")
        if stage and stage not in sweep.stages:
            raise DamtuiError(f"{where}: the sweep's stages do not include {stage}")
        fixed = [s for s in STAGE_TABLES if (not stage or s == stage) and key in getattr(sweep, s).set]
        if not stage and fixed:
            raise DamtuiError(f"{where}: {fixed[0]}.set fixes it for that stage; drop one of the two")


# ----------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Job:
    """One `damtui train` invocation; picklable, so Ray and submitit can ship it."""

    sweep: str
    name: str
    dataset: str
    stage: str
    preset: str
    overrides: dict[str, Any]  # --set values (seed and epochs included when given), file order
    seed: int
    config_key: str  # same for every seed of one configuration: <dataset>-<hash>-<stage>
    label: str
    depends_on: str | None
    config: dict[str, Any] = field(repr=False)  # the resolved config the run will save
    members: tuple["Job", ...] = ()  # a packed job: these runs (seeds) trained in one process

    def describe(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("name", "dataset", "stage", "preset", "overrides", "seed",
                                              "config_key", "label", "depends_on")}


def pack(jobs: list[Job], size: int) -> list[Job]:
    """Group runs that differ only by seed into packed jobs of up to `size` members (one process,
    one GPU, damtui.train.packing). A finetune pack depends on the pack of its members' pretrains, so
    each pack's members come from one pretrain pack. A lone seed stays an ordinary job."""
    if size < 2:
        return list(jobs)
    group_of: dict[str, str] = {}  # run name -> name of the job that trains it
    out: list[Job] = []
    for stage in STAGES:
        buckets: dict[tuple[str, str | None], list[Job]] = {}
        for job in (j for j in jobs if j.stage == stage):
            dep = group_of.get(job.depends_on) if job.depends_on else None
            buckets.setdefault((job.config_key, dep), []).append(job)
        for (_, dep), same in buckets.items():
            for i in range(0, len(same), size):
                chunk = same[i:i + size]
                if len(chunk) == 1:
                    out.append(chunk[0])
                    group_of[chunk[0].name] = chunk[0].name
                    continue
                seeds = "+".join(str(j.seed) for j in chunk)
                first = chunk[0]
                name = first.name.replace(f"-s{first.seed}-{stage}", f"-s{seeds}-{stage}")
                out.append(replace(first, name=name, depends_on=dep, members=tuple(chunk)))
                for j in chunk:
                    group_of[j.name] = name
    return out


def runs_of(jobs: list[Job]) -> list[Job]:
    """The runs a list of (possibly packed) jobs will write."""
    return [m for j in jobs for m in (j.members or (j,))]


def _grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    keys = list(grid)
    return [dict(zip(keys, values)) for values in itertools.product(*(grid[k] for k in keys))]


def _hash(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:8]


def _label(preset: str, overrides: dict[str, Any]) -> str:
    items = [f"{k}={toml_literal(v)}" for k, v in overrides.items() if k != "seed"]
    return " ".join([preset, *items])


def _size(grid: dict[str, list[Any]]) -> int:
    return math.prod(len(v) for v in grid.values())


def planned_runs(sweep: SweepFile) -> int:
    """How many runs the sweep expands to (at most: identical runs are planned once), counted
    from the lists alone, before any is made."""
    pre = _size(sweep.pretrain.grid) * len(sweep.seeds)
    chain = pre * (1 + (_size(sweep.finetune.grid) if "finetune" in sweep.stages else 0))
    presets = len(sweep.presets) if sweep.presets else 1
    return len(sweep.datasets) * presets * _size(sweep.grid) * chain


def plan(sweep: SweepFile, path: Path, force: bool = False) -> list[Job]:
    """Expand a sweep into jobs: datasets x (presets x grid) x stage grid x seeds, pretrain first
    in each chain. Every config goes through the preset schema here, before anything starts. A
    plan of more than MAX_RUNS runs is refused unless `force`d (a grid of 10^6 took minutes and
    gigabytes just to plan)."""
    from damtui.data import datasets

    assert sweep.name is not None
    total = planned_runs(sweep)
    if total > MAX_RUNS and not force:
        raise DamtuiError(f"{path}: the sweep makes {total:,} runs, more than {MAX_RUNS:,}; give the grid fewer"
                          " values, or add --force to plan them all")
    found: dict[tuple[str, str, str], cfg.Config] = {}

    def preset_for(name: str, dataset: str, stage: str, key: str) -> cfg.Config:
        if (name, dataset, stage) not in found:
            try:
                found[name, dataset, stage] = cfg.find_preset(name, dataset, stage)
            except DamtuiError as err:
                raise DamtuiError(f"{path}: key '{key}': {err}") from None
        return found[name, dataset, stage]

    jobs: dict[str, Job] = {}
    for i, raw in enumerate(sweep.datasets):
        try:
            dataset = datasets.spec(raw).flag
        except DamtuiError as err:
            raise DamtuiError(f"{path}: key 'datasets.{i}': {err}") from None
        presets = sweep.presets or [cfg.default_preset_name(dataset)]
        for preset, chain in itertools.product(presets, _grid_points(sweep.grid)):
            pre_jobs: list[Job] = []
            for point in _grid_points(sweep.pretrain.grid):
                over = {**sweep.set, **chain, **sweep.pretrain.set, **point}
                name = sweep.pretrain.preset or preset
                key = "pretrain.preset" if sweep.pretrain.preset else "presets"
                base = preset_for(name, dataset, "pretrain", key)
                for seed in sweep.seeds:
                    pre_jobs.append(_job(sweep.name, path, dataset, "pretrain", name, base, over, seed, None))
            for pre in pre_jobs:
                jobs.setdefault(pre.name, pre)
            if "finetune" not in sweep.stages:
                continue
            for pre in pre_jobs:
                for point in _grid_points(sweep.finetune.grid):
                    over = {**sweep.set, **chain, **sweep.finetune.set, **point}
                    name = sweep.finetune.preset or preset
                    key = "finetune.preset" if sweep.finetune.preset else "presets"
                    base = preset_for(name, dataset, "finetune", key)
                    job = _job(sweep.name, path, dataset, "finetune", name, base, over, pre.seed, pre)
                    jobs.setdefault(job.name, job)
    ordered = list(jobs.values())
    return [j for j in ordered if j.stage == "pretrain"] + [j for j in ordered if j.stage == "finetune"]


def _job(sweep: str, path: Path, dataset: str, stage: str, preset: str, base: cfg.Config,
         overrides: dict[str, Any], seed: int, pre: Job | None) -> Job:
    for key, value in overrides.items():
        toml_literal(value, f"{path}: key '{key}'")  # refuse values `--set` could not carry
    where = f"{path} ({dataset} {stage}, preset {preset})"
    config = cfg.apply_overrides(base, {**overrides, "seed": seed}, where).as_dict()
    # the name hashes the provenance too, as it always has: other names would make a sweep run
    # again after an upgrade retrain what it already has
    identity: dict[str, Any] = {**cfg.hyperparameters(config, ["seed"]),
                                **{k: config[k] for k in sorted(cfg.PROVENANCE_KEYS)}}
    if pre is not None:
        config["width"] = pre.config["width"]  # the engine takes the width of the pretrain run
        identity = {**identity, "width": config["width"], "from": pre.config_key}
    digest = _hash(identity)
    label = _label(preset, overrides)
    if pre is not None:
        label += f" (from {pre.label})"
    return Job(sweep, f"{sweep}-{dataset}-{digest}-s{seed}-{stage}", dataset, stage, preset, dict(overrides),
               seed, f"{dataset}-{digest}-{stage}", label, pre.name if pre else None, config)


def load_plan_file(path: Path, force: bool = False) -> tuple[SweepFile, list[Job]]:
    """The sweep and its runs; for a search, the runs of no trial yet (they are sampled as it goes),
    but every bound of its space was checked against the preset schema. A grid of more than
    MAX_RUNS runs is refused unless `force`d."""
    sweep = load_sweep_file(path)
    if sweep.search is None:
        return sweep, plan(sweep, path, force)
    space = sweep.search.flat_space()
    low = {k: d.corners()[0] for k, d in space.items()}
    for name, dist in space.items():
        for value in dist.corners():
            trial_jobs(sweep, path, {**low, name: value})
    return sweep, []


def trial_jobs(sweep: SweepFile, path: Path, params: dict[str, Any]) -> list[Job]:
    """The runs of one search trial: its values (`lr`, `finetune.margin`) applied last, as a
    one-point grid would be, over the sweep's seeds and stage chain."""
    both, pre, fine = split_params(params)
    point = sweep.model_copy(update={
        "grid": {k: [v] for k, v in both.items()},
        "pretrain": sweep.pretrain.model_copy(update={"grid": {k: [v] for k, v in pre.items()}}),
        "finetune": sweep.finetune.model_copy(update={"grid": {k: [v] for k, v in fine.items()}}),
    })
    return plan(point, path)


RUNNING, FINISHED, FAILED, INTERRUPTED = "running", "finished", "failed", "interrupted"  # a sweep's state


def write_plan(root: Path, sweep: SweepFile, jobs: list[Job], source: Path, **extra: Any) -> dict[str, Any]:
    """Record the plan beside the runs so the app can count runs that have not started, with the
    state of the sweep process (running here, until `end_plan`); returns the record."""
    import os
    import socket

    record = {"sweep": sweep.name, "file": str(Path(source).resolve()), "written": time.time(),
              "jobs": [j.describe() for j in jobs],
              "state": {"status": RUNNING, "pid": os.getpid(), "pid_start": runs.process_start(os.getpid()),
                        "host": socket.gethostname(), "started": time.time(), "message": ""},
              **extra}
    runs.write_sweep_plan(root, sweep.name or "sweep", record)
    return record


def end_plan(root: Path, record: dict[str, Any], status: str, message: str = "") -> None:
    """The sweep process is ending: finished (every run finished), failed (some did not, or the
    backend refused the jobs) or interrupted (Ctrl+C / SIGTERM; running it again resumes)."""
    record["state"] = {**record["state"], "status": status, "ended": time.time(), "message": message}
    runs.write_sweep_plan(root, str(record["sweep"]), record)
