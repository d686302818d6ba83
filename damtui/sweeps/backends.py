"""Where sweep jobs run: a local process pool, Ray core tasks, or Slurm through submitit.

Every backend runs the same thing, `execute.run_job(job, ctx, gpu)`, which starts one
`python -m damtui.cli train ...` process and writes the run folder under the runs dir. A backend
decides only where and when: one job per GPU, and a finetune after its pretrain finished. There is
no scheduler of our own beyond the local pool; Ray and Slurm schedule their own jobs.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import os
import queue
import signal
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.sweeps.execute import ERROR, SUPERVISOR, JobContext, run_job, skipped
from damtui.sweeps.plan import Job, runs_of
from damtui.sweeps.report import PRUNED_BY, result_line
from damtui.train.threads import ENV as THREADS_ENV
from damtui.train.threads import usable_cores

Report = Callable[[str], None]
BACKENDS = ("local", "ray", "slurm")
STOP_WAIT_S = 90.0
EXTRAS = {"ray": ("ray", "ray"), "slurm": ("submitit", "slurm")}


def require(backend: str) -> Any:
    """Import the optional library a backend needs, or a one-line hint how to install it."""
    if backend not in EXTRAS:
        return None
    module, extra = EXTRAS[backend]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DamtuiError(f"the {backend} backend needs `pip install 'damtui[{extra}]'`") from None


@dataclass(frozen=True)
class Options:
    """Backend settings from the command line."""

    max_parallel: int | None = None
    gpus_per_job: int | None = None  # None: 1 when GPUs are there and --device is not cpu
    address: str | None = None  # ray: join this cluster
    partition: str | None = None  # slurm
    time_min: int = 24 * 60
    cpus_per_job: int = 4
    mem_gb: int | None = None
    slurm_cluster: str = "slurm"  # submitit's "local" or "debug" run the same jobs on this machine
    submitit_folder: str | None = None


def run(jobs: list[Job], ctx: JobContext, backend: str, opts: Options, report: Report) -> list[dict[str, Any]]:
    if backend == "local":
        return run_local(jobs, ctx, opts, report)
    if backend == "ray":
        return run_ray(jobs, ctx, opts, report)
    if backend == "slurm":
        return run_slurm(jobs, ctx, opts, report)
    raise DamtuiError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def count_runs(jobs: list[Job]) -> str:
    """'8 runs', or '8 runs in 4 jobs' when seeds are packed: the runs are what the user counts."""
    n = len(runs_of(jobs))
    return f"{n} runs" + (f" in {len(jobs)} jobs" if n != len(jobs) else "")


def _dependency_failed(job: Job, results: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    if job.depends_on is None or job.members:  # a pack checks each member's own pretrain
        return None
    dep = results.get(job.depends_on)
    if dep is not None and dep["status"] != runs.FINISHED:
        pruned = str(dep.get("message", "")).startswith(PRUNED_BY)
        return skipped(job, dep["message"] if pruned else f"pretrain {job.depends_on} is {dep['status']}")
    return None


# ----------------------------------------------------------------------------- local


def visible_gpus(device: str) -> list[str]:
    """CUDA_VISIBLE_DEVICES values for the GPUs a local sweep may use, one job per GPU."""
    if device == "cpu":
        return []
    import torch

    n = torch.cuda.device_count()
    if n == 0:
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = [x.strip() for x in env.split(",") if x.strip()] if env else [str(i) for i in range(n)]
    ids = ids[:n]
    if device.startswith("cuda:"):
        index = int(device.split(":", 1)[1])
        if index >= len(ids):
            raise DamtuiError(f"device {device!r} does not exist: {len(ids)} GPU(s) visible")
        return [ids[index]]
    return ids


def run_local(jobs: list[Job], ctx: JobContext, opts: Options, report: Report,
              gpu_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """A thread pool of subprocesses: one job per GPU (sequential on CPU unless --max-parallel),
    each pretrain before its finetune. `gpu_ids` overrides GPU detection (tests)."""
    gpus = visible_gpus(ctx.device) if gpu_ids is None else list(gpu_ids)
    if opts.gpus_per_job == 0:
        gpus = []
    slots = len(gpus) if gpus else 1
    if opts.max_parallel:
        slots = min(slots, opts.max_parallel) if gpus else opts.max_parallel
    if not gpus and slots > 1 and ctx.threads is None and THREADS_ENV not in os.environ:
        ctx = JobContext(ctx.runs_dir, ctx.data_root, ctx.device, ctx.python,
                         threads=max(1, usable_cores() // slots))
    free: queue.Queue[str | None] = queue.Queue()
    for i in range(slots):
        free.put(gpus[i] if gpus else None)
    where = f"{slots} at a time on GPUs {','.join(gpus[:slots])}" if gpus else f"{slots} at a time on CPU"
    report(f"local: {count_runs(jobs)}, {where}")

    def work(job: Job) -> dict[str, Any]:
        gpu = free.get()
        try:
            result = run_job(job, ctx, gpu, on_start=report)
            report(result_line(result))  # here, before this worker starts the next job: lines in order
            return result
        finally:
            free.put(gpu)

    results: dict[str, dict[str, Any]] = {}
    pending = list(jobs)
    running: dict[cf.Future, Job] = {}
    with cf.ThreadPoolExecutor(max_workers=slots, thread_name_prefix="damtui-sweep") as pool:
        try:
            while pending or running:
                for job in list(pending):
                    if job.depends_on is not None and job.depends_on not in results:
                        continue
                    pending.remove(job)
                    failed = _dependency_failed(job, results)
                    if failed is not None:
                        results[job.name] = failed
                        report(result_line(failed))
                    else:
                        running[pool.submit(work, job)] = job
                if not running:
                    continue
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    job = running.pop(fut)
                    try:
                        results[job.name] = fut.result()
                    except Exception as err:  # a bug in run_job must not lose the other jobs
                        results[job.name] = {**skipped(job, f"{type(err).__name__}: {err}"), "status": ERROR}
                        report(result_line(results[job.name]))
        except KeyboardInterrupt:
            for fut in running:
                fut.cancel()
            SUPERVISOR.stop(wait_s=STOP_WAIT_S)
            report("interrupted: asked the running jobs to stop; run the sweep again to resume")
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [results[j.name] for j in jobs if j.name in results]


# ----------------------------------------------------------------------------- ray


def _ray_job(job: Job, ctx: JobContext, dep: dict[str, Any] | None) -> dict[str, Any]:
    """The Ray task: runs in a Ray worker; Ray set CUDA_VISIBLE_DEVICES to the GPUs it granted."""
    import ray

    if dep is not None and dep["status"] != runs.FINISHED and not job.members:
        return skipped(job, f"pretrain {job.depends_on} is {dep['status']}")
    gpu = os.environ.get("CUDA_VISIBLE_DEVICES") if ray.get_gpu_ids() else None
    return run_job(job, ctx, gpu)


def run_ray(jobs: list[Job], ctx: JobContext, opts: Options, report: Report,
            init_kwargs: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Ray core tasks, one per job (`num_gpus=1` when the cluster has GPUs). A finetune task gets
    its pretrain task's ObjectRef as an argument, so Ray starts it only after the pretrain ended.
    Joins the cluster at `opts.address`, else an already initialised Ray, else starts a local one."""
    ray = require("ray")
    started = start_ray(opts, init_kwargs)
    refs: dict[str, Any] = {}
    try:
        cluster_gpus = ray.cluster_resources().get("GPU", 0)
        gpus = opts.gpus_per_job
        if gpus is None:
            gpus = 1 if cluster_gpus >= 1 and ctx.device != "cpu" else 0
        if gpus > cluster_gpus:
            raise DamtuiError(f"--gpus-per-job {gpus}: the Ray cluster has {cluster_gpus:g} GPU(s)")
        task = ray.remote(_ray_job).options(num_gpus=gpus, num_cpus=1, max_retries=2)
        report(f"ray: {count_runs(jobs)} on {ray.cluster_resources().get('CPU', 0):g} CPUs,"
               f" {cluster_gpus:g} GPUs; {gpus} GPU per job")
        names: dict[Any, str] = {}
        in_flight: list[Any] = []
        results: dict[str, dict[str, Any]] = {}

        def collect(ready: list[Any]) -> None:
            for ref in ready:
                try:
                    r = ray.get(ref)
                except Exception as err:  # the task itself died (worker lost, out of memory)
                    job = next(j for j in jobs if j.name == names[ref])
                    r = {**skipped(job, f"ray task failed: {type(err).__name__}"), "status": ERROR}
                results[r["name"]] = r
                report(result_line(r))

        for job in jobs:  # pretrains come first in the plan, so a dependency ref always exists
            if opts.max_parallel:
                while len(in_flight) >= opts.max_parallel:
                    ready, in_flight = ray.wait(in_flight, num_returns=1)
                    collect(ready)
            dep = refs.get(job.depends_on) if job.depends_on else None
            ref = task.remote(job, ctx, dep)
            refs[job.name], names[ref] = ref, job.name
            in_flight.append(ref)
        while in_flight:
            ready, in_flight = ray.wait(in_flight, num_returns=1)
            collect(ready)
        return [results[j.name] for j in jobs]
    except KeyboardInterrupt:
        report("interrupted: cancelling the Ray tasks; run the sweep again to resume")
        for ref in refs.values():
            try:
                ray.cancel(ref)  # the task's run_job stops its training process
            except Exception:
                pass
        if refs:
            ray.wait(list(refs.values()), num_returns=len(refs), timeout=STOP_WAIT_S)
        raise
    finally:
        if started:
            ray.shutdown()


