"""train(config, emit, stop_event) -> summary: one training stage, front-end agnostic.

The orchestrator: `prepare` checks the inputs and builds a run (model, stage, data) without
touching the runs dir; `Prepared.open` creates or reopens its folder; `run_epochs` is the ONE
epoch loop, over a Trainer (one model, or K seeds stacked: damtui.train.packing) and one RunRecorder
per run. The engine reports only through `emit(event)` (damtui.events), stops within one batch
when `stop_event` is set and imports no Textual. Randomness is derived from (seed, epoch) at the
start of every epoch, so a run resumed from `last.pt` repeats exactly what the uninterrupted run
did.
"""

from __future__ import annotations

import math
import os
import platform
import socket
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import torch

from damtui.data import datasets
from damtui.train import health
from damtui.analysis import metrics
from damtui.store import runs
from damtui.config import Config
from damtui.records import EpochRow, RunSummary
from damtui.data.datasets import DatasetSpec
from damtui.train.devices import resolve_device
from damtui.errors import DamtuiError
from damtui.events import BatchProgress, Event
from damtui.train.pipeline import DataPipeline
from damtui.train.recorder import RunRecorder
from damtui.train.resume import Source, check_resume, load_source
from damtui.train.stages import Stage, finetune_model_from, make_model, num_outputs
from damtui.train.threads import apply_threads, run_threads, stored_threads
from damtui.train.trainer import RunState, SingleTrainer, Trainer, make_ema, memory_format, seed_epoch

Emit = Callable[[Event], None]
PROGRESS_EVERY_S = 1.0  # batch-progress events at most this often (they cost the front end, not the device)


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("damtui", "torch", "torchvision", "libauc", "medmnist", "torchio", "numpy"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "-"
    return out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({platform.processor() or platform.machine()}, {n} thread{'' if n == 1 else 's'})"


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
) -> RunSummary:
    """Train one stage. Bad input found before the run starts raises DamtuiError; anything that
    goes wrong afterwards marks the run failed, emits RunFailed and is returned in the summary."""
    run = prepare(config, emit, runs_dir=runs_dir, data_root=data_root, device=device, from_run=from_run,
                  resume=resume, runtime_extra=runtime_extra, run_name=run_name, threads=threads)
    recorder = run.open()
    trainer = SingleTrainer(run.state, run.spec, run.pipeline, run.device)
    return run_epochs(trainer, [recorder], stop_event, run.start_epoch)[0]


@dataclass
class Prepared:
    """A run checked and built (model, stage, data) but without a folder yet: `open()` creates or
    reopens it. Split so that packed training can check every member before writing anything."""

    state: RunState
    spec: DatasetSpec
    pipeline: DataPipeline
    device: torch.device
    emit: Emit
    start_epoch: int
    best_epoch: int
    best_val: float
    source_summary: RunSummary | None
    open_writer: Callable[[], runs.RunWriter]
    note: str = ""  # said when the run starts (a resume given another thread count)

    def open(self) -> RunRecorder:
        """Create (or reopen) the run folder and announce the run; its recorder."""
        recorder = RunRecorder(self.state, self.emit, self.open_writer(), self.best_epoch, self.best_val,
                               self.source_summary)
        recorder.announce(self.pipeline.sizes(), device_name(self.device), self.start_epoch, self.note)
        return recorder


def prepare(config: Config, emit: Emit, *, resume: Path | None = None, **kw: Any) -> Prepared:
    """Everything `train` does before the first epoch except creating a run folder (the keyword
    arguments are `_prepare`'s). A resumed run is locked first, one writer per run, and unlocked
    again if anything here refuses it."""
    lock = runs.RunLock.acquire(Path(resume)) if resume is not None else None
    try:
        return _prepare(config, emit, resume=resume, lock=lock, **kw)
    except BaseException:
        if lock is not None:
            lock.release()
        raise


