"""Sweeps: many runs from one TOML file, each one a `damtui train` process.

A sweep file lists datasets, presets, seeds, a grid over `--set` keys and the stage chain
(pretrain -> finetune). `plan()` expands it into jobs with deterministic run names; every job's
config is validated by the preset schema before anything starts. `run_job()` is the one thing a
backend runs: it looks at the job's run folder (finished -> skip; crashed, cancelled or failed
with a checkpoint -> `--resume`; else a fresh run with `--name`) and starts
`python -m damtui.cli train ...`, the entry the CLI uses. Backends (local pool, Ray, Slurm via
submitit) only decide where and when a job runs; see damtui/sweep_backends.py.

`sweep_groups()` turns a runs list into per-sweep progress and per-configuration mean +- std over
seeds, for the TUI's runs screen. Nothing here imports torch, ray or submitit at module level.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from damtui import config as cfg
from damtui import runs
from damtui.errors import DamtuiError
from damtui.records import MeanStd
from damtui.threads import ENV as THREADS_ENV

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SWEEPS_DIR = ".sweeps"  # under the runs dir; dot-named, so `runs.list_runs` ignores it
PLAN = "plan.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
RESERVED = {"dataset": "datasets", "stage": "stages", "preset": "presets", "seed": "seeds"}
STAGES = ("pretrain", "finetune")
SKIPPED, ERROR = "skipped", "error"  # job outcomes beside the run states of damtui.runs


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
               " [pretrain] and [finetune] (docs/SWEEPS.md)")
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
    one GPU, damtui.packing). A finetune pack depends on the pack of its members' pretrains, so
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
    items = [f"{k}={_toml_literal(v)}" for k, v in overrides.items() if k != "seed"]
    return " ".join([preset, *items])


def plan(sweep: SweepFile, path: Path) -> list[Job]:
    """Expand a sweep into jobs: datasets x (presets x grid) x stage grid x seeds, pretrain first
    in each chain. Every config goes through the preset schema here, before anything starts."""
    from damtui import datasets

    assert sweep.name is not None
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
        _toml_literal(value, f"{path}: key '{key}'")  # refuse values `--set` could not carry
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


def _toml_literal(value: Any, where: str = "--set") -> str:
    """The `--set` text that reads back as `value` (config.parse_value parses TOML literals)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(_toml_literal(v, where) for v in value) + "]"
    else:
        raise DamtuiError(f"{where}: {type(value).__name__} values cannot be passed to --set")
    back = cfg.parse_value(text)
    same = (back == value or (isinstance(value, float) and math.isnan(value) and math.isnan(back)))
    if not same or type(back) is not type(value):
        raise DamtuiError(f"{where}: value {value!r} does not survive `--set`; write it differently")
    return text


def load_plan_file(path: Path) -> tuple[SweepFile, list[Job]]:
    sweep = load_sweep_file(path)
    return sweep, plan(sweep, path)


# ----------------------------------------------------------------------------- what a retry does


def sweep_dir(root: Path, sweep: str) -> Path:
    return Path(root) / SWEEPS_DIR / sweep


def write_plan(root: Path, sweep: SweepFile, jobs: list[Job], source: Path) -> Path:
    """Record the plan beside the runs so the TUI can count runs that have not started."""
    path = sweep_dir(root, sweep.name or "sweep") / PLAN
    path.parent.mkdir(parents=True, exist_ok=True)
    runs.atomic_write_json(path, {"sweep": sweep.name, "file": str(Path(source).resolve()),
                                  "written": time.time(), "jobs": [j.describe() for j in jobs]})
    return path


def load_plans(root: Path) -> dict[str, dict[str, Any]]:
    """Every recorded sweep plan under the runs dir, by sweep name; unreadable ones are skipped."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(root) / SWEEPS_DIR).glob(f"*/{PLAN}")):
        try:
            data = runs.read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("jobs"), list):
            out[str(data.get("sweep") or path.parent.name)] = data
    return out


def _same_config(saved: dict[str, Any], planned: dict[str, Any]) -> bool:
    """Equal apart from epochs (a finished run may have been extended with --resume --epochs)."""
    return cfg.hyperparameters(saved, ["epochs"]) == cfg.hyperparameters(planned, ["epochs"])


def decide(job: Job, root: Path) -> tuple[str, str]:
    """What starting `job` now means: ("new" | "resume" | "skip" | "error", why)."""
    path = Path(root) / job.name
    if not path.exists():
        return "new", ""
    if not runs.is_run_dir(path):
        if any(not p.name.startswith(".") for p in path.iterdir()):
            return ERROR, f"{path} exists and is not a damtui run; move it away"
        return "new", "empty folder taken over"
    try:
        rec = runs.load_run(path)
    except DamtuiError as err:
        return ERROR, str(err)
    if not _same_config(rec.config, job.config):
        return ERROR, f"run {job.name} exists with a different config; move it away or rename the sweep"
    info = rec.info
    if info.status == runs.FINISHED:
        return "skip", "finished"
    if info.status == runs.RUNNING:
        return ERROR, f"run {job.name} is running (pid {info.pid}); let it finish, then retry the sweep"
    if (path / runs.LAST).is_file():
        return "resume", f"{info.status} at epoch {info.epochs_done}"
    return "new", f"{info.status} before its first checkpoint; started again"


def describe_action(job: Job, root: Path) -> str:
    action, why = decide(job, root)
    return f"{action} ({why})" if why and action != "new" else action


# ----------------------------------------------------------------------------- running one job


@dataclass(frozen=True)
class JobContext:
    """Where jobs write and on what they run; the same on every machine of a cluster."""

    runs_dir: str
    data_root: str | None = None
    device: str = "auto"
    python: str = field(default_factory=lambda: sys.executable)
    threads: int | None = None  # $DAMTUI_THREADS of CPU jobs run side by side (their share of the cores)


_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.RLock()  # re-entrant: stop_children may run in a signal handler


def stop_children(sig: int = signal.SIGTERM, wait_s: float = 0.0) -> None:
    """Ask every training process this process started to stop (they finish the batch and mark
    their runs cancelled), and wait up to `wait_s` for them to exit. Safe in a signal handler."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except OSError:
                pass
    deadline = time.time() + wait_s
    while time.time() < deadline and any(p.poll() is None for p in children):
        time.sleep(0.1)


