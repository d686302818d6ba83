"""Running one sweep job: what a retry does, the training process, and its result.

`run_job()` is the one thing a backend runs: it looks at the job's run folder (finished -> skip;
crashed, cancelled or failed with a checkpoint -> `--resume`; else a fresh run with `--name`) and
starts the job's TrainCommand as a subprocess, logged under <runs>/.sweeps/<sweep>/logs/. The
processes a process starts are tracked by its Supervisor, so Ctrl+C, a Ray cancel or Slurm's
pre-emption signal stops them (they finish the batch and mark their runs cancelled).
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, Callable

from damtui import config as cfg
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.sweeps.command import TrainCommand
from damtui.sweeps.plan import Job
from damtui.train.threads import ENV as THREADS_ENV

SKIPPED, ERROR = "skipped", "error"  # job outcomes beside the run states of damtui.store.runs


@dataclass(frozen=True)
class JobContext:
    """Where jobs write and on what they run; the same on every machine of a cluster."""

    runs_dir: str
    data_root: str | None = None
    device: str = "auto"
    python: str = field(default_factory=lambda: sys.executable)
    threads: int | None = None  # $DAMTUI_THREADS of CPU jobs run side by side (their share of the cores)


# ----------------------------------------------------------------------------- what a retry does


def _same_config(saved: dict[str, Any], planned: dict[str, Any]) -> bool:
    """Equal apart from epochs (a finished run may have been extended with --resume --epochs)."""
    return cfg.hyperparameters(saved, ["epochs"]) == cfg.hyperparameters(planned, ["epochs"])


def decide(job: Job, root: Path) -> tuple[str, str]:
    """What starting `job` now means: ("new" | "resume" | "skip" | "error", why)."""
    path = Path(root) / job.name
    state = runs.folder_state(path)
    if state == "absent":
        return "new", ""
    if state == "foreign":
        return ERROR, f"{path} exists and is not a damtui run; move it away"
    if state == "empty":
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
    if runs.has_checkpoint(path):
        return "resume", f"{info.status} at epoch {info.epochs_done}"
    return "new", f"{info.status} before its first checkpoint; started again"


def describe_action(job: Job, root: Path) -> str:
    action, why = decide(job, root)
    return f"{action} ({why})" if why and action != "new" else action


def train_command(members: list[Job], ctx: JobContext, device: str, resume: bool = False) -> TrainCommand:
    """The command that trains `members` (one job, or the seeds of a pack) in one process, or
    that resumes the one member's run folder."""
    root, first = Path(ctx.runs_dir), members[0]
    where = TrainCommand(runs_dir=str(root), device=device, python=ctx.python,
                         data_root=str(ctx.data_root) if ctx.data_root else None)
    if resume:
        return replace(where, resume=str(root / first.name))
    return replace(where, dataset=first.dataset, stage=first.stage, preset=first.preset,
                   seeds=tuple(m.seed for m in members), names=tuple(m.name for m in members),
                   sweep=first.sweep, sweep_config=first.config_key, overrides=first.overrides,
                   from_runs=tuple(str(root / m.depends_on) for m in members if m.depends_on))


# ----------------------------------------------------------------------------- the training processes


class Supervisor:
    """The training processes this process started and has not seen end."""

    def __init__(self) -> None:
        self._children: set[subprocess.Popen] = set()
        self._lock = threading.RLock()  # re-entrant: stop() may run in a signal handler

    def run(self, argv: list[str], log: IO[bytes], env: dict[str, str],
            should_stop: Callable[[], bool] | None = None) -> int:
        """Run `argv` to its end with its output in `log`; the exit code. An interruption of this
        thread (Ctrl+C, Ray cancel, requeue) stops the process first: never leave one training.
        `should_stop` (a pruned trial) is asked every half second; once true the process is asked
        to stop like Ctrl+C (it finishes the batch and marks its run cancelled)."""
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        with self._lock:
            self._children.add(proc)
        asked = False
        try:
            while True:  # short waits, so a signal handler can poll the child (stop)
                try:
                    return proc.wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    if should_stop is not None and not asked and should_stop():
                        proc.terminate()
                        asked = True
        except BaseException:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
            raise
        finally:
            with self._lock:
                self._children.discard(proc)

    def stop(self, sig: int = signal.SIGTERM, wait_s: float = 0.0) -> None:
        """Ask every running child to stop (they finish the batch and mark their runs cancelled),
        and wait up to `wait_s` for them to exit. Safe in a signal handler."""
        with self._lock:
            children = list(self._children)
        for proc in children:
            if proc.poll() is None:
                try:
                    proc.send_signal(sig)
                except OSError:
                    pass
        deadline = time.time() + wait_s
        while time.time() < deadline and any(p.poll() is None for p in children):
            time.sleep(0.1)