def start_ray(opts: Options, init_kwargs: dict[str, Any] | None = None) -> bool:
    """Join the cluster at `opts.address` (else $RAY_ADDRESS or one started here, else a local Ray
    for the sweep's length) unless Ray is initialised already; True when this call started it."""
    ray = require("ray")
    if ray.is_initialized():
        return False
    if opts.address:
        _check_reachable(opts.address)
    on_term = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=opts.address, log_to_driver=False, **(init_kwargs or {}))
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {opts.address}" if opts.address else "a local Ray"
        raise DamtuiError(f"could not start or join {where} ({err}); check `ray status`") from None
    finally:
        # ray.init replaces the driver's SIGTERM handler with sys.exit: a SIGTERM then skipped the
        # cancelling of run_ray, Ray's workers died mid-run and the runs read `crashed`
        if on_term is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, on_term)
    return True


@contextmanager
def session(backend: str, opts: Options) -> Iterator[None]:
    """One backend session around several `run` calls (a search's waves): Ray starts once."""
    started = start_ray(opts) if backend == "ray" else False
    try:
        yield
    finally:
        if started:
            require("ray").shutdown()


def _check_reachable(address: str) -> None:
    """Fail in seconds, not minutes, when --address points nowhere (Ray retries for a long time)."""
    import socket

    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if address == "auto" or not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
    except OSError as err:
        raise DamtuiError(f"cannot reach the Ray cluster at {address} ({err.strerror or err}); start it with"
                          " `ray start --head` there, or check --address") from None


