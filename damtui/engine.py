"""train(config, emit, stop_event) -> summary: one training stage, front-end agnostic.

The engine reports only through `emit(event)` (damtui.events) and stops within one batch when
`stop_event` is set. It imports no Textual. Randomness is derived from (seed, epoch) at the start
of every epoch, so a run resumed from `last.pt` repeats exactly what the uninterrupted run did.
"""

from __future__ import annotations

import math
import os
import platform
import random
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from damtui import datasets, metrics, runs
from damtui.config import Config, hyperparameters, validate
from damtui.devices import resolve_device
from damtui.errors import DamtuiError
from damtui.events import (
    BatchProgress, CheckpointSaved, EpochMetrics, Event, RunCancelled, RunFailed, RunFinished, RunStarted,
)
from damtui.pipeline import DataPipeline, epoch_order
from damtui.stages import Stage, finetune_model_from, make_model, num_outputs
from damtui.threads import apply_threads, resolve_threads

Emit = Callable[[Event], None]
PROGRESS_EVERY_S = 0.1  # batch-progress events are throttled; each costs a device sync


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("damtui", "torch", "torchvision", "libauc", "medmnist", "torchio", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def _seed_epoch(seed: int, epoch: int) -> None:
    s = (seed * 1_000_003 + epoch * 7919) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)  # also seeds every CUDA device


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


@dataclass
class _Source:
    """The pretrain run a fine-tune starts from."""

    path: Path
    state: dict[str, torch.Tensor]
    config: dict[str, Any]
    summary: dict[str, Any]


def _load_source(from_run: Path | None, config: Config) -> _Source | None:
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
    summary = metrics.summarize(rec.metrics)
    return _Source(Path(from_run), ckpt["model"], rec.config, summary)


def _check_resume(resume: Path, config: Config) -> tuple[dict[str, Any] | None, runs.RunRecord]:
    """The checkpoint to continue from, or None when the run must start over (no epoch saved)."""
    rec = runs.load_run(resume)
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
    # a run killed after its last checkpoint but before its final status is only finalized
    if ckpt["epoch"] > config.epochs or (ckpt["epoch"] == config.epochs and rec.info.status == runs.FINISHED):
        raise DamtuiError(
            f"{rec.info.run_id} already has {ckpt['epoch']} epochs; pass --epochs N with N larger to extend it"
        )
    return ckpt, rec


def resume_config(resume: Path, epochs: int | None = None) -> Config:
    """The config a resumed run continues with: its own, with an optional new epoch count."""
    rec = runs.load_run(resume)
    data = dict(rec.config)
    if epochs is not None:
        data["epochs"] = epochs
    return validate(data, f"{resume}/{runs.CONFIG}")


