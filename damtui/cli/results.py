"""`damtui results`: the leaderboard (best honest seed group per dataset vs MedMNIST v2)."""

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
    from damtui.analysis import leaderboard
    from damtui.cli.printers import say
    from damtui.store import runs

    root = runs.runs_dir(args.runs_dir)
    infos, _ = runs.list_runs(root)
    text = leaderboard.markdown(leaderboard.leaderboard(infos), runs_dir=str(args.runs_dir or ""))
    say(text)
    if args.md:
        runs.write_text_file(Path(args.md), text)
        say(f"wrote {args.md}")
    return 0
