"""Preset schema, strict validation and `--set key=value` overrides.

Presets are TOML data. Every preset is checked by one pydantic model so an unknown key, a wrong
type or an impossible value is an error naming the file and the key, whether it comes from a
shipped preset, a user preset, a `--set` override or a field edited in the TUI.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from damtui.errors import DamtuiError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def shipped_presets_dir() -> Path:
    """The shipped presets: inside the installed package (a wheel maps the repository's top-level
    presets/ to damtui/presets/), else at the top of the checkout (editable installs, PYTHONPATH)."""
    installed = Path(__file__).parent / "presets"
    return installed if installed.is_dir() else Path(__file__).parents[1] / "presets"


SHIPPED_PRESETS = shipped_presets_dir()
ANY_DATASET = "*"
# A field's role (json_schema_extra): "provenance" says where the values came from (the preset's
# name, source and description), "runtime" how a run executes (threads); neither changes what a
# run learns, so `hyperparameters` leaves both out of every comparison of configs.
PROVENANCE = {"role": "provenance"}
RUNTIME = {"role": "runtime"}
MAX_EPOCHS = 10_000  # a run's metrics.jsonl is bounded by it (damtui.store.files reads no more)
MAX_SEED = 2**31 - 1  # the per-epoch seeds are taken modulo 2**31: a larger seed repeats a smaller one


class Config(BaseModel):
    """One training stage, fully specified. Saved with every run so it can be re-run exactly."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)

    preset: str = Field(default="", json_schema_extra=PROVENANCE)
    dataset: str
    stage: Literal["pretrain", "finetune"]
    source: str = Field(default="", description="where these values come from (report table, tuning run)",
                        json_schema_extra=PROVENANCE)
    description: str = Field(default="", json_schema_extra=PROVENANCE)
    epochs: int = Field(gt=0, le=MAX_EPOCHS)
    batch_size: int = Field(ge=2, description="images per step (BatchNorm needs at least 2)")
    eval_batch_size: int = Field(default=1024, gt=0)
    lr: float = Field(gt=0)
    optimizer: Literal["sgd", "adam", "pesg"]
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0)
    loss: Literal["ce", "aucm"]
    class_weighting: bool = False
    milestones: list[float] | None = Field(
        default=None,
        description="fractions of the epochs at which lr is divided by decay_factor "
        "(finetune: PESG's update_regularizer); default none for pretrain, [0.5, 0.75] finetune",
    )
    decay_factor: float = Field(default=10.0, ge=1)
    margin: float = Field(default=1.0, gt=0)
    epoch_decay: float = Field(default=0.0, ge=0)
    dual_sampler: bool = False
    sampling_rate: float = Field(default=0.5, gt=0, lt=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    width: int = Field(default=64, gt=0, description="channels of the first ResNet stage")
    augment: bool = True
    pipeline: Literal["fast", "reference"] = "fast"
    head_transplant: bool = True
    amp: Literal["auto", "bf16", "off"] = Field(
        default="auto",
        description="mixed precision: auto = bf16 autocast on CUDA, fp32 on the CPU; bf16 = bf16 autocast"
        " on every device (7x slower than fp32 on a CPU without bf16 units); off = fp32",
    )
    compile: bool = Field(
        default=False,
        description="torch.compile the model, mode reduce-overhead (CUDA graphs on CUDA); fixed batch"
        " shapes: an epoch's last partial batch is dropped",
    )
    ema: float = Field(default=0.0, ge=0, lt=1, description="EMA decay of the weights per step; 0 = off")
    tta_flip: bool = Field(default=False, description="average eval scores over a horizontal flip")
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    threads: int | None = Field(
        default=None, ge=1,
        description="CPU threads for torch (default: $DAMTUI_THREADS, else the cores not busy)",
        json_schema_extra=RUNTIME,
    )

    @field_validator("amp", mode="before")
    @classmethod
    def _amp_of_bool(cls, value: Any) -> Any:
        return amp_of_bool(value)

    @model_validator(mode="after")
    def _stage_matches_loss(self) -> Config:
        if self.stage == "pretrain" and (self.loss != "ce" or self.optimizer == "pesg"):
            raise ValueError("stage 'pretrain' needs loss = 'ce' and optimizer 'sgd' or 'adam'")
        if self.stage == "finetune" and (self.loss != "aucm" or self.optimizer != "pesg"):
            raise ValueError("stage 'finetune' needs loss = 'aucm' and optimizer = 'pesg'")
        for m in self.milestones or []:
            if not 0 < m < 1:
                raise ValueError(f"milestones are fractions of the epochs in (0, 1), got {m}")
        ms = self.milestones or []
        if any(b <= a for a, b in zip(ms, ms[1:])):
            raise ValueError(f"milestones must increase, like [0.5, 0.75]; got {ms}")
        return self

    def resolved_milestones(self) -> list[int]:
        """Epoch indices (0-based, > 0) at which the lr drops; never before the first step."""
        fracs = self.milestones
        if fracs is None:
            fracs = [0.5, 0.75] if self.stage == "finetune" else []
        return sorted({max(1, int(f * self.epochs)) for f in fracs if int(f * self.epochs) > 0})

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


def amp_of_bool(value: Any) -> Any:
    """`amp` was a bool until "auto"/"bf16"/"off": true meant bf16 on CUDA and fp32 on the CPU,
    which is "auto", false is "off". Old run folders and `--set amp=true` keep their meaning."""
    return {True: "auto", False: "off"}[value] if isinstance(value, bool) else value


def _keys_with(role: dict[str, str]) -> frozenset[str]:
    return frozenset(k for k, f in Config.model_fields.items() if f.json_schema_extra == role)


PROVENANCE_KEYS = _keys_with(PROVENANCE)
RUNTIME_KEYS = _keys_with(RUNTIME)


def hyperparameters(config: Config | Mapping[str, Any], ignore: Iterable[str] = ()) -> dict[str, Any]:
    """THE identity rule: the config as compared between runs, without provenance and runtime
    keys and the keys in `ignore`. `hyperparameters(c, ["seed"])` is "same config but the seed"
    (seed groups, packing, sweeps); `EXTENSION_KEYS` ignored is "the same run, extended" (resume)."""
    data = config.as_dict() if isinstance(config, Config) else dict(config)
    if "amp" in data:
        data["amp"] = amp_of_bool(data["amp"])  # a run saved before amp had three values
    drop = PROVENANCE_KEYS | RUNTIME_KEYS | set(ignore)
    return {k: v for k, v in data.items() if k not in drop}


def same_but_seed(a: Config | Mapping[str, Any], b: Config | Mapping[str, Any]) -> bool:
    return hyperparameters(a, ["seed"]) == hyperparameters(b, ["seed"])


# What an extension (`damtui train --resume RUN --epochs N`) changes: the epochs, and the lr schedule
# that comes with them (milestones are fractions of the epochs).
EXTENSION_KEYS = ("epochs", "milestones")


def same_run(a: Config | Mapping[str, Any], b: Config | Mapping[str, Any]) -> bool:
    """One run's config before and after an extension (what a resume may continue)."""
    return hyperparameters(a, EXTENSION_KEYS) == hyperparameters(b, EXTENSION_KEYS)


def extended(config: Config, epochs: int, done: int) -> Config:
    """The config of a run taken to `epochs` in all after `done` epochs: the lr drops it has had,
    then those of the new length from epoch `done` on (what the schedule does when resumed), written
    as milestones, so that the saved config says the schedule the run trained with."""
    longer = config.model_copy(update={"epochs": epochs})
    drops = [m for m in config.resolved_milestones() if m < done]
    drops += [m for m in longer.resolved_milestones() if m >= done]
    if drops == longer.resolved_milestones():
        return longer
    out = validate({**longer.as_dict(), "milestones": [round((m + 0.5) / epochs, 6) for m in drops]},
                   "the extended schedule")
    assert out.resolved_milestones() == drops
    return out


def _error_rank(error: Any) -> int:
    """Unknown keys first (a typo also makes its key 'missing'), then wrong values, then missing keys."""
    return {"extra_forbidden": 0, "missing": 2}.get(error["type"], 1)


def _explain(err: ValidationError, where: str) -> DamtuiError:
    errors = sorted(err.errors(), key=_error_rank)
    first = errors[0]
    key = ".".join(str(p) for p in first["loc"]) or "(preset)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, Config.model_fields, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        msg = f"unknown key; {hint}`damtui presets show NAME` lists the valid keys"
    elif first["type"] == "missing":
        msg = "missing key"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return DamtuiError(f"{where}: key '{key}': {msg}{more}")


def validate(data: dict[str, Any], where: str) -> Config:
    """Build a Config or raise a one-line DamtuiError naming `where` and the key."""
    try:
        return Config.model_validate(data)
    except ValidationError as err:
        raise _explain(err, where) from None


def to_toml(config: Config) -> str:
    """The config as a preset file that `load_preset_file` reads back to the same config: TOML
    literals, `preset` left out (a file's name is its preset name), unset keys as comments."""
    lines = []
    for key, value in config.as_dict().items():
        if key == "preset":
            continue
        if value is None:
            lines.append(f"# {key}: not set, its default applies")
        else:
            lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def parse_value(text: str) -> Any:
    """Read a `--set` value as a TOML literal (1e-3, true, [0.5, 0.75]); else keep the string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def parse_overrides(pairs: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DamtuiError(f"--set {pair!r}: write it as key=value, for example --set lr=0.01")
        out[key.strip()] = parse_value(value.strip())
    return out


def apply_overrides(config: Config, overrides: dict[str, Any], where: str = "--set") -> Config:
    """Return a new Config with overrides applied, validated by the same schema as files."""
    if not overrides:
        return config
    return validate({**config.as_dict(), **overrides}, where)


# ----------------------------------------------------------------------------- preset files


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    config: Config
    user: bool


def user_preset_dir() -> Path:
    if env := os.environ.get("DAMTUI_PRESETS"):
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "damtui" / "presets"


def load_preset_file(path: Path) -> Config:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DamtuiError(f"{path}: no such preset file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise DamtuiError(f"{path}: not valid TOML ({err})") from None
    data["preset"] = Path(path).stem
    if "dataset" not in data:
        raise DamtuiError(f"{path}: key 'dataset': missing key")
    return validate(data, str(path))


def list_presets() -> dict[str, Preset]:
    """Shipped presets, then user presets adding to or shadowing them by name."""
    found: dict[str, Preset] = {}
    for folder, user in ((SHIPPED_PRESETS, False), (user_preset_dir(), True)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            found[path.stem] = Preset(path.stem, path, load_preset_file(path), user)
    return found


def find_preset(name: str, dataset: str, stage: str) -> Config:
    """Resolve NAME or its short form (`report` -> `<dataset>-<stage>-report`) for a dataset."""
    presets = list_presets()
    candidates = [name, f"{dataset}-{stage}-{name}", f"any-{stage}-{name}"]
    if Path(name).suffix == ".toml" and Path(name).is_file():
        config = load_preset_file(Path(name))
    else:
        hit = next((presets[c] for c in candidates if c in presets), None)
        if hit is None:
            names = sorted(
                p.name for p in presets.values()
                if p.config.dataset in (dataset, ANY_DATASET) and p.config.stage == stage
            )
            raise DamtuiError(
                f"no preset {name!r} for {dataset} {stage}; choose one of: {', '.join(names)}"
                " (`damtui presets list`)"
            )
        config = hit.config
    if config.stage != stage:
        raise DamtuiError(f"preset {config.preset!r} is a {config.stage} preset, not {stage}")
    if config.dataset not in (dataset, ANY_DATASET):
        raise DamtuiError(
            f"preset {config.preset!r} is for {config.dataset}, not {dataset};"
            f" `damtui presets list --dataset {dataset}` shows its presets"
        )
    return config.model_copy(update={"dataset": dataset})


def default_preset_name(dataset: str) -> str:
    return "demo" if dataset.startswith("synthetic") else "report"
