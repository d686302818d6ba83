"""Headless commands. `damtui` alone opens the TUI; everything else runs without Textual.

Heavy modules (torch, libauc, textual) are imported inside the commands so `damtui --help`
answers at once. Every DamtuiError becomes one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import os
import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    """Ctrl+C before `main` runs (while modules import): nothing is written yet; exit quietly."""
    sys.stderr.write("damtui: interrupted\n")
    os._exit(130)


if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "damtui":  # a program, not an import
    signal.signal(signal.SIGINT, _interrupted_while_starting)

import argparse  # noqa: E402  (after the handler: importing takes a while)
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

from damtui.cli_printers import (  # noqa: E402
    TaggedPrinter, epoch_header, epoch_line, make_printer, print_table as _print_table,
)
from damtui import cli_manage  # noqa: E402
from damtui.cli_presets import cmd_presets  # noqa: E402
from damtui import cli_results  # noqa: E402
from damtui.cli_images import add_mistakes_options, add_show_options  # noqa: E402
from damtui.errors import DamtuiError  # noqa: E402

EXIT_FAILED, EXIT_CANCELLED = 1, 130


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """--runs-dir and --data-root, before or after the command: a subcommand's own default must
    not overwrite what was given before it (`damtui --runs-dir X runs list`)."""
    default = None if top else argparse.SUPPRESS
    p.add_argument("--runs-dir", default=default, help="runs folder (default: $DAMTUI_RUNS or ./runs)")
    p.add_argument("--data-root", default=default, help="MedMNIST folder (default: $DAMTUI_DATA or ~/.medmnist)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="damtui",
        description="Deep AUC Maximization on MedMNIST. Without a command: open the terminal app.",
    )
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    t = sub.add_parser("train", help="train one stage headless (pretrain or finetune)")
    t.add_argument("dataset", nargs="?", help="dataset flag, e.g. breastmnist or synthetic2d")
    t.add_argument("--stage", choices=["pretrain", "finetune"], default="pretrain")
    t.add_argument("--preset", help="preset name or short name (report, demo, tuned) or a .toml file")
    t.add_argument("--from", dest="from_run", metavar="RUN",
                   help="pretrain run to fine-tune from (folder, name, short id, or 'latest')")
    t.add_argument("--resume", metavar="RUN", help="continue a crashed, cancelled or finished run")
    t.add_argument("--name", help="exact run folder name (default: time-dataset-stage-id)")
    t.add_argument("--epochs", type=int, help="number of epochs (total, also when resuming)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a preset value, validated like the preset (repeatable)")
    t.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--seed", type=int, help="random seed (same as --set seed=S)")
    t.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads for torch (default: $DAMTUI_THREADS, the preset's, else the idle cores)")
    t.add_argument("--seeds", metavar="S1,S2,...",
                   help="train these seeds packed as one vmapped model in this process, one run each"
                        " (--from and --name then take one value per seed, comma-separated)")
    t.add_argument("--sweep", help=argparse.SUPPRESS)  # set by `damtui sweep`: saved in the run's runtime
    t.add_argument("--sweep-config", help=argparse.SUPPRESS)
    _common(t)

    w = sub.add_parser("sweep", help="run a sweep file (datasets x presets x seeds x grid) on local/ray/slurm")
    w.add_argument("file", help="sweep TOML file (docs/SWEEPS.md)")
    w.add_argument("--backend", choices=["local", "ray", "slurm"], default="local",
                   help="local: processes on this machine, one per GPU; ray: Ray core tasks; slurm: submitit")
    w.add_argument("--dry-run", action="store_true", help="list the runs it would start, start nothing")
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
    _common(w)

    r = sub.add_parser("runs", help="list, show, curves, compare, export, delete, rename, note, tag saved runs; a run's log and mistakes")
    r.add_argument("action", nargs="?", default="list", choices=["list", "show", "curves", "compare", "export", "mistakes", *cli_manage.ACTIONS])
    r.add_argument("refs", nargs="*", metavar="RUN")
    cli_manage.add_arguments(r)
    add_mistakes_options(r)
    r.add_argument("--csv", help="export: write the comparison as CSV here")
    r.add_argument("--md", help="export: write the comparison as Markdown here")
    _common(r)

    p = sub.add_parser("presets", help="list, show and validate presets")
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "validate"])
    p.add_argument("names", nargs="*", metavar="NAME_OR_FILE")
    p.add_argument("--dataset", help="list: only presets usable for this dataset")
    p.add_argument("--stage", choices=["pretrain", "finetune"], help="list: only this stage")

    d = sub.add_parser("datasets", help="list datasets and their state; fetch one")
    d.add_argument("action", nargs="?", default="list", choices=["list", "fetch", "show"])
    d.add_argument("flags", nargs="*", metavar="FLAG")
    add_show_options(d)
    _common(d)
    cli_results.add_parser(sub, _common)
    return parser


def main(argv: list[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, caught below
    args = build_parser().parse_args(argv)
    commands: dict[str | None, Callable[[argparse.Namespace], int]] = {
        None: cmd_tui, "train": cmd_train, "runs": cmd_runs, "presets": cmd_presets, "datasets": cmd_datasets,
        "sweep": cmd_sweep, "results": cli_results.cmd_results,
    }
    try:
        return commands[args.command](args)
    except DamtuiError as err:
        print(f"damtui: error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("damtui: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0


# ----------------------------------------------------------------------------- tui


def cmd_tui(args: argparse.Namespace) -> int:
    from damtui import runs
    from damtui.tui.app import run_app

    given = Path(args.data_root).expanduser() if args.data_root else None
    if given is not None and not given.is_dir():  # the app would open with every dataset missing
        what = "is not a folder" if given.exists() else "does not exist"
        raise DamtuiError(f"--data-root {args.data_root} {what}; give the folder that holds the MedMNIST"
                          f" .npz files, or fetch one into it: `damtui datasets fetch FLAG --data-root"
                          f" {args.data_root}`")
    run_app(runs_dir=runs.runs_dir(args.runs_dir), data_root=args.data_root)
    return 0


# ----------------------------------------------------------------------------- train


def _resolve_from(ref: str, root: Path, dataset: str) -> Path:
    from damtui import runs

    return runs.latest_run(root, dataset, "pretrain") if ref == "latest" else runs.resolve_run(root, ref)


def _stop_on_signals(stop: Any) -> None:
    """Ctrl+C / SIGTERM: stop after the batch (the run is marked cancelled); again: abort."""
    import signal

    def on_signal(signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\ndamtui: stopping after this batch (again to abort)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def _sweep_extra(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.sweep:
        return None
    import os

    return {"sweep": args.sweep, "sweep_config": args.sweep_config,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def cmd_train(args: argparse.Namespace) -> int:
    import threading

    from damtui import config as cfg
    from damtui import engine, runs
    from damtui.resume import resume_config

    root = runs.runs_dir(args.runs_dir)
    overrides = cfg.parse_overrides(args.overrides)
    if args.seed is not None:
        if args.seed < 0:
            raise DamtuiError(f"--seed takes a whole number >= 0 (got {args.seed})")
        overrides["seed"] = args.seed
    resume = from_run = None
    if args.seeds is not None:
        return _train_packed(args, root, overrides)
    if args.resume:
        resume = runs.resolve_run(root, args.resume)
        if overrides or args.preset or args.from_run or args.name:
            raise DamtuiError("--resume continues the run's own config: only --epochs may be given")
        config = resume_config(resume, args.epochs)
        if args.dataset and args.dataset != config.dataset:
            raise DamtuiError(f"{resume.name} is a {config.dataset} run, not {args.dataset}")
    else:
        if not args.dataset:
            raise DamtuiError("name a dataset, e.g. `damtui train synthetic2d`, or give --resume RUN")
        config = _new_config(args, overrides)
        if args.from_run:
            from_run = _resolve_from(args.from_run, root, config.dataset)

    stop = threading.Event()
    _stop_on_signals(stop)
    printer = make_printer(sys.stdout.isatty())
    extra = None if resume else _sweep_extra(args)
    try:
        summary = engine.train(config, printer, stop, runs_dir=root, data_root=args.data_root,
                               device=args.device, from_run=from_run, resume=resume, run_name=args.name,
                               runtime_extra=extra, threads=args.threads)
    finally:
        printer.close()
    status = summary.status
    return 0 if status == runs.FINISHED else EXIT_CANCELLED if status == runs.CANCELLED else EXIT_FAILED


def _new_config(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    """The config of a new run: the dataset's preset (or its default), then --epochs and --set."""
    from damtui import config as cfg
    from damtui import datasets

    dataset = datasets.spec(args.dataset).flag
    config = cfg.find_preset(args.preset or cfg.default_preset_name(dataset), dataset, args.stage)
    if args.epochs is not None:
        overrides = {**overrides, "epochs": args.epochs}
    return cfg.apply_overrides(config, overrides)


