"""`damtui train`: one stage headless, a resume or extension, or several seeds packed (`--seeds`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

from damtui.cli.codes import EXIT_CANCELLED, EXIT_FAILED
from damtui.cli.printers import TaggedPrinter, make_printer
from damtui.errors import DamtuiError


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    t = sub.add_parser("train", help="train one stage headless (pretrain or finetune)")
    t.add_argument("dataset", nargs="?", help="dataset flag, e.g. breastmnist or synthetic2d")
    t.add_argument("--stage", choices=["pretrain", "finetune"], default="pretrain")
    t.add_argument("--preset", help="preset name or short name (report, demo, tuned) or a .toml file")
    t.add_argument("--from", dest="from_run", metavar="RUN",
                   help="pretrain run to fine-tune from (folder, name, short id, or 'latest')")
    t.add_argument("--resume", metavar="RUN", help="continue a crashed, cancelled or finished run")
    t.add_argument("--name", help="exact run folder name (default: time-dataset-stage-id)")
    t.add_argument("--epochs", type=int, help="number of epochs (total, also when resuming)")
    t.add_argument("--force", action="store_true",
                   help="--resume: train on a run that fine-tunes started from (its best.pt may change)")
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
    common(t)


def _resolve_from(ref: str, root: Path, dataset: str) -> Path:
    from damtui.store import runs

    return runs.resolve_run(root, ref, dataset, "pretrain", finished=True)


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


def _announce_synthetic(flag: str, data_root: str | None) -> None:
    """A synthetic set is written into the user's data root on first use: say so, once."""
    from damtui.data import datasets

    written = datasets.ensure_synthetic(flag, data_root)
    if written is not None:
        print(datasets.announce_synthetic(written), flush=True)


def _sweep_extra(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.sweep:
        return None
    import os

    return {"sweep": args.sweep, "sweep_config": args.sweep_config,
            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}


def cmd_train(args: argparse.Namespace) -> int:
    import threading

    from damtui import config as cfg
    from damtui.store import runs
    from damtui.train import engine
    from damtui.train.resume import resume_config

    root = runs.runs_dir(args.runs_dir)
    overrides = cfg.parse_overrides(args.overrides)
    if args.seed is not None:
        if not 0 <= args.seed <= cfg.MAX_SEED:
            raise DamtuiError(f"--seed takes a whole number >= 0 and at most {cfg.MAX_SEED} (got {args.seed})")
        overrides["seed"] = args.seed
    resume = from_run = None
    if args.seeds is not None:
        return _train_packed(args, root, overrides)
    if args.resume:
        resume = runs.resolve_own_run(root, args.resume)  # exactly, in the runs folder: it writes there
        if overrides or args.preset or args.from_run or args.name:
            raise DamtuiError("--resume continues the run's own config: only --epochs may be given")
        config = resume_config(resume, args.epochs, force=args.force)
        if args.dataset and args.dataset != config.dataset:
            raise DamtuiError(f"{resume.name} is a {config.dataset} run, not {args.dataset}")
    else:
        if not args.dataset:
            raise DamtuiError("name a dataset, e.g. `damtui train synthetic2d`, or give --resume RUN")
        config = _new_config(args, overrides)
        if args.from_run:
            from_run = _resolve_from(args.from_run, root, config.dataset)

    # a resume or a fine-tune reads the data its run was trained on unless --data-root says otherwise
    source = resume or from_run
    data_root = runs.data_root_of(source, args.data_root) if source is not None else args.data_root
    _announce_synthetic(config.dataset, data_root)
    stop = threading.Event()
    _stop_on_signals(stop)
    printer = make_printer(sys.stdout.isatty())
    extra = None if resume else _sweep_extra(args)
    try:
        summary = engine.train(config, printer, stop, runs_dir=root, data_root=data_root,
                               device=args.device, from_run=from_run, resume=resume, run_name=args.name,
                               runtime_extra=extra, threads=args.threads)
    finally:
        printer.close()
    status = summary.status
    return 0 if status == runs.FINISHED else EXIT_CANCELLED if status == runs.CANCELLED else EXIT_FAILED


def _new_config(args: argparse.Namespace, overrides: dict[str, Any]) -> Any:
    """The config of a new run: the dataset's preset (or its default), then --epochs and --set."""
    from damtui import config as cfg
    from damtui.data import datasets

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
    """`--seeds`: the same config for several seeds, trained packed (damtui.train.packing)."""
    import threading

    from damtui import config as cfg
    from damtui.store import runs
    from damtui.train import packing

    if args.resume or args.seed is not None or "seed" in overrides:
        raise DamtuiError("--seeds starts new runs: drop --seed/--resume (resume a member with --resume RUN)")
    if not args.dataset:
        raise DamtuiError("name a dataset, e.g. `damtui train synthetic2d --seeds 0,1,2,3`")
    try:
        seeds = [int(x) for x in args.seeds.split(",")]
    except ValueError:
        raise DamtuiError(f"--seeds takes integers separated by commas, e.g. 0,1,2,3 (got {args.seeds!r})") from None
    base = _new_config(args, overrides)
    configs = [cfg.apply_overrides(base, {"seed": s}, "--seeds") for s in seeds]  # validated like --seed
    names = _split(args.name, "--name", len(seeds))
    sources = [None if ref is None else _resolve_from(ref, root, base.dataset)
               for ref in _split(args.from_run, "--from", len(seeds))]
    data_root = runs.data_root_of(sources[0], args.data_root) if sources[0] is not None else args.data_root
    _announce_synthetic(base.dataset, data_root)
    stop = threading.Event()
    _stop_on_signals(stop)
    printers = [TaggedPrinter(f"[seed {s}]") for s in seeds]
    summaries = packing.train_packed(configs, printers, stop, runs_dir=root, data_root=data_root,
                                     device=args.device, from_runs=sources, run_names=names,
                                     runtime_extra=_sweep_extra(args), threads=args.threads)
    states = {s.status for s in summaries}  # RunSummary records, not dicts
    return 0 if states == {runs.FINISHED} else EXIT_CANCELLED if runs.CANCELLED in states else EXIT_FAILED