def train_argv(job: Job, ctx: JobContext, action: str, device: str) -> list[str]:
    root = Path(ctx.runs_dir)
    argv = [ctx.python, "-m", "damtui.cli", "train"]
    if action == "resume":
        argv += ["--resume", str(root / job.name)]
    else:
        argv += [job.dataset, "--stage", job.stage, "--preset", job.preset, "--seed", str(job.seed),
                 "--name", job.name, "--sweep", job.sweep, "--sweep-config", job.config_key]
        for key, value in job.overrides.items():
            argv += ["--set", f"{key}={_toml_literal(value)}"]
        if job.depends_on:
            argv += ["--from", str(root / job.depends_on)]
    argv += ["--runs-dir", str(root), "--device", device]
    if ctx.data_root:
        argv += ["--data-root", str(ctx.data_root)]
    return argv


def _result(job: Job, action: str, status: str, message: str = "", **extra: Any) -> dict[str, Any]:
    return {"name": job.name, "dataset": job.dataset, "stage": job.stage, "seed": job.seed,
            "action": action, "status": status, "message": message, "host": socket.gethostname(),
            "seconds": 0.0, "returncode": None, "cuda_visible_devices": None, "log": None, **extra}


def skipped(job: Job, why: str) -> dict[str, Any]:
    return _result(job, "none", SKIPPED, why)


