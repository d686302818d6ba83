"""`damtui results`: the leaderboard (best honest seed group per dataset vs MedMNIST v2), and per
dataset whether the AUCM fine-tune beats its own CE pretrain (damtui.analysis.dam_gain)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    r = sub.add_parser("results", help="leaderboard: per dataset the best seed group (chosen on validation)"
                                       " vs the MedMNIST v2 references")
    r.add_argument("--md", metavar="FILE", help="also write the leaderboard as Markdown to FILE")
    common(r)


def cmd_results(args: argparse.Namespace) -> int:
    from damtui.analysis import dam_gain, leaderboard
    from damtui.cli.printers import say
    from damtui.store import runs

    root = runs.existing_runs_dir(args.runs_dir)
    infos, _ = runs.list_runs(root)
    board = leaderboard.leaderboard(infos)
    gains = dam_gain.by_dataset(infos)
    text = leaderboard.markdown(board, runs_dir=str(args.runs_dir or ""),
                                extra={e.dataset: dam_gain.markdown_lines(gains, e.dataset) for e in board})
    say(text)
    if args.md:
        runs.write_text_file(Path(args.md), text)
        say(f"wrote {args.md}")
    return 0
