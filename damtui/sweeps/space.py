"""The `[search]` table of a sweep file: method, trial budget, metric, pruning and the space.

A search samples `--set` values instead of listing them (`grid`): random or TPE through Optuna.
Each key of `[search.space]` is a distribution over one preset key, applied to both stages of a
chain; `[search.space.pretrain]` / `[search.space.finetune]` (TOML `finetune.lr = {...}`) give one
stage's only. Strict like the rest of the file: unknown keys and impossible ranges are one-line
errors naming the key. Optuna itself is imported only where a search runs (damtui.sweeps.search).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STAGE_TABLES = ("pretrain", "finetune")
METRICS_ALLOWED = ("val_auc", "val_acc")  # chosen on validation: a search on test would be choosing on test
METHODS = ("random", "tpe")
PRUNERS = ("none", "median", "halving")


class Distribution(BaseModel):
    """`{ low = 1e-4, high = 0.1, log = true }`, `{ low = 2, high = 8, step = 2 }` or `{ choices = [...] }`.
    Whole-number `low` and `high` make an integer distribution."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    step: int | float | None = None
    choices: list[bool | int | float | str] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Distribution:
        if self.choices is not None:
            if self.low is not None or self.high is not None or self.step is not None or self.log:
                raise ValueError("give either choices = [...] or low and high (with log or step), not both")
            return self
        if self.low is None or self.high is None:
            raise ValueError("give low and high (a range) or choices = [...] (a list)")
        if not all(math.isfinite(v) for v in (self.low, self.high)) or self.low >= self.high:
            raise ValueError(f"low must be below high (got {self.low} and {self.high})")
        if self.log and (self.step is not None or self.low <= 0):
            raise ValueError("log = true needs low > 0 and no step")
        if self.step is not None and self.step <= 0:
            raise ValueError("step must be > 0")
        if self.is_int and self.step is not None and not isinstance(self.step, int):
            raise ValueError("an integer range (whole low and high) takes a whole step")
        return self

    @property
    def is_int(self) -> bool:
        return isinstance(self.low, int) and isinstance(self.high, int)

    def corners(self) -> list[Any]:
        """The values that bound what a trial may draw: checked against the preset schema before
        anything starts."""
        if self.choices is not None:
            return list(self.choices)
        return [self.low, self.high]

    def text(self) -> str:
        if self.choices is not None:
            return "one of " + ", ".join(repr(c) if isinstance(c, str) else str(c) for c in self.choices)
        kind = "int" if self.is_int else "float"
        extra = " log" if self.log else f" step {self.step}" if self.step is not None else ""
        return f"{kind} {self.low}..{self.high}{extra}"

    def optuna(self) -> Any:
        """The Optuna distribution (imports optuna)."""
        from optuna import distributions as d

        if self.choices is not None:
            return d.CategoricalDistribution(tuple(self.choices))
        if self.is_int:
            return d.IntDistribution(int(self.low), int(self.high), log=self.log,  # type: ignore[arg-type]
                                     step=int(self.step or 1))
        return d.FloatDistribution(float(self.low), float(self.high), log=self.log,  # type: ignore[arg-type]
                                   step=None if self.step is None else float(self.step))


class SearchSection(BaseModel):
    """`[search]`: how many trials, chosen how, judged by what, stopped early when."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    method: Literal["random", "tpe"] = Field(description="random search, or Optuna's TPE")
    trials: int = Field(gt=0, le=10_000, description="the trial budget: configurations to try")
    metric: Literal["val_auc", "val_acc"] = Field(
        default="val_auc", description="what a trial scores: the mean over its seeds at each run's result")
    seed: int = Field(default=0, ge=0, description="the sampler's seed")
    startup_trials: int = Field(default=5, ge=0, description="trials before TPE models and pruning starts")
    prune: Literal["none", "median", "halving"] = "none"
    warmup_epochs: int = Field(default=1, ge=0, description="epochs a trial trains before it may be pruned")
    space: dict[str, Any] = Field(min_length=1)

    def flat_space(self) -> dict[str, Distribution]:
        """Parameter name -> distribution: `lr` (both stages) or `finetune.lr` (one stage)."""
        out: dict[str, Distribution] = {}
        for key, value in self.space.items():
            if key in STAGE_TABLES and isinstance(value, dict) and not _is_distribution(value):
                for sub, dist in value.items():
                    out[f"{key}.{sub}"] = _distribution(dist, f"{key}.{sub}")
            else:
                out[key] = _distribution(value, key)
        return out

    def describe(self) -> dict[str, Any]:
        """What plan.json records of the search (a re-run with another search is refused)."""
        return {"method": self.method, "trials": self.trials, "metric": self.metric, "seed": self.seed,
                "startup_trials": self.startup_trials, "prune": self.prune, "warmup_epochs": self.warmup_epochs,
                "space": {k: d.model_dump() for k, d in self.flat_space().items()}}


class SpaceError(ValueError):
    """A bad distribution, with the key it belongs to."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


def _is_distribution(value: dict) -> bool:
    return bool(set(value) & {"low", "high", "choices"})


def _distribution(value: Any, key: str) -> Distribution:
    from pydantic import ValidationError

    if not isinstance(value, dict):
        raise SpaceError(key, "a distribution is a table: { low = ..., high = ... } or { choices = [...] }")
    try:
        return Distribution.model_validate(value)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key; a distribution has low, high, log, step or choices"
        raise SpaceError(f"{key}.{where}" if where else key, msg) from None


def split_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A trial's values as (both stages, pretrain only, finetune only) `--set` tables."""
    both = {k: v for k, v in params.items() if "." not in k}
    stage = {s: {k.split(".", 1)[1]: v for k, v in params.items() if k.startswith(f"{s}.")} for s in STAGE_TABLES}
    return both, stage["pretrain"], stage["finetune"]


def params_text(params: dict[str, Any]) -> str:
    """`lr=0.0123 finetune.margin=0.71`: short, for the console and the app."""
    def one(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, float) else str(v)
    return " ".join(f"{k}={one(v)}" for k, v in params.items())