def run_job(job: Job, ctx: JobContext, gpu: str | None = None,
            on_start: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run one job to its end in a `damtui train` subprocess; never raises for a failed run.

    `gpu` is the CUDA_VISIBLE_DEVICES value given to the job (None: leave the environment alone).
    With a GPU and device "auto" the job trains on cuda:0, the one GPU it sees. `on_start` gets
    a line when a training process starts (not for skipped jobs).
    """
    if job.members:
        return _run_pack(job, ctx, gpu, on_start)
    root = Path(ctx.runs_dir)
    dep = _dependency_status(job, root)
    if dep is not None and dep != runs.FINISHED:
        return skipped(job, f"pretrain {job.depends_on} is {dep}")
    action, why = decide(job, root)
    if action == ERROR:
        return _result(job, action, ERROR, why)
    if action == "skip":
        return _result(job, action, runs.FINISHED, "already finished")
    if why and action == "new" and (root / job.name).exists() and runs.is_run_dir(root / job.name):
        _discard(root, job)  # a run that died before its first checkpoint has nothing to resume
    done = _spawn(job, ctx, gpu, lambda device: train_argv(job, ctx, action, device),
                  f"{action}{f' ({why})' if why else ''}", "resume" if action == "resume" else "start", on_start)
    return _finished(job, action, root, done)


@dataclass(frozen=True)
class _Ended:
    """A training process that ended: exit code, log (and where this attempt starts in it)."""

    rc: int
    log: Path
    start: int
    env: dict[str, str]
    seconds: float


def _finished(job: Job, action: str, root: Path, done: _Ended) -> dict[str, Any]:
    """The result of a run whose process ended, read from its run folder."""
    try:
        status = runs.load_run(root / job.name).info.status
    except DamtuiError:
        status = ERROR
    return _result(job, action, status, _last_error(done.log, done.start) if status != runs.FINISHED else "",
                   seconds=done.seconds, returncode=done.rc, log=str(done.log),
                   cuda_visible_devices=done.env.get("CUDA_VISIBLE_DEVICES"))


def _spawn(job: Job, ctx: JobContext, gpu: str | None, argv_of: Callable[[str], list[str]], what: str,
           verb: str, on_start: Callable[[str], None] | None) -> _Ended:
    """Run one training process to its end, logging to <sweep>/logs/<job>.log; stops the process
    when this thread is interrupted."""
    root = Path(ctx.runs_dir)
    device = ctx.device
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        if device == "auto":
            device = "cuda:0"
    if ctx.threads:
        env[THREADS_ENV] = str(ctx.threads)
    argv = argv_of(device)
    log = sweep_dir(root, job.sweep) / "logs" / f"{job.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with open(log, "ab") as fh:
        start = fh.tell()
        header = (f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {what} on"
                  f" {socket.gethostname()} CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '-')}\n"
                  f"# {shlex.join(argv)}\n")
        fh.write(header.encode())
        fh.flush()
        if on_start is not None:
            on_start(f"{verb:<9} {job.name}" + (f" (CUDA_VISIBLE_DEVICES={gpu})" if gpu is not None else ""))
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with _CHILDREN_LOCK:
            _CHILDREN.add(proc)
        try:
            while True:  # short waits, so a signal handler can poll the child (stop_children)
                try:
                    rc = proc.wait(timeout=0.5)
                    break
                except subprocess.TimeoutExpired:
                    continue
        except BaseException:  # interrupted (Ray cancel, requeue): never leave the training running
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            raise
        finally:
            with _CHILDREN_LOCK:
                _CHILDREN.discard(proc)
    return _Ended(rc, log, start, env, time.time() - t0)


def _run_pack(job: Job, ctx: JobContext, gpu: str | None,
              on_start: Callable[[str], None] | None) -> dict[str, Any]:
    """A packed job: its members trained in one `damtui train --seeds` process when every one of
    them is new; otherwise (a retry after an interruption) each member is finished on its own,
    so a retried pack resumes its runs instead of duplicating them."""
    root = Path(ctx.runs_dir)
    results: list[dict[str, Any]] = []
    ready: list[Job] = []
    for member in job.members:
        dep = _dependency_status(member, root)
        if dep is not None and dep != runs.FINISHED:
            results.append(skipped(member, f"pretrain {member.depends_on} is {dep}"))
        else:
            ready.append(member)
    if len(ready) > 1 and all(not (root / m.name).exists() for m in ready):
        done = _spawn(job, ctx, gpu, lambda device: packed_argv(ready, ctx, device),
                      f"packed {len(ready)} runs", "start", on_start)
        results += [_finished(m, "new (packed)", root, done) for m in ready]
    else:
        results += [run_job(replace(m, members=()), ctx, gpu, on_start) for m in ready]
    results.sort(key=lambda r: [m.name for m in job.members].index(r["name"]))
    bad = [r["status"] for r in results if r["status"] != runs.FINISHED]
    return {**_result(job, "packed", bad[0] if bad else runs.FINISHED), "members": results,
            "seconds": max((r["seconds"] for r in results), default=0.0)}


def _dependency_status(job: Job, root: Path) -> str | None:
    if not job.depends_on:
        return None
    try:
        return runs.load_run(root / job.depends_on).info.status
    except DamtuiError:
        return "missing"


def packed_argv(members: list[Job], ctx: JobContext, device: str) -> list[str]:
    """`damtui train --seeds`: one process for runs that differ only by seed."""
    root, first = Path(ctx.runs_dir), members[0]
    argv = train_argv(first, ctx, "new", device)
    argv[argv.index("--seed"):argv.index("--seed") + 2] = ["--seeds", ",".join(str(m.seed) for m in members)]
    argv[argv.index("--name") + 1] = ",".join(m.name for m in members)
    if first.depends_on:
        argv[argv.index("--from") + 1] = ",".join(str(root / m.depends_on) for m in members if m.depends_on)
    return argv


def _discard(root: Path, job: Job) -> None:
    dest = sweep_dir(root, job.sweep) / "discarded" / f"{job.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(Path(root) / job.name, dest)


def _last_error(log: Path, start: int) -> str:
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            lines = fh.read().decode(errors="replace").splitlines()
    except OSError:
        return ""
    errors = [ln.removeprefix("damtui: error: ") for ln in lines if ln.startswith("damtui: error:")]
    if errors:
        return errors[-1]
    tail = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    return tail[-1][:200] if tail else "the process ended without output"


# ----------------------------------------------------------------------------- output


def format_plan(jobs: list[Job], root: Path | None = None) -> str:
    """The dry-run listing: one line per run, then the count."""
    headers = ["name", "dataset", "stage", "preset", "overrides", "depends-on"]
    rows = []
    for j in jobs:
        over = " ".join(f"{k}={_toml_literal(v)}" for k, v in j.overrides.items()) or "-"
        row = [j.name, j.dataset, j.stage, j.preset, over, j.depends_on or "-"]
        if root is not None:
            row.append(describe_action(j, root))
        rows.append(row)
    if root is not None:
        headers.append("now")
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    n_pre = sum(j.stage == "pretrain" for j in jobs)
    lines.append(f"{len(jobs)} runs ({n_pre} pretrain, {len(jobs) - n_pre} finetune)")
    return "\n".join(lines)


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

    `infos` come from runs.list_runs; `plans` from load_plans(runs_dir) (optional). Crashed and
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
