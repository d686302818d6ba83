"""Checks before a run starts from saved runs: the pretrain run a fine-tune starts from (`--from`)
and the run being resumed (`--resume`). Each refuses with one line that says what to do."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from damtui.store import runs
from damtui.config import Config, hyperparameters, validate
from damtui.errors import DamtuiError
from damtui.records import RunSummary

if TYPE_CHECKING:
    import torch


@dataclass
class Source:
    """The pretrain run a fine-tune starts from."""

    path: Path
    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    summary: RunSummary
    scores: runs.Scores | None = None  # its scores.npz, of best.pt's epoch: the fine-tune keeps a copy


def load_source(from_run: Path | None, config: Config) -> Source | None:
    if config.stage != "finetune":
        if from_run is not None:
            raise DamtuiError("--from is only for --stage finetune")
        return None
    if from_run is None:
        raise DamtuiError(
            "a finetune starts from a pretrain run: add --from RUN (`damtui runs list` shows them)"
        )
    rec = runs.load_run(from_run)
    if rec.config.get("dataset") != config.dataset:
        raise DamtuiError(
            f"--from {rec.info.run_id} is a {rec.config.get('dataset')} run; the finetune is"
            f" {config.dataset}: pick a pretrain run of {config.dataset}"
        )
    if rec.config.get("stage") != "pretrain":
        raise DamtuiError(f"--from {rec.info.run_id} is a {rec.config.get('stage')} run; pick a pretrain run")
    ckpt = runs.load_checkpoint(Path(from_run) / runs.BEST)
    if not isinstance(ckpt.get("model"), dict):
        raise DamtuiError(f"{Path(from_run) / runs.BEST} has no model weights; pick another pretrain run")
    from damtui.store.results import with_intervals

    scores = runs.load_scores(from_run)
    summary = with_intervals(runs.summary_of(rec), scores)  # the answer may be its epoch
    if scores is not None and (summary.best is None or scores.epoch != summary.best.epoch):
        scores = None  # not of the checkpoint the fine-tune starts from
    return Source(Path(from_run), ckpt["model"], rec.config, summary, scores)


def _undamaged(resume: Path) -> runs.RunRecord:
    rec = runs.load_run(resume)
    if rec.info.status == runs.DAMAGED:
        raise DamtuiError(f"{rec.info.message}; the run cannot be resumed (nothing was changed):"
                          " start a new run with the same settings")
    return rec


def check_resume(resume: Path, config: Config) -> tuple[dict[str, Any] | None, runs.RunRecord]:
    """The checkpoint to continue from, or None when the run must start over (no epoch saved)."""
    runs.refuse_links(resume)
    rec = _undamaged(resume)
    if (Path(resume) / runs.LAST).exists() and not (Path(resume) / runs.METRICS).exists():
        raise DamtuiError(f"{rec.info.run_id} has {runs.LAST} but no {runs.METRICS}: the folder is damaged and"
                          " cannot be resumed; start a new run with the same settings")
    if rec.info.status == runs.RUNNING:
        raise DamtuiError(
            f"{rec.info.run_id} is still running (pid {rec.info.pid}); stop it first or follow it in `damtui`"
        )
    saved = dict(rec.config)
    if hyperparameters(saved, ["epochs"]) != hyperparameters(config, ["epochs"]):
        raise DamtuiError("--resume continues the run's own config; only --epochs may change")
    last = Path(resume) / runs.LAST
    if not last.exists():
        if len(rec.metrics) <= 1:  # killed before its first checkpoint landed: start it over
            return None, rec
        raise DamtuiError(
            f"{rec.info.run_id} has no {runs.LAST} but {len(rec.metrics)} finished epochs: the folder was"
            " damaged; start a new run with the same settings"
        )
    ckpt = runs.load_checkpoint(last)
    try:
        ok = (isinstance(ckpt["model"], dict) and isinstance(ckpt["stage"], dict)
              and hyperparameters(ckpt["config"], ["epochs"]) == hyperparameters(saved, ["epochs"]))
        ckpt["epoch"], ckpt["best_epoch"], ckpt["best_val"] = (
            int(ckpt["epoch"]), int(ckpt["best_epoch"]), float(ckpt["best_val"]))
    except (KeyError, TypeError, ValueError):
        ok = False
    if not ok:
        raise DamtuiError(f"{last} does not belong to this run (fields or config differ); it cannot be resumed:"
                          " start a new run with the same settings")
    if ckpt["epoch"] > len(rec.metrics):  # last.pt may lag the metrics by an epoch, never lead them
        raise DamtuiError(f"{Path(resume) / runs.METRICS} has {len(rec.metrics)} epochs but {runs.LAST} is at epoch"
                          f" {ckpt['epoch']}: the folder is damaged; start a new run with the same settings")
    # a run killed after its last checkpoint but before its final status is only finalized
    if ckpt["epoch"] > config.epochs or (ckpt["epoch"] == config.epochs and rec.info.status == runs.FINISHED):
        raise DamtuiError(
            f"{rec.info.run_id} already has {ckpt['epoch']} epochs; pass --epochs N with N larger to extend it"
        )
    return ckpt, rec


def resume_config(resume: Path, epochs: int | None = None) -> Config:
    """The config a resumed run continues with: its own, with an optional new epoch count. An
    extension (`--epochs N`) killed before it ended keeps its target: status.json records it."""
    if epochs is not None and epochs < 1:
        raise DamtuiError(f"--epochs takes a number of epochs >= 1 (got {epochs})")
    rec = _undamaged(resume)
    data = dict(rec.config)
    if epochs is not None:
        data["epochs"] = epochs
    elif isinstance(data.get("epochs"), int) and rec.info.epochs_planned > data["epochs"]:
        data["epochs"] = rec.info.epochs_planned
    return validate(data, f"{resume}/{runs.CONFIG}")