def train(
    config: Config,
    emit: Emit,
    stop_event: threading.Event,
    *,
    runs_dir: Path,
    data_root: Path | None = None,
    device: str = "auto",
    from_run: Path | None = None,
    resume: Path | None = None,
    runtime_extra: dict[str, Any] | None = None,
    run_name: str | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train one stage. Bad input found before the run starts raises DamtuiError; anything that
    goes wrong afterwards marks the run failed, emits RunFailed and is returned in the summary."""
    run = prepare(config, emit, stop_event, runs_dir=runs_dir, data_root=data_root, device=device,
                  from_run=from_run, resume=resume, runtime_extra=runtime_extra, run_name=run_name,
                  threads=threads)
    run.open()
    return run.loop.run(run.start_epoch)


@dataclass
class Prepared:
    """A run checked and built (model, stage, data) but without a folder yet: `open()` creates or
    reopens it. Split so that packed training can check every member before writing anything."""

    loop: "_Loop"
    start_epoch: int
    best_epoch: int
    best_val: float
    source_summary: dict[str, Any] | None
    open_writer: Callable[[], runs.RunWriter]

    def open(self) -> None:
        """Create (or reopen) the run folder, announce the run, and load its finished epochs."""
        loop = self.loop
        loop.writer = self.open_writer()
        loop.emit(RunStarted(loop.writer.run_id, str(loop.writer.path), loop.c.as_dict(), loop.pipeline.sizes(),
                             _device_name(loop.device), self.start_epoch, loop.c.epochs))
        loop.best_epoch, loop.best_val, loop.source_summary = self.best_epoch, self.best_val, self.source_summary
        loop.rows, _ = runs.read_metrics(loop.writer.path)


def prepare(
    config: Config,
    emit: Emit,
    stop_event: threading.Event,
    *,
    runs_dir: Path,
    data_root: Path | None = None,
    device: str = "auto",
    from_run: Path | None = None,
    resume: Path | None = None,
    runtime_extra: dict[str, Any] | None = None,
    run_name: str | None = None,
    pipeline: DataPipeline | None = None,
    threads: int | None = None,
) -> Prepared:
    """Everything `train` does before the first epoch except touching the runs dir. `pipeline`
    shares one device-resident copy of the data between runs of the same dataset. `threads` is
    the `--threads` flag (damtui.threads has the precedence)."""
    apply_threads(resolve_threads(threads, config.threads))
    dev = resolve_device(device)
    splits = pipeline.splits if pipeline is not None else datasets.load(config.dataset, data_root)
    spec = splits.spec
    if config.dual_sampler and spec.multilabel:
        raise DamtuiError("dual_sampler works for binary datasets only; use --set dual_sampler=false")

    ckpt: dict[str, Any] | None = None
    source: _Source | None = None
    if resume is not None:
        ckpt, rec = _check_resume(Path(resume), config)
        from_run_id = rec.runtime.get("from_run")
        source_summary = rec.runtime.get("from_run_summary")
        if ckpt is None and from_run_id:  # a fine-tune starting over needs its source again
            source = _load_source(Path(resume).parent / from_run_id, config)
    else:
        source = _load_source(Path(from_run) if from_run else None, config)
        if source is not None:
            config = config.model_copy(update={"width": int(source.config.get("width", config.width))})
        from_run_id = source.path.name if source else None
        source_summary = source.summary if source else None

    _seed_epoch(config.seed, -1)
    if source is not None:
        try:
            model = finetune_model_from(config, spec, source.state)
        except (RuntimeError, KeyError, TypeError, ValueError):
            raise DamtuiError(f"the weights in {source.path / runs.BEST} do not fit a {spec.flag} ResNet of"
                              f" width {config.width}; pick another pretrain run") from None
    else:
        model = make_model(config, spec, num_outputs(spec, config.stage))
    model = model.to(dev)
    fast_cuda = dev.type == "cuda" and config.pipeline == "fast"
    if fast_cuda:
        model = model.to(memory_format=_memory_format(spec.is_3d))
        torch.backends.cudnn.benchmark = True
    if pipeline is None:
        workers = 0 if dev.type == "cpu" else min(12 if spec.is_3d else 4, os.cpu_count() or 1)
        pipeline = DataPipeline(splits, config, dev, workers=workers)
    stage = Stage(config, model, spec, splits.positive_share("train"), dev)

    loop = _Loop(config, spec, model, stage, pipeline, emit, stop_event, dev)
    start_epoch, best_epoch, best_val = 0, 0, -math.inf
    if ckpt is not None:
        try:
            loop.load_state(ckpt)
        except (RuntimeError, KeyError, TypeError, ValueError):
            raise DamtuiError(f"{Path(resume) / runs.LAST} does not fit this run's model or optimizer; it cannot"
                              " be resumed: start a new run with the same settings") from None
        start_epoch, best_epoch, best_val = int(ckpt["epoch"]), int(ckpt["best_epoch"]), float(ckpt["best_val"])

    def open_writer() -> runs.RunWriter:
        if resume is not None:  # with no epoch saved the run starts over in its own folder
            return runs.RunWriter.reopen(Path(resume), config.epochs, start_epoch)
        runtime = {
            "versions": library_versions(),
            "device": _device_name(dev),
            "host": socket.gethostname(),
            "data_root": str(datasets.data_root(data_root)),
            "data_md5": datasets.file_md5(datasets.dataset_path(spec.flag, datasets.data_root(data_root))),
            "from_run": from_run_id,
            "from_run_summary": source_summary,
            "argv": sys.argv,
            **(runtime_extra or {}),
        }
        return runs.RunWriter.create(Path(runs_dir), config.as_dict(), runtime, name=run_name)

    return Prepared(loop, start_epoch, best_epoch, best_val, source_summary, open_writer)


class _Loop:
    """The epoch loop and its bookkeeping, split out of train() to keep each piece readable."""

    writer: runs.RunWriter  # these four are set by Prepared.open, once the run folder exists
    best_epoch: int
    best_val: float
    source_summary: dict[str, Any] | None

    def __init__(self, config: Config, spec: datasets.DatasetSpec, model: torch.nn.Module, stage: Stage,
                 pipeline: DataPipeline, emit: Emit, stop: threading.Event, device: torch.device) -> None:
        self.c, self.spec, self.model, self.stage = config, spec, model, stage
        self.pipeline, self.emit, self.stop, self.device = pipeline, emit, stop, device
        self.autocast = device.type == "cuda" and config.amp
        self.memory_format = _memory_format(spec.is_3d) if device.type == "cuda" and config.pipeline == "fast" else None
        self.ema = None
        if config.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
        self.forward = torch.compile(model) if config.compile and device.type == "cuda" else model
        self.rows: list[dict[str, Any]] = []

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights that are evaluated and saved as best.pt: the EMA ones when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def load_state(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.stage.load_state_dict(ckpt["stage"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])

    def run(self, start: int) -> dict[str, Any]:
        try:
            for epoch in range(start, self.c.epochs):
                row = self._epoch(epoch)
                if row is None:
                    return self.end(runs.CANCELLED, "cancelled")
                self.record(epoch, row)
            return self.end(runs.FINISHED, "")
        except Exception as err:
            return self.fail_with(err)

    def record(self, epoch: int, row: dict[str, Any]) -> None:
        """Book one finished epoch: best.pt if it is the best on validation, metrics, last.pt, status."""
        is_best = row["val_auc"] is not None and row["val_auc"] > self.best_val
        if is_best:
            self.best_epoch, self.best_val = epoch + 1, row["val_auc"]
            self._save_best(epoch + 1, row)
        self.writer.append_metrics(row)
        self.rows.append(row)
        self._save_last(epoch + 1, self.best_epoch, self.best_val)
        self.writer.write_status(runs.RUNNING, epoch + 1, self.c.epochs)
        self.emit(EpochMetrics(epoch + 1, row, self.best_epoch, is_best))

    def fail_with(self, err: Exception) -> dict[str, Any]:
        """End the run as failed with a one-line reason; the traceback of a bug goes to error.log."""
        if isinstance(err, DamtuiError):
            return self.fail(str(err))
        if isinstance(err, torch.cuda.OutOfMemoryError):
            b = self.c.batch_size
            return self.fail(f"CUDA out of memory at batch size {b}; try --set batch_size={max(1, b // 2)}")
        self.writer.write_error("".join(traceback.format_exception(err)))
        return self.fail(f"{type(err).__name__}: {err} (traceback in {self.writer.path}/error.log)")

    # -- one epoch

    def _epoch(self, epoch: int) -> dict[str, Any] | None:
        c, model, stage = self.c, self.model, self.stage
        _seed_epoch(c.seed, epoch)
        stage.start_epoch(epoch)
        order = epoch_order(self.pipeline.np_labels["train"], c, epoch)
        n_batches = self.pipeline.num_train_batches(order)
        model.train()
        t0 = last_emit = time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        seen, scores, labels = 0, [], []
        for i, (x, y) in enumerate(self.pipeline.train_batches(order)):
            if self.stop.is_set():
                return None
            if self.memory_format is not None:
                x = x.contiguous(memory_format=self.memory_format)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                out = self.forward(x)
            loss = stage.loss(out, y)
            stage.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stage.optimizer.step()
            if self.ema is not None:
                update_ema(self.ema, model)
            loss_sum += loss.detach().reshape(()) * len(y)
            seen += len(y)
            scores.append(stage.scores(out.detach()))
            labels.append(y)
            now = time.perf_counter()
            if now - last_emit >= PROGRESS_EVERY_S or i + 1 == n_batches:
                last_emit = now
                rate = seen / max(now - t0, 1e-9)
                left = (n_batches - i - 1) * (now - t0) / (i + 1)
                value = float(loss.detach())
                if not math.isfinite(value):
                    break  # stop now, not at the end of the epoch: the check below fails the run
                self.emit(BatchProgress(epoch + 1, i + 1, n_batches, value, rate, left))
                self.writer.heartbeat()
        train_s = time.perf_counter() - t0
        train_loss = float(loss_sum) / max(seen, 1)
        self.check_finite(train_loss, epoch)
        t1 = time.perf_counter()
        train = (torch.cat(scores).cpu().numpy(), torch.cat(labels).cpu().numpy())
        return epoch_row(epoch, train_loss, train, self._predict("val"), self._predict("test"), stage.lr,
                         seen, t0, t1, train_s)

    def check_finite(self, train_loss: float, epoch: int) -> None:
        if not math.isfinite(train_loss):
            kept = "best.pt is kept" if any(r.get("val_auc") is not None for r in self.rows) else "no checkpoint yet"
            raise DamtuiError(
                f"loss became {train_loss} in epoch {epoch + 1}; {kept}."
                f" Lower the learning rate (now --set lr={self.c.lr:g})"
            )

    def _predict(self, split: str) -> "Scored":
        return score_split(self.eval_model.eval(), self.pipeline, split, self.c, self.spec.multilabel,
                           self.device, self.memory_format)

    # -- checkpoints and endings

    def _save_best(self, epoch: int, row: dict[str, Any]) -> None:
        self.writer.save_checkpoint(runs.BEST, _to_cpu({
            "epoch": epoch, "model": self.eval_model.state_dict(), "config": self.c.as_dict(),
            "num_outputs": self.model.fc.out_features, "val_auc": row["val_auc"],
        }), on_done=lambda path: self.emit(CheckpointSaved(epoch, str(path), "best")))

    def _save_last(self, epoch: int, best_epoch: int, best_val: float) -> None:
        self.writer.save_checkpoint(runs.LAST, _to_cpu({
            "epoch": epoch, "model": self.model.state_dict(), "stage": self.stage.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "best_epoch": best_epoch, "best_val": best_val, "config": self.c.as_dict(),
        }), on_done=lambda path: self.emit(CheckpointSaved(epoch, str(path), "last")))

    def _summary(self, state: str) -> dict[str, Any]:
        s = {"run_id": self.writer.run_id, "status": state, "dataset": self.c.dataset,
             "stage": self.c.stage, "preset": self.c.preset, **metrics.summarize(self.rows)}
        s["answer"] = two_stage_answer(s, self.source_summary)
        return s

    def end(self, state: str, message: str) -> dict[str, Any]:
        self.writer.flush()
        summary = self._summary(state)
        self.writer.write_summary(summary)
        self.writer.write_status(state, len(self.rows), self.c.epochs, message)
        self.emit(RunFinished(summary) if state == runs.FINISHED else RunCancelled(len(self.rows), summary))
        return summary

    def fail(self, message: str) -> dict[str, Any]:
        summary = {**self._summary(runs.FAILED), "message": message}
        for write in (self.writer.flush, lambda: self.writer.write_summary(summary),
                      lambda: self.writer.write_status(runs.FAILED, len(self.rows), self.c.epochs, message)):
            try:
                write()
            except DamtuiError:
                pass  # disk full: the status stays 'running' and readers show it as crashed
        self.emit(RunFailed(message, len(self.rows)))
        return summary


Scored = tuple[np.ndarray, np.ndarray]  # scores (N, L) and labels (N, L) of one split


def epoch_row(epoch: int, train_loss: float, train: Scored, val: Scored, test: Scored, lr: float, seen: int,
              t0: float, t1: float, train_s: float) -> dict[str, Any]:
    """One metrics.jsonl row: every split scored at the threshold chosen on validation."""
    thr = metrics.choose_threshold(val[1], val[0])
    row: dict[str, Any] = {"epoch": epoch + 1, "train_loss": train_loss}
    for split, (s, y) in {"train": train, "val": val, "test": test}.items():
        for k, v in metrics.split_metrics(y, s, thr).items():
            row[f"{split}_{k}"] = v
    row.update({
        "threshold": thr, "lr": lr, "epoch_s": time.perf_counter() - t0,
        "train_s": train_s, "eval_s": time.perf_counter() - t1, "images_per_s": seen / max(train_s, 1e-9),
    })
    if math.isnan(row["val_auc"]):
        row["val_auc"] = None
    return row


@torch.no_grad()
def update_ema(ema: Any, model: torch.nn.Module) -> None:
    """`AveragedModel.update_parameters` without its per-step host sync: that method moves its step
    count (a CPU tensor) to the GPU on every call, a synchronous copy that stalls a launch-bound
    step. Same math, bit for bit: the averaged model's own `multi_avg_fn`, per dtype group."""
    mine = [*ema.module.parameters(), *ema.module.buffers()]
    theirs = [*model.parameters(), *model.buffers()]
    if int(ema.n_averaged) == 0:
        for a, b in zip(mine, theirs, strict=True):
            a.detach().copy_(b.detach())
    else:
        groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for a, b in zip(mine, theirs, strict=True):
            group = groups.setdefault(a.dtype, ([], []))
            group[0].append(a.detach())
            group[1].append(b.detach())
        for averaged, current in groups.values():
            ema.multi_avg_fn(averaged, current, ema.n_averaged)
    ema.n_averaged += 1


def _memory_format(is_3d: bool) -> torch.memory_format:
    return torch.channels_last_3d if is_3d else torch.channels_last


def _to_cpu(obj: Any) -> Any:
    """A CPU snapshot of a nested checkpoint payload, safe to write while training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


@torch.inference_mode()
def score_split(model: torch.nn.Module, pipeline: DataPipeline, split: str, config: Config, multilabel: bool,
                device: torch.device, memory_format: torch.memory_format | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N, L) and labels of one split in eval batches, averaged over a horizontal flip when
    the config asks for flip TTA; the one evaluation path of training and of saved runs."""
    from damtui.stages import output_scores

    out_s, out_y = [], []
    for x, y in pipeline.eval_batches(split):
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        views = [x, x.flip(-1)] if config.tta_flip else [x]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda" and config.amp):
            scores = sum(output_scores(model(v), config.stage, multilabel) for v in views) / len(views)
        out_s.append(scores)
        out_y.append(y)
    return torch.cat(out_s).cpu().numpy(), torch.cat(out_y).cpu().numpy()


def predict_best(run_dir: Path, data_root: Path | None = None, device: str = "auto",
                 splits: tuple[str, ...] = ("val", "test")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scores and labels of a run's best.pt on the given splits, evaluated like the run did
    (eval batches, flip TTA if the run used it): the building block of seed ensembles."""
    rec = runs.load_run(run_dir)
    config = validate(dict(rec.config), f"{run_dir}/{runs.CONFIG}")
    ckpt = runs.load_checkpoint(Path(run_dir) / runs.BEST)
    dev = resolve_device(device)
    data = datasets.load(config.dataset, data_root)
    model = make_model(config, data.spec, int(ckpt["num_outputs"]))
    model.load_state_dict(ckpt["model"])
    model = model.to(dev).eval()
    pipeline = DataPipeline(data, config, dev)
    return {split: score_split(model, pipeline, split, config, data.spec.multilabel, dev) for split in splits}


def ensemble_metrics(run_dirs: list[Path], data_root: Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Average the best.pt scores of several runs (seeds) and score the ensemble honestly: the
    threshold is chosen on the averaged validation scores, test is only read."""
    preds = [predict_best(p, data_root, device) for p in run_dirs]
    val_s = np.mean([p["val"][0] for p in preds], axis=0)
    test_s = np.mean([p["test"][0] for p in preds], axis=0)
    val_y, test_y = preds[0]["val"][1], preds[0]["test"][1]
    thr = metrics.choose_threshold(val_y, val_s)
    return {"members": [Path(p).name for p in run_dirs], "val_auc": metrics.auc(val_y, val_s),
            **{f"test_{k}": v for k, v in metrics.split_metrics(test_y, test_s, thr).items()}}


def two_stage_answer(summary: dict[str, Any], source_summary: dict[str, Any] | None) -> dict[str, Any]:
    """The pipeline's final answer: the best validation epoch across both stages (pretrain and
    finetune), with test metrics at that epoch. Never below the pretrain stage in val AUC."""
    keys = ("best_epoch", "best_val_auc", "best_test_auc", "best_test_acc", "best_test_acc_thr")
    mine = {"stage": summary.get("stage"), **{k: summary.get(k) for k in keys}}
    if not source_summary or source_summary.get("best_val_auc") is None:
        return mine
    theirs = {"stage": "pretrain", **{k: source_summary.get(k) for k in keys}}
    if mine["best_val_auc"] is None or theirs["best_val_auc"] > mine["best_val_auc"]:
        return theirs
    return mine