def _split(text: str | None, what: str, n: int) -> list[str | None]:
    if text is None:
        return [None] * n
    items = [x.strip() for x in text.split(",")]
    if len(items) != n or not all(items):
        raise DamtuiError(f"--seeds has {n} seeds: give {what} as {n} comma-separated values")
    return list(items)


def _train_packed(args: argparse.Namespace, root: Path, overrides: dict[str, Any]) -> int:
    """`--seeds`: the same config for several seeds, trained packed (damtui.packing)."""
    import threading

    from damtui import packing, runs

    if args.resume or args.seed is not None or "seed" in overrides:
        raise DamtuiError("--seeds starts new runs: drop --seed/--resume (resume a member with --resume RUN)")
    if not args.dataset:
        raise DamtuiError("name a dataset, e.g. `damtui train synthetic2d --seeds 0,1,2,3`")
    try:
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        raise DamtuiError(f"--seeds takes integers separated by commas, e.g. 0,1,2,3 (got {args.seeds!r})") from None
    base = _new_config(args, overrides)
    configs = [base.model_copy(update={"seed": s}) for s in seeds]
    names = _split(args.name, "--name", len(seeds))
    sources = [None if ref is None else _resolve_from(ref, root, base.dataset)
               for ref in _split(args.from_run, "--from", len(seeds))]
    stop = threading.Event()
    _stop_on_signals(stop)
    printers = [TaggedPrinter(f"[seed {s}]") for s in seeds]
    summaries = packing.train_packed(configs, printers, stop, runs_dir=root, data_root=args.data_root,
                                     device=args.device, from_runs=sources, run_names=names,
                                     runtime_extra=_sweep_extra(args), threads=args.threads)
    states = {s.status for s in summaries}  # RunSummary records, not dicts
    return 0 if states == {runs.FINISHED} else EXIT_CANCELLED if runs.CANCELLED in states else EXIT_FAILED