# One per process: the backends' interrupt paths (Ctrl+C in the local pool, submitit's checkpoint
# on a node) stop what this process's run_job calls started.
SUPERVISOR = Supervisor()


# ----------------------------------------------------------------------------- running one job


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
    pruned = runs.sweep_stop_requested(root, job.sweep, job.name)
    if pruned is not None:
        return skipped(job, pruned)
    dep = _dependency_status(job, root)
    if dep is not None and dep != runs.FINISHED:
        return skipped(job, f"pretrain {job.depends_on} is {dep}")
    action, why = decide(job, root)
    if action == ERROR:
        return _result(job, action, ERROR, why)
    if action == "skip":
        return _result(job, action, runs.FINISHED, "already finished")
    if why and action == "new" and runs.folder_state(root / job.name) == "run":
        runs.discard_run(root, job.sweep, job.name)  # died before its first checkpoint: nothing to resume
    done = _spawn(job, ctx, gpu, lambda device: train_command([job], ctx, device, resume=action == "resume"),
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
    why = "" if status == runs.FINISHED else (runs.sweep_stop_requested(root, job.sweep, job.name)
                                              or _last_error(done.log, done.start))
    return _result(job, action, status, why,
                   seconds=done.seconds, returncode=done.rc, log=str(done.log),
                   cuda_visible_devices=done.env.get("CUDA_VISIBLE_DEVICES"))


def _spawn(job: Job, ctx: JobContext, gpu: str | None, command_of: Callable[[str], TrainCommand], what: str,
           verb: str, on_start: Callable[[str], None] | None) -> _Ended:
    """Run one training process to its end, logging to <sweep>/logs/<job>.log; stops the process
    when this thread is interrupted."""
    device = ctx.device
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
        if device == "auto":
            device = "cuda:0"
    if ctx.threads:
        env[THREADS_ENV] = str(ctx.threads)
    argv = command_of(device).argv()
    t0 = time.time()
    with runs.open_sweep_log(Path(ctx.runs_dir), job.sweep, job.name) as fh:
        start = fh.tell()
        header = (f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {what} on"
                  f" {socket.gethostname()} CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', '-')}\n"
                  f"# {shlex.join(argv)}\n")
        fh.write(header.encode())
        fh.flush()
        if on_start is not None:
            on_start(f"{verb:<9} {job.name}" + (f" (CUDA_VISIBLE_DEVICES={gpu})" if gpu is not None else ""))
        names = [m.name for m in job.members or (job,)]
        rc = SUPERVISOR.run(argv, fh, env, should_stop=lambda: all(
            runs.sweep_stop_requested(Path(ctx.runs_dir), job.sweep, n) is not None for n in names))
    return _Ended(rc, Path(fh.name), start, env, time.time() - t0)


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
    if len(ready) > 1 and all(runs.folder_state(root / m.name) == "absent" for m in ready):
        done = _spawn(job, ctx, gpu, lambda device: train_command(ready, ctx, device),
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


def _last_error(log: Path, start: int) -> str:
    lines = runs.read_sweep_log(log, start)
    if lines is None:
        return ""
    errors = [ln.removeprefix("damtui: error: ") for ln in lines if ln.startswith("damtui: error:")]
    if errors:
        return errors[-1]
    tail = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    return tail[-1][:200] if tail else "the process ended without output"
