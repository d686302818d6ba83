"""`damtui sweep FILE`: a sweep file's runs on the local, Ray or Slurm backend (docs/SWEEPS.md)."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Callable

from damtui.cli.codes import EXIT_FAILED
from damtui.errors import DamtuiError


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    w = sub.add_parser("sweep", help="run a sweep file (datasets x presets x seeds x grid) on local/ray/slurm")
    w.add_argument("file", help="sweep TOML file (docs/SWEEPS.md)")
    w.add_argument("--backend", choices=["local", "ray", "slurm"], default="local",
                   help="local: processes on this machine, one per GPU; ray: Ray core tasks; slurm: submitit")
    w.add_argument("--dry-run", action="store_true", help="list the runs it would start, start nothing")
    w.add_argument("--force", action="store_true", help="plan a sweep of more than 10,000 runs all the same")
    w.add_argument("--max-parallel", type=int, metavar="N", help="at most N runs at once")
    w.add_argument("--pack", type=int, default=1, metavar="K",
                   help="train up to K seeds of one configuration as one packed process (default 1: off)")
    w.add_argument("--device", default="auto", help="auto (one GPU per run if any), cpu, or cuda:N")
    w.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads per run (default: the cores split between the runs side by side)")
    w.add_argument("--gpus-per-job", type=int, metavar="G",
                   help="GPUs per run: 0 or 1 (default: 1 when GPUs are there and --device is not cpu)")
    w.add_argument("--address", help="ray: join this cluster (default: start a local Ray)")
    w.add_argument("--partition", help="slurm: partition")
    w.add_argument("--time", type=int, default=24 * 60, metavar="MIN", help="slurm: time limit per run in minutes")
    w.add_argument("--cpus-per-job", type=int, default=4, metavar="C", help="slurm: CPUs per run")
    w.add_argument("--mem-gb", type=int, metavar="GB", help="slurm: memory per run")
    w.add_argument("--slurm-cluster", choices=["slurm", "local", "debug"], default="slurm",
                   help="slurm: 'local' runs the same submitit jobs on this machine, to try a sweep")
    common(w)


_SAY = threading.Lock()


def say(line: str) -> None:
    """Print one whole line in one write: the backends report from several threads at once, and
    print() writes the text and its newline apart (lines ran into each other: `...-finetunefinished`)."""
    with _SAY:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from damtui import sweeps
    from damtui.store import runs
    from damtui.sweeps import backends as sweep_backends
    from damtui.sweeps import check

    if args.max_parallel is not None and args.max_parallel < 1:
        raise DamtuiError("--max-parallel N needs N >= 1")
    if args.gpus_per_job not in (None, 0, 1):
        raise DamtuiError("--gpus-per-job is 0 or 1 (to share a GPU between seeds use --pack K)")
    if args.pack < 1:
        raise DamtuiError("--pack K needs K >= 1 (1: no packing)")
    path = Path(args.file)
    sweep, planned = sweeps.load_plan_file(path, force=args.force)
    jobs = sweeps.pack(planned, args.pack)
    root = runs.runs_dir(args.runs_dir).resolve()
    data = check.check_data(sweep.datasets, args.data_root)
    if args.dry_run:
        if sweep.search is not None:
            print("\n".join(search_lines(sweep, path, root)))
        else:
            print(sweeps.format_plan(planned, root, data.missing))
            if len(jobs) != len(planned):
                print(f"packed: {len(jobs)} jobs ({sum(bool(j.members) for j in jobs)} packs of up to {args.pack} seeds)")
        print("\n".join(data.lines))
        if sweep.search is None:
            print(check.estimate(planned, root).line(args.max_parallel))
            print(sweeps.count_line(planned))
        else:
            print(search_time(sweep, path, root))
        if data.missing:
            raise DamtuiError(data.error(sweep.name or ""))
        return 0
    sweep_backends.require(args.backend)
    if data.missing:  # before anything starts, not run by run
        raise DamtuiError(data.error(sweep.name or ""))
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None
    if args.threads is not None:
        from damtui.train.threads import parse_threads

        parse_threads(str(args.threads), "--threads")
    ctx = sweeps.JobContext(str(root), data_root, args.device, threads=args.threads)
    opts = sweep_backends.Options(
        max_parallel=args.max_parallel, gpus_per_job=args.gpus_per_job, address=args.address,
        partition=args.partition, time_min=args.time, cpus_per_job=args.cpus_per_job, mem_gb=args.mem_gb,
        slurm_cluster=args.slurm_cluster)
    lock = runs.lock_sweep(root, sweep.name or "sweep")  # one supervisor per sweep
    try:
        check.prepare_data(data, say)
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl+C: jobs are asked to stop

        def run_jobs(some: list) -> list[dict]:
            return sweeps.flat_results(sweep_backends.run(some, ctx, args.backend, opts, say))

        record = None
        try:
            if sweep.search is not None:
                from damtui.sweeps.search import run_search

                say(f"sweep {sweep.name}: {sweep.search.method} search, {sweep.search.trials} trials, in {root}"
                    f" ({args.backend} backend)")
                with sweep_backends.session(args.backend, opts):
                    record, results = run_search(sweep, path, root, run_jobs, say, wave=args.max_parallel or 1,
                                                 pack_size=args.pack)
            else:
                record = sweeps.write_plan(root, sweep, planned, path)
                say(f"sweep {sweep.name}: {len(planned)} runs in {root} ({args.backend} backend)")
                results = run_jobs(jobs)
        except KeyboardInterrupt:
            _end(root, sweep, record, sweeps.INTERRUPTED, "interrupted (Ctrl+C or SIGTERM); run the sweep again to resume")
            raise
        except BaseException as err:  # a backend that refused the jobs (no Slurm, a failed submit): not `waiting`
            _end(root, sweep, record, sweeps.FAILED, str(err) or type(err).__name__)
            raise
        ok = all(r["status"] == runs.FINISHED for r in results)
        if sweep.search is not None:  # a pruned trial's runs are cancelled on purpose
            ok = all(t["state"] in ("complete", "pruned") for t in record["trials"])
        _end(root, sweep, record, sweeps.FINISHED if ok else sweeps.FAILED,
             "" if ok else "some runs did not finish; run the sweep again to retry them")
    finally:
        lock.release()
    say(sweeps.totals_line(sweep.name or "", results))
    return 0 if ok else EXIT_FAILED


def _end(root: Path, sweep: object, record: dict | None, status: str, message: str) -> None:
    from damtui import sweeps
    from damtui.store import runs

    if record is None:  # a search writes its plan as it goes: end it if this process wrote it
        import os

        record = runs.load_sweep_plans(root).get(getattr(sweep, "name", "") or "")
        if record is None or record.get("state", {}).get("pid") != os.getpid():
            return  # refused before writing anything: an earlier sweep's plan is not ours to end
    sweeps.end_plan(root, record, status, message)


def search_lines(sweep, path: Path, root: Path) -> list[str]:
    """A search's dry run: the method, budget, space, one trial's runs, trials already ended, time."""
    from damtui.records import METRICS
    from damtui.store import runs
    from damtui.sweeps.plan import trial_jobs
    from damtui.sweeps.search import COMPLETE, FAILED, PRUNED, TrialRecord, best_line, check_same_search

    s = sweep.search
    prune = "off" if s.prune == "none" else f"{s.prune} (Optuna), after {s.warmup_epochs} epoch(s)"
    lines = [f"search: {s.method} (Optuna), {s.trials} trials, scored on {METRICS[s.metric].label} (mean over seeds"
             f" at each run's result), startup {s.startup_trials} trials, pruning {prune}, seed {s.seed}"]
    space = s.flat_space()
    lines += [f"space: {name} {dist.text()}" for name, dist in space.items()]
    high = trial_jobs(sweep, path, {k: d.corners()[-1] for k, d in space.items()})
    stages = " -> ".join(dict.fromkeys(j.stage for j in high))
    lines.append(f"each trial: {len(high)} run(s) ({len(sweep.seeds)} seed(s) x {stages}), up to"
                 f" {len(high) * s.trials} runs")
    recorded = runs.load_sweep_plans(root).get(sweep.name, {})
    check_same_search(recorded, s, sweep.name, root)
    earlier = [TrialRecord.from_json(t) for t in recorded.get("trials", [])]
    ended = [t for t in earlier if t.state in (COMPLETE, PRUNED, FAILED)]
    if earlier:
        lines.append(f"earlier: {len(ended)} of {s.trials} trials ended, {len(earlier) - len(ended)} to resume;"
                     f" {best_line(earlier, s.metric, root)}")
    return lines


def search_time(sweep, path: Path, root: Path) -> str:
    """A search's time: one trial at its space's upper corner (most epochs), times the trials to go."""
    from damtui.analysis.compare import format_duration
    from damtui.store import runs
    from damtui.sweeps import check
    from damtui.sweeps.plan import trial_jobs
    from damtui.sweeps.search import COMPLETE, FAILED, PRUNED

    s = sweep.search
    high = trial_jobs(sweep, path, {k: d.corners()[-1] for k, d in s.flat_space().items()})
    per_trial = check.estimate(high, root)
    if per_trial.unknown:
        return per_trial.line()
    trials = runs.load_sweep_plans(root).get(sweep.name, {}).get("trials", [])
    left = s.trials - sum(t.get("state") in (COMPLETE, PRUNED, FAILED) for t in trials)
    if left <= 0:
        return f"time: none: the budget of {s.trials} trials is spent (raise trials = N to go on)"
    return (f"time: about {format_duration(per_trial.known)} per trial one run after another,"
            f" {format_duration(per_trial.known * left)} for the {left} trial(s) to go (an upper bound when"
            f" trials are pruned; {per_trial.basis})")
