"""The `damtui train` command line a sweep job runs, as data: one TrainCommand, one `argv()`.

A fresh run names everything (dataset, stage, preset, seeds, run names, the sweep's tags, every
`--set` value, the pretrain it continues); a resume names only the run folder, whose saved config
holds the rest. Several seeds (and as many names and `--from` runs) make one packed process.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from typing import Any

from damtui import config as cfg
from damtui.errors import DamtuiError


@dataclass(frozen=True)
class TrainCommand:
    """`python -m damtui.cli train ...`, the entry the CLI itself uses."""

    runs_dir: str
    device: str
    data_root: str | None = None
    python: str = field(default_factory=lambda: sys.executable)
    resume: str | None = None  # a run folder to continue: the fields below are not sent then
    dataset: str = ""
    stage: str = ""
    preset: str = ""
    seeds: tuple[int, ...] = ()  # one: --seed; several: --seeds (one packed process)
    names: tuple[str, ...] = ()  # one run name per seed
    sweep: str = ""
    sweep_config: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)  # --set values, in file order
    from_runs: tuple[str, ...] = ()  # the pretrain run of each seed (a finetune)

    def argv(self) -> list[str]:
        return [self.python, "-m", "damtui.cli", "train", *self.args()]

    def args(self) -> list[str]:
        """The arguments after `damtui train` (the app starts its runs with the same ones)."""
        if self.resume is not None:
            args = ["--resume", self.resume]
        else:
            seeds = ",".join(str(s) for s in self.seeds)
            args = [self.dataset, "--stage", self.stage, "--preset", self.preset,
                    "--seed" if len(self.seeds) == 1 else "--seeds", seeds]
            if self.names:
                args += ["--name", ",".join(self.names)]
            if self.sweep:
                args += ["--sweep", self.sweep, "--sweep-config", self.sweep_config]
            for key, value in self.overrides.items():
                args += ["--set", f"{key}={toml_literal(value)}"]
            if self.from_runs:
                args += ["--from", ",".join(self.from_runs)]
        args += ["--runs-dir", self.runs_dir, "--device", self.device]
        if self.data_root:
            args += ["--data-root", self.data_root]
        return args


def toml_literal(value: Any, where: str = "--set") -> str:
    """The `--set` text that reads back as `value` (config.parse_value parses TOML literals)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, list):
        text = "[" + ", ".join(toml_literal(v, where) for v in value) + "]"
    else:
        raise DamtuiError(f"{where}: {type(value).__name__} values cannot be passed to --set")
    back = cfg.parse_value(text)
    same = (back == value or (isinstance(value, float) and math.isnan(value) and math.isnan(back)))
    if not same or type(back) is not type(value):
        raise DamtuiError(f"{where}: value {value!r} does not survive `--set`; write it differently")
    return text
