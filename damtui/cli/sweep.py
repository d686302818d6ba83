"""`damtui sweep FILE`: a sweep file's runs on the local, Ray or Slurm backend (docs/SWEEPS.md)."""

from __future__ import annotations

import argparse
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


def cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from damtui import sweeps
    from damtui.store import runs
    from damtui.sweeps import backends as sweep_backends

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
    if args.dry_run:
        print(sweeps.format_plan(planned, root))
        if len(jobs) != len(planned):
            print(f"packed: {len(jobs)} jobs ({sum(bool(j.members) for j in jobs)} packs of up to {args.pack} seeds)")
        return 0
    sweep_backends.require(args.backend)
    data_root = str(Path(args.data_root).resolve()) if args.data_root else None
    if args.threads is not None:
        from damtui.train.threads import parse_threads

        parse_threads(str(args.threads), "--threads")
    ctx = sweeps.JobContext(str(root), data_root, args.device, threads=args.threads)
    opts = sweep_backends.Options(
        max_parallel=args.max_parallel, gpus_per_job=args.gpus_per_job, address=args.address,
        partition=args.partition, time_min=args.time, cpus_per_job=args.cpus_per_job, mem_gb=args.mem_gb,
        slurm_cluster=args.slurm_cluster)
    sweeps.write_plan(root, sweep, planned, path)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl+C: jobs are asked to stop
    print(f"sweep {sweep.name}: {len(planned)} runs in {root} ({args.backend} backend)", flush=True)
    results = sweeps.flat_results(
        sweep_backends.run(jobs, ctx, args.backend, opts, lambda line: print(line, flush=True)))
    print(sweeps.totals_line(sweep.name or "", results), flush=True)
    return 0 if all(r["status"] == runs.FINISHED for r in results) else EXIT_FAILED
