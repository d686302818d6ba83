"""Headless commands. `damtui` alone opens the TUI; everything else runs without Textual.

One module per command group (train, sweep, runs and its manage actions, presets, datasets,
results) adds its parser and runs its command; printers.py holds what they print with. Heavy
modules (torch, libauc, textual) are imported inside the commands so `damtui --help` answers at
once. Every DamtuiError becomes one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Callable

from damtui import __version__
from damtui import _interrupted_while_starting  # Ctrl+C while starting: installed by damtui/__init__
from damtui.cli import datasets, presets, results, runs, sweep, train
from damtui.cli.codes import EXIT_CANCELLED, EXIT_FAILED
from damtui.errors import DamtuiError


def common(p: argparse.ArgumentParser, top: bool = False) -> None:
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
    common(parser, top=True)
    parser.add_argument("--version", action="version", version=f"damtui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in (train, sweep, runs, presets, datasets, results):
        group.add_parser(sub, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    if signal.getsignal(signal.SIGINT) is _interrupted_while_starting:
        signal.signal(signal.SIGINT, signal.default_int_handler)  # KeyboardInterrupt, caught below
    args = build_parser().parse_args(argv)
    commands: dict[str | None, Callable[[argparse.Namespace], int]] = {
        None: cmd_tui, "train": train.cmd_train, "runs": runs.cmd_runs, "presets": presets.cmd_presets,
        "datasets": datasets.cmd_datasets, "sweep": sweep.cmd_sweep, "results": results.cmd_results,
    }
    try:
        return commands[args.command](args)
    except DamtuiError as err:
        from damtui.text import shown

        print(f"damtui: error: {shown(err)}", file=sys.stderr)  # names in it may hold ESC sequences
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("damtui: interrupted", file=sys.stderr)
        return EXIT_CANCELLED
    except BrokenPipeError:
        return 0


def cmd_tui(args: argparse.Namespace) -> int:
    from damtui.store import runs as run_store
    from damtui.tui.app import run_app

    given = Path(args.data_root).expanduser() if args.data_root else None
    if given is not None and not given.is_dir():  # the app would open with every dataset missing
        what = "is not a folder" if given.exists() else "does not exist"
        raise DamtuiError(f"--data-root {args.data_root} {what}; give the folder that holds the MedMNIST"
                          f" .npz files, or fetch one into it: `damtui datasets fetch FLAG --data-root"
                          f" {args.data_root}`")
    run_app(runs_dir=run_store.runs_dir(args.runs_dir), data_root=args.data_root)
    return 0