# ----------------------------------------------------------------------------- slurm (submitit)


class SubmititJob:
    """The callable submitit pickles and runs on a node. On preemption or time-out submitit calls
    `checkpoint`, which stops the training process (it saves and marks the run cancelled) and
    requeues the same job: on the next start `run_job` sees the run and resumes it."""

    def __init__(self, ctx: JobContext, gpus: int) -> None:
        self.ctx, self.gpus = ctx, gpus

    def __call__(self, job: Job) -> dict[str, Any]:
        gpu = os.environ.get("CUDA_VISIBLE_DEVICES") if self.gpus else None
        return run_job(job, self.ctx, gpu or None)

    def checkpoint(self, job: Job) -> Any:
        from submitit.helpers import DelayedSubmission

        SUPERVISOR.stop(wait_s=STOP_WAIT_S)  # Slurm's signal comes 120 s before the kill
        return DelayedSubmission(self, job)


def run_slurm(jobs: list[Job], ctx: JobContext, opts: Options, report: Report) -> list[dict[str, Any]]:
    """Two job arrays through submitit: every pretrain, then (when they ended) every finetune
    whose pretrain finished. Waits for the results; logs go to <runs>/.sweeps/<sweep>/submitit."""
    submitit = require("slurm")
    from submitit.helpers import as_completed

    if not jobs:
        return []
    folder = Path(opts.submitit_folder or runs.sweep_dir(Path(ctx.runs_dir), jobs[0].sweep) / "submitit" / "%j")
    try:
        executor = submitit.AutoExecutor(folder=folder, cluster=opts.slurm_cluster)
    except RuntimeError as err:
        raise DamtuiError(f"no Slurm here ({err}); use --slurm-cluster local to test the sweep on this machine")
    gpus = opts.gpus_per_job if opts.gpus_per_job is not None else (0 if ctx.device == "cpu" else 1)
    params: dict[str, Any] = {"name": f"damtui-{jobs[0].sweep}", "timeout_min": opts.time_min, "nodes": 1,
                              "tasks_per_node": 1, "cpus_per_task": opts.cpus_per_job, "gpus_per_node": gpus,
                              "slurm_signal_delay_s": 120}
    if opts.partition:
        params["slurm_partition"] = opts.partition
    if opts.mem_gb:
        params["mem_gb"] = opts.mem_gb
    if opts.max_parallel:
        params["slurm_array_parallelism"] = opts.max_parallel
    executor.update_parameters(**params)
    fn = SubmititJob(ctx, gpus)
    # Slurm caps an array's running tasks itself (--array=...%N); submitit's local and debug
    # executors ignore that cap, so there at most N jobs are submitted at a time
    window = opts.max_parallel if opts.slurm_cluster != "slurm" and opts.max_parallel else None
    poll_s = 2 if opts.slurm_cluster != "slurm" else 30
    results: dict[str, dict[str, Any]] = {}
    for stage in ("pretrain", "finetune"):
        wave = []
        for job in (j for j in jobs if j.stage == stage):
            failed = _dependency_failed(job, results)
            if failed is not None:
                results[job.name] = failed
                report(result_line(failed))
            else:
                wave.append(job)
        if not wave:
            continue
        live: dict[Any, Job] = {}
        pending = list(wave)
        if window is None:
            live = dict(zip(executor.map_array(fn, wave), wave))
            pending = []
            report(f"slurm ({opts.slurm_cluster}): submitted {count_runs(wave)} ({stage};"
                   f" job {next(iter(live)).job_id.split('_')[0]}); logs in {folder.parent}")
        else:
            report(f"slurm ({opts.slurm_cluster}): {count_runs(wave)} ({stage}), {window} at a time;"
                   f" logs in {folder.parent}")
        try:
            while live or pending:
                while pending and (window is None or len(live) < window):
                    job = pending.pop(0)
                    live[executor.submit(fn, job)] = job
                for sub in as_completed(list(live), poll_frequency=poll_s):
                    job = live.pop(sub)
                    try:
                        r = sub.result()
                    except Exception as err:  # submitit: the job failed, was cancelled or timed out
                        text = str(err).strip().splitlines()
                        r = {**skipped(job, f"submitit job {sub.job_id} failed: {text[-1] if text else err}"),
                             "status": ERROR}
                    results[job.name] = r
                    report(result_line(r))
                    if pending:
                        break  # a place is free: submit the next one
        except KeyboardInterrupt:
            report("interrupted: the submitted jobs keep running; run the sweep again to pick up their runs")
            raise
    return [results[j.name] for j in jobs if j.name in results]