def _prepare(
    config: Config,
    emit: Emit,
    *,
    lock: runs.RunLock | None,
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
    """`pipeline` shares one device-resident copy of the data between runs of the same dataset;
    `threads` is the `--threads` flag (damtui.train.threads has the precedence; a resumed run
    keeps its own count unless told otherwise, and the run's first line says so)."""
    if resume is None:  # a resume's count is chosen once its record is read
        n_threads, thread_note = run_threads(threads, config.threads)
        apply_threads(n_threads)
    dev = resolve_device(device)
    splits = pipeline.splits if pipeline is not None else datasets.load(config.dataset, data_root)
    spec = splits.spec
    if config.dual_sampler and spec.multilabel:
        raise DamtuiError("dual_sampler works for binary datasets only; use --set dual_sampler=false")

    ckpt: dict[str, Any] | None = None
    source: Source | None = None
    if resume is not None:
        ckpt, rec = check_resume(Path(resume), config)
        n_threads, thread_note = run_threads(threads, config.threads, stored_threads(rec.runtime))
        apply_threads(n_threads)
        from_run_id = rec.runtime.get("from_run")
        saved = rec.runtime.get("from_run_summary")
        source_summary = RunSummary.from_json(saved) if saved else None
        if ckpt is None and from_run_id:  # a fine-tune starting over needs its source again
            src = rec.runtime.get("from_run_path") or str(Path(resume).parent / from_run_id)
            source = load_source(Path(src), config)
    else:
        source = load_source(Path(from_run) if from_run else None, config)
        if source is not None:
            config = config.model_copy(update={"width": int(source.config.get("width", config.width))})
        from_run_id = source.path.name if source else None
        source_summary = source.summary if source else None

    seed_epoch(config.seed, -1)
    with _memory_guard(config):
        model, stage, pipeline = _build(config, spec, splits, source, dev, pipeline)
    _check_batches(config, pipeline)
    state = RunState(config, model, stage, make_ema(model, config.ema))
    start_epoch, best_epoch, best_val = 0, 0, -math.inf
    if ckpt is not None:
        try:
            state.load(ckpt)
        except (RuntimeError, KeyError, TypeError, ValueError):
            raise DamtuiError(f"{Path(resume) / runs.LAST} does not fit this run's model or optimizer; it cannot"
                              " be resumed: start a new run with the same settings") from None
        start_epoch, best_epoch, best_val = int(ckpt["epoch"]), int(ckpt["best_epoch"]), float(ckpt["best_val"])

    def open_writer() -> runs.RunWriter:
        if resume is not None:  # with no epoch saved the run starts over in its own folder
            return runs.RunWriter.reopen(Path(resume), config.epochs, start_epoch, lock=lock, config=config.as_dict())
        runtime = {
            "versions": library_versions(),
            "device": device_name(dev),
            "host": socket.gethostname(),
            "data_root": str(datasets.data_root(data_root)),
            "data_md5": datasets.file_md5(datasets.dataset_path(spec.flag, datasets.data_root(data_root))),
            "from_run": from_run_id,
            "from_run_path": str(source.path.resolve()) if source else None,
            "from_run_summary": source_summary.to_json() if source_summary else None,
            "argv": sys.argv,
            "threads": n_threads,  # a resume trains with it again (damtui.train.threads)
            **(runtime_extra or {}),
        }
        writer = runs.RunWriter.create(Path(runs_dir), config.as_dict(), runtime, name=run_name)
        if source is not None and source.scores is not None:  # the pretrain side of "does DAM help",
            runs.write_scores(writer.path, source.scores, runs.SOURCE_SCORES)  # kept if the pretrain moves on
        return writer

    return Prepared(state, spec, pipeline, dev, emit, start_epoch, best_epoch, best_val, source_summary, open_writer,
                    thread_note)


def _build(config: Config, spec: DatasetSpec, splits: datasets.Splits, source: Source | None,
           dev: torch.device, pipeline: DataPipeline | None) -> tuple[torch.nn.Module, Stage, DataPipeline]:
    """The model (from the source run's weights for a fine-tune), the data on the device, the stage."""
    if source is not None:
        try:
            model = finetune_model_from(config, spec, source.state)
        except (RuntimeError, KeyError, TypeError, ValueError) as err:
            if _out_of_memory(err):
                raise
            raise DamtuiError(f"the weights in {source.path / runs.BEST} do not fit a {spec.flag} ResNet of"
                              f" width {config.width}; pick another pretrain run") from None
    else:
        model = make_model(config, spec, num_outputs(spec, config.stage))
    model = model.to(dev)
    if dev.type == "cuda" and config.pipeline == "fast":
        model = model.to(memory_format=memory_format(spec.is_3d))
        torch.backends.cudnn.benchmark = True
    if pipeline is None:
        workers = 0 if dev.type == "cpu" else min(12 if spec.is_3d else 4, os.cpu_count() or 1)
        pipeline = DataPipeline(splits, config, dev, workers=workers)
    return model, Stage(config, model, spec, splits.positive_share("train"), dev), pipeline


def _out_of_memory(err: BaseException) -> bool:
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in str(err) \
        or "out of memory" in str(err).lower()


@contextmanager
def _memory_guard(config: Config) -> Iterator[None]:
    """Building a model too large for the machine is bad input, not a crash: one line."""
    try:
        yield
    except (MemoryError, RuntimeError) as err:
        if not _out_of_memory(err):
            raise
        raise DamtuiError(f"not enough memory to build a width-{config.width} model with its optimizer;"
                          " lower --set width (64 is the report's ResNet-18) or free memory") from None


def _check_batches(config: Config, pipeline: DataPipeline) -> None:
    """Every split must give something to train on and to score (a batch of one is dropped)."""
    sizes = pipeline.sizes()
    if pipeline.num_train_batches(np.arange(sizes["train"])) == 0:
        least = f"{config.batch_size} (compile keeps batch shapes fixed)" if config.compile else "2"
        raise DamtuiError(f"{config.dataset} has {sizes['train']} training images: no batch of at least {least}"
                          f" at batch_size {config.batch_size}; use more data or a smaller --set batch_size")
    empty = [split for split in ("val", "test") if sizes[split] == 0]
    if empty:
        raise DamtuiError(f"{config.dataset}'s {' and '.join(empty)} split is empty: nothing to select or"
                          " report on; check the dataset file")


# ----------------------------------------------------------------------------- the epoch loop


def run_epochs(trainer: Trainer, recorders: list[RunRecorder], stop: threading.Event,
               start: int = 0) -> list[RunSummary]:
    """Train every run from epoch `start` to its configured end; one summary per recorder.
    A member whose loss diverges fails alone; a bug fails every member still training."""
    summaries: dict[int, RunSummary] = {}
    alive = list(range(len(recorders)))
    try:
        for epoch in range(start, recorders[0].c.epochs):
            if not train_one_epoch(trainer, recorders, alive, summaries, epoch, stop):
                for i in alive:
                    summaries[i] = recorders[i].end(runs.CANCELLED, "cancelled")
                alive = []
            if not alive:
                break
        for i in alive:
            summaries[i] = recorders[i].end(runs.FINISHED)
    except Exception as err:
        for i in alive:
            summaries[i] = recorders[i].fail_with(err)
    return [summaries[i] for i in range(len(recorders))]


def train_one_epoch(trainer: Trainer, recorders: list[RunRecorder], alive: list[int],
                    summaries: dict[int, RunSummary], epoch: int, stop: threading.Event) -> bool:
    """One epoch of every member in `alive` (failed members leave it); False when stopped.

    Nothing in a step waits for the device: losses, scores and labels stay there and are read once,
    after the last step. Progress (and the early divergence check) uses losses copied without
    blocking, at most every PROGRESS_EVERY_S."""
    batches, n_batches = trainer.epoch_batches(epoch)
    t0 = last_emit = time.perf_counter()
    loss_sum = torch.zeros(trainer.members, device=trainer.device)
    latest = LatestLosses(trainer.device)
    seen, scores, labels = 0, [], []
    losses = loss_sum
    for b, (x, y) in enumerate(batches):
        if stop.is_set():
            return False
        losses, batch_scores = trainer.step(x, y, alive)
        loss_sum += losses * y.shape[1]
        seen += y.shape[1]
        scores.append(batch_scores)
        labels.append(y)
        now = time.perf_counter()
        if now - last_emit >= PROGRESS_EVERY_S and b + 1 < n_batches:
            last_emit = now
            values = latest.read(losses)
            if values is not None and not _progress(recorders, alive, summaries, epoch, b + 1, n_batches,
                                                    values, seen, now - t0):
                return True
    totals = torch.cat([loss_sum, losses]).tolist()  # note: the epoch's one CPU-GPU sync, after its last step
    train_s = time.perf_counter() - t0
    if not _progress(recorders, alive, summaries, epoch, n_batches, n_batches, totals[trainer.members:], seen,
                     train_s):
        return True
    train_losses = [v / max(seen, 1) for v in totals[:trainer.members]]
    t1 = time.perf_counter()
    val, test = trainer.evaluate("val"), trainer.evaluate("test")
    train_scores, train_labels = torch.cat(scores, 1).cpu().numpy(), torch.cat(labels, 1).cpu().numpy()
    for i in list(alive):
        if not math.isfinite(train_losses[i]):
            _fail_member(recorders, alive, summaries, i, train_losses[i], epoch)
            continue
        row = epoch_row(epoch, train_losses[i], (train_scores[i], train_labels[i]), (val[0][i], val[1]),
                        (test[0][i], test[1]), trainer.lr, seen, t0, t1, train_s, trainer.aucm_numbers(i))
        trainer.publish(i)
        recorders[i].record(epoch, row, ((val[0][i], val[1]), (test[0][i], test[1])))
    return True


def _progress(recorders: list[RunRecorder], alive: list[int], summaries: dict[int, RunSummary], epoch: int,
              batch: int, n_batches: int, losses: list[float], seen: int, elapsed: float) -> bool:
    """Batch progress of every member still training; a member whose loss is no longer finite fails
    now, not at the end of the epoch. False when no member is left."""
    rate = seen * len(alive) / max(elapsed, 1e-9)
    left = (n_batches - batch) * elapsed / batch
    for i in list(alive):
        if not math.isfinite(losses[i]):
            _fail_member(recorders, alive, summaries, i, losses[i], epoch)
            continue
        recorders[i].progress(BatchProgress(epoch + 1, batch, n_batches, losses[i], rate, left, elapsed))
    return bool(alive)


class LatestLosses:
    """The newest per-member losses the host can read without waiting for the device. `read`
    starts a copy of the step's losses without blocking (into pinned memory, with an event) when
    none is under way, and returns the newest copy that has landed (None before the first): so a
    progress line is at most one throttle period old and never stalls the queue of launched steps."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.pending: tuple[torch.Tensor, Any] | None = None
        self.values: list[float] | None = None

    def read(self, losses: torch.Tensor) -> list[float] | None:
        if self.pending is not None:
            host, event = self.pending
            if event is None or event.query():
                self.values, self.pending = host.tolist(), None
        if self.pending is None:
            host = losses.detach().to("cpu", non_blocking=True)  # pinned on CUDA; the tensor itself on the CPU
            event = torch.cuda.Event() if self.cuda else None
            if event is not None:
                event.record()
            self.pending = (host, event)
            if event is None:  # nothing to wait for on the CPU
                self.values, self.pending = host.tolist(), None
        return self.values


def _fail_member(recorders: list[RunRecorder], alive: list[int], summaries: dict[int, RunSummary],
                 i: int, loss: float, epoch: int) -> None:
    try:
        recorders[i].check_finite(loss, epoch)
    except DamtuiError as err:
        summaries[i] = recorders[i].fail(str(err))
        alive.remove(i)


def epoch_row(epoch: int, train_loss: float, train: tuple, val: tuple, test: tuple, lr: float, seen: int,
              t0: float, t1: float, train_s: float, aucm: dict[str, float] | None = None) -> EpochRow:
    """One metrics.jsonl row: every split scored at the threshold chosen on validation, and the
    health numbers (damtui.train.health; saturation from the training batches' scores, no extra forward)."""
    thr = metrics.choose_threshold(val[1], val[0])
    scores: dict[str, float | None] = {}
    for split, (s, y) in {"train": train, "val": val, "test": test}.items():
        for k, v in metrics.split_metrics(y, s, thr).items():
            scores[f"{split}_{k}"] = None if math.isnan(v) else v
    return EpochRow(epoch + 1, train_loss, **scores, threshold=tuple(thr), lr=lr,
                    epoch_s=time.perf_counter() - t0, train_s=train_s, eval_s=time.perf_counter() - t1,
                    images_per_s=seen / max(train_s, 1e-9), **health.epoch_health(train, val, aucm or {}))
