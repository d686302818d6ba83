"""`damtui presets list | show NAME | validate [FILE…]`: presets as files a user keeps.

`show` prints the preset as TOML that `validate` accepts once saved to a file, so a shipped
preset is the starting point of a user's own; `validate` checks every file it is given and
reports each one, so one bad file does not hide the others.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

from damtui.cli.printers import print_table
from damtui.errors import DamtuiError


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("presets", help="list, show and validate presets")
    p.add_argument("action", nargs="?", default="list", choices=["list", "show", "validate"])
    p.add_argument("names", nargs="*", metavar="NAME_OR_FILE")
    p.add_argument("--dataset", help="list: only presets usable for this dataset")
    p.add_argument("--stage", choices=["pretrain", "finetune"], help="list: only this stage")


def cmd_presets(args: argparse.Namespace) -> int:
    from damtui import config as cfg

    if args.action == "validate":
        return _validate([Path(n) for n in args.names] or [p.path for p in cfg.list_presets().values()])
    presets = cfg.list_presets()
    if args.action == "show":
        if not args.names:
            raise DamtuiError("`damtui presets show NAME` needs a preset name")
        for name in args.names:
            if name not in presets:
                raise DamtuiError(f"no preset {name!r}; `damtui presets list` shows them")
            p = presets[name]
            print(f"# preset {p.name}: {p.path}{' (user)' if p.user else ''}")
            print(cfg.to_toml(p.config), end="")
        return 0
    rows = []
    for p in presets.values():
        c = p.config
        if args.dataset and c.dataset not in (args.dataset, cfg.ANY_DATASET):
            continue
        if args.stage and c.stage != args.stage:
            continue
        rows.append([p.name, c.dataset, c.stage, str(c.epochs), str(c.batch_size), f"{c.lr:g}",
                     c.source + (" (user)" if p.user else "")])
    print_table(["preset", "dataset", "stage", "epochs", "batch", "lr", "source"], rows)
    return 0


def _validate(paths: list[Path]) -> int:
    """One line per file, 'ok' or its first problem; exit 1 when any file is bad."""
    from damtui import config as cfg

    bad: list[str] = []
    for path in paths:
        try:
            cfg.load_preset_file(path)
        except DamtuiError as err:
            bad.append(str(err))
            print(f"bad {err}")
        else:
            print(f"ok  {path}")
    if len(bad) == 1:
        raise DamtuiError(bad[0])
    if bad:
        raise DamtuiError(f"{len(bad)} of {len(paths)} preset files are not valid (first: {bad[0]})")
    return 0