# ----------------------------------------------------------------------------- sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    import signal

    from damtui import runs, sweeps
    from damtui.sweeps import backends as sweep_backends

    if args.max_parallel is not None and args.max_parallel < 1:
        raise DamtuiError("--max-parallel N needs N >= 1")
    if args.gpus_per_job not in (None, 0, 1):
        raise DamtuiError("--gpus-per-job is 0 or 1 (to share a GPU between seeds use --pack K)")
    if args.pack < 1:
        raise DamtuiError("--pack K needs K >= 1 (1: no packing)")
    path = Path(args.file)
    sweep, planned = sweeps.load_plan_file(path)
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
        from damtui.threads import parse_threads

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


# ----------------------------------------------------------------------------- runs


def cmd_runs(args: argparse.Namespace) -> int:
    from damtui import compare, run_results, runs
    from damtui.records import METRICS, SELECTED_METRICS

    root = runs.runs_dir(args.runs_dir)
    if args.action in cli_manage.ACTIONS:
        return cli_manage.run(args, root)
    if args.action == "list":
        infos, ignored = runs.list_runs(root)
        shown = [METRICS[k] for k in SELECTED_METRICS if k != "val_acc"]
        _print_table(
            ["run", "status", "epochs", "stage@ep", *(m.label for m in shown), "name #tags"],
            [[r.run_id, r.status, f"{r.epochs_done}/{r.epochs_planned}",
              f"{r.result.stage}@{r.result.epoch}" if r.result else "-",
              *(m.format(r.result.value(m.key) if r.result else None) for m in shown), cli_manage.labels(r)]
             for r in infos],
            title=f"{len(infos)} runs in {root}",
        )
        if ignored:
            print(f"ignored (not runs): {', '.join(ignored)}")
        return 0
    if not args.refs:
        raise DamtuiError(f"`damtui runs {args.action}` needs at least one RUN")
    if args.action == "mistakes":
        from damtui.cli_images import cmd_runs_mistakes
        return cmd_runs_mistakes(args)
    records = [runs.load_run(runs.resolve_run(root, ref)) for ref in args.refs]
    if args.action == "show":
        for rec in records:
            i = rec.info
            print(f"{i.run_id}  {i.dataset} {i.stage} preset={i.preset} status={i.status} "
                  f"epochs={i.epochs_done}/{i.epochs_planned} from={i.from_run or '-'}")
            if i.message:
                print(f"message: {i.message}")
            cli_manage.print_notes(i)
            print(epoch_header())
            best = i.best.epoch if i.best else None
            for row in rec.metrics:
                print(epoch_line(row, row.epoch == best))
            best = run_results.best(rec)
            print(f"best {best.describe()}" if best else "no epoch finished")
            if i.answer is not None and i.answer.stage != i.stage:
                print(f"two-stage answer: {run_results.result(rec).describe()}")
        return 0
    if args.action == "curves":
        from damtui.cli_curves import print_curves

        for rec in records:
            print_curves(rec)
        return 0
    if args.action == "compare":
        print(compare.to_markdown(records))
        return 0
    if not (args.csv or args.md):
        raise DamtuiError("`damtui runs export` needs --csv FILE and/or --md FILE")
    if args.csv:
        runs.write_text_file(Path(args.csv), compare.to_csv(records))
        print(f"wrote {args.csv}")
    if args.md:
        runs.write_text_file(Path(args.md), compare.to_markdown(records))
        print(f"wrote {args.md}")
    return 0


