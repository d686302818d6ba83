"""Before a sweep starts anything: is every dataset's file there, and how long will it take?

`check_data` looks at each dataset of the plan once (missing files are one error for the whole
sweep, not a failure per run after a dry-run that said `new`). `estimate` prices each run from the
runs already in the runs dir: seconds per epoch of finished runs of the same configuration (all
but seed and epochs), else of the same dataset, stage, width and batch size. Nothing here imports
torch; the MD5 of a real file is read once per dataset.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from damtui import config as cfg
from damtui.analysis.compare import format_duration
from damtui.data import datasets
from damtui.store import runs
from damtui.sweeps.plan import Job

SIMILAR_KEYS = ("dataset", "stage", "width", "batch_size")  # a rough match: these decide an epoch's cost


@dataclass(frozen=True)
class DataCheck:
    """Per dataset of a sweep: its file, and what is wrong with it (empty when nothing)."""

    root: Path
    lines: tuple[str, ...]  # one per dataset, for the dry run
    missing: tuple[str, ...]  # flags whose real file is not there
    synthetic: tuple[str, ...] = ()  # synthetic flags not generated yet (made before the first run)

    def error(self, sweep: str) -> str:
        flags = " ".join(self.missing)
        return (f"sweep {sweep}: {len(self.missing)} dataset file(s) missing in {self.root} ({', '.join(self.missing)});"
                f" nothing was started: fetch them with `damtui datasets fetch {flags} --data-root {self.root}`"
                " or give the folder that holds them with --data-root")


def check_data(flags: Iterable[str], data_root: str | os.PathLike[str] | None) -> DataCheck:
    root = datasets.data_root(data_root)
    lines, missing, synthetic = [], [], []
    for flag in dict.fromkeys(flags):
        s = datasets.spec(flag)
        path = datasets.dataset_path(s.flag, root)
        if s.synthetic:
            there = path.is_file()
            if not there:
                synthetic.append(s.flag)
            lines.append(f"data: {s.flag} synthetic, {'in' if there else 'written before the first run to'} {path}")
        elif not path.is_file():
            missing.append(s.flag)
            lines.append(f"data: {s.flag} MISSING: {path}; `damtui datasets fetch {s.flag} --data-root {root}`")
        elif datasets.file_md5(path) != s.md5:
            lines.append(f"data: {s.flag} {path}: MD5 differs from medmnist's (another version?); runs record it")
        else:
            lines.append(f"data: {s.flag} ok (MD5) {path}")
    return DataCheck(root, tuple(lines), tuple(missing), tuple(synthetic))


def prepare_data(check: DataCheck, say) -> None:
    """Write the synthetic sets the sweep needs now, once, announced (not by the first run of each)."""
    for flag in check.synthetic:
        written = datasets.ensure_synthetic(flag, check.root)
        if written is not None:
            say(datasets.announce_synthetic(written))


# ----------------------------------------------------------------------------- time


@dataclass(frozen=True)
class Estimate:
    """Training seconds per run (None: nothing to go by) and what the figures come from."""

    seconds: dict[str, float | None] = field(default_factory=dict)  # run name -> seconds still to train
    basis: str = ""

    @property
    def known(self) -> float:
        return sum(s for s in self.seconds.values() if s is not None)

    @property
    def unknown(self) -> int:
        return sum(s is None for s in self.seconds.values())

    def line(self, parallel: int | None = None) -> str:
        n = len(self.seconds)
        if n and not self.unknown and not self.known:
            return "time: none: every run is finished (a sweep run again skips them)"
        if n and self.unknown == n:
            return ("time: unknown: no finished run like these in the runs dir yet; once some finish,"
                    " --dry-run prices the rest from them")
        known = format_duration(self.known)
        more = f" + {self.unknown} run(s) with nothing to go by" if self.unknown else ""
        side = (f"; about {format_duration(self.known / parallel)} with {parallel} side by side (if the machine"
                " has room for them)") if parallel and parallel > 1 else ""
        return f"time: about {known} of training one after another{more} ({self.basis}){side}"


def epoch_seconds(infos: list[runs.RunInfo]) -> tuple[dict[tuple, list[float]], dict[tuple, list[float]]]:
    """Seconds per epoch of finished runs, by exact configuration (but seed and epochs) and by the
    rough key of SIMILAR_KEYS."""
    exact: dict[tuple, list[float]] = {}
    rough: dict[tuple, list[float]] = {}
    for info in infos:
        if info.status != runs.FINISHED or not info.epochs_done or not info.trained_s or not info.config:
            continue
        per_epoch = info.trained_s / info.epochs_done
        exact.setdefault(_exact_key(info.config), []).append(per_epoch)
        rough.setdefault(_rough_key(info.config), []).append(per_epoch)
    return exact, rough


def _exact_key(config: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in cfg.hyperparameters(config, ["seed", "epochs"]).items()))


def _rough_key(config: dict) -> tuple:
    return tuple(repr(config.get(k)) for k in SIMILAR_KEYS)


def estimate(jobs: list[Job], root: Path) -> Estimate:
    """What the runs of `jobs` still have to train, priced from the finished runs under `root`."""
    infos, _ = runs.list_runs(root)
    exact, rough = epoch_seconds(infos)
    done = {i.run_id: i for i in infos}
    out: dict[str, float | None] = {}
    used = {"exact": 0, "rough": 0}
    for job in jobs:
        info = done.get(job.name)
        left = int(job.config.get("epochs", 0)) - (info.epochs_done if info is not None else 0)
        if info is not None and info.status == runs.FINISHED:
            left = 0
        per = exact.get(_exact_key(job.config))
        kind = "exact"
        if not per:
            per, kind = rough.get(_rough_key(job.config)), "rough"
        if left <= 0:
            out[job.name] = 0.0
        elif per:
            out[job.name] = left * statistics.median(per)
            used[kind] += 1
        else:
            out[job.name] = None
    parts = []
    if used["exact"]:
        parts.append(f"{used['exact']} run(s) priced from finished runs of the same config")
    if used["rough"]:
        parts.append(f"{used['rough']} from runs of the same dataset, stage, width and batch size")
    basis = "; ".join(parts) or f"{len(infos)} run(s) in {root}, none like these"
    return Estimate(out, basis + "; their device and load, not this one's")