# ----------------------------------------------------------------------------- datasets


def cmd_datasets(args: argparse.Namespace) -> int:
    from damtui import datasets

    if args.action == "show":
        from damtui.cli_images import cmd_datasets_show
        return cmd_datasets_show(args)
    if args.action == "fetch":
        if not args.flags:
            raise DamtuiError("`damtui datasets fetch FLAG` needs a dataset flag")
        for flag in args.flags:
            path = datasets.fetch(flag, args.data_root)
            print(f"{flag}: {path} (MD5 ok)")
        return 0
    rows = []
    for flag in args.flags or datasets.all_flags():
        s = datasets.status(flag, args.data_root)
        sizes = "/".join(str(s.sizes[k]) for k in datasets.SPLITS)
        share = "-" if s.positive_share is None else f"{s.positive_share:.3f}"
        kind = ("3D" if s.is_3d else "2D") + (" multi-label" if s.multilabel else "")
        rows.append([s.flag, s.state, s.md5, sizes, share, kind, s.error or str(s.path)])
    folder = datasets.data_root(args.data_root)
    print(f"data root: {folder}" + ("" if folder.is_dir() else " (no such folder)"))
    _print_table(["dataset", "state", "MD5", "train/val/test", "label-1 share", "kind", "file / problem"], rows)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
