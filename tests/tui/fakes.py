"""A scripted stand-in for damtui.train.engine.train and helpers that write run folders for tests."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.worker import WorkerCancelled

from damtui import events
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.records import EpochRow, RunSummary, best_index
from damtui.store.progress import of_event


def summarize(rows: list[EpochRow], writer: runs.RunWriter, config: Any, status: str) -> RunSummary:
    return RunSummary.of(rows, run_id=writer.run_id, status=status, dataset=config.dataset, stage=config.stage,
                         preset=config.preset)


def metrics_row(epoch: int, wobble: float = 0.0) -> EpochRow:
    """Deterministic per-epoch metrics; val AUC peaks at epoch 3 then dips a little."""
    val = {1: 0.70, 2: 0.78, 3: 0.83, 4: 0.81, 5: 0.82, 6: 0.80}.get(epoch, 0.80) + wobble
    return EpochRow.from_json({
        "epoch": epoch,
        "train_loss": round(0.70 - 0.08 * epoch, 4),
        "train_auc": round(min(0.99, 0.65 + 0.07 * epoch), 4),
        "train_acc": round(min(0.99, 0.60 + 0.05 * epoch), 4),
        "val_auc": round(val, 4),
        "val_acc": round(val - 0.05, 4),
        "val_acc_thr": round(val - 0.03, 4),
        "test_auc": round(val - 0.02, 4),
        "test_acc": round(val - 0.08, 4),
        "test_acc_thr": round(val - 0.06, 4),
        "threshold": 0.5,
        "lr": 0.1 if epoch < 3 else 0.01,
        "epoch_s": 12.5,
        "images_per_s": 850.0,
    })


class FakeEngine:
    """Same signature as damtui.train.engine.train; writes a real run folder through runs.RunWriter.

    hold_at=(epoch, batch): after emitting that batch, wait until `release()` or the stop event
    (so a test can look at a run in the middle of an epoch). batch_delay slows every batch.
    Like the engine it writes progress.json (every batch here), which the app follows.
    """

    def __init__(
        self,
        batches: int = 4,
        batch_delay: float = 0.0,
        hold_at: tuple[int, int] | None = None,
        raise_error: str | None = None,
        fail_at: int | None = None,
        spam: int = 0,
        device_name: str = "cpu",
    ) -> None:
        self.batches = batches
        self.batch_delay = batch_delay
        self.hold_at = hold_at
        self.raise_error = raise_error
        self.fail_at = fail_at
        self.spam = spam  # extra BatchProgress events per batch (UI load test)
        self.device_name = device_name  # what the run says it trains on (config.json's runtime)
        self.calls: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.holding = threading.Event()
        self.returned = threading.Event()
        self.stopped_at: tuple[int, int] | None = None

    def release(self) -> None:
        self.released.set()

    def __call__(
        self,
        config,
        emit: Callable[[events.Event], None],
        stop_event: threading.Event,
        *,
        runs_dir: Path,
        data_root: Path | None = None,
        device: str = "auto",
        from_run: Path | None = None,
        resume: Path | None = None,
        run_name: str | None = None,
        runtime_extra: dict | None = None,
        threads: int | None = None,
    ) -> dict:
        try:
            return self._run(config, emit, stop_event, runs_dir, device, from_run, resume, run_name)
        finally:
            self.returned.set()

    def _run(self, config, emit, stop_event, runs_dir, device, from_run, resume, run_name=None) -> dict:
        self.calls.append(
            {
                "config": config,
                "runs_dir": runs_dir,
                "device": device,
                "from_run": from_run,
                "resume": resume,
            }
        )
        if self.raise_error:
            raise DamtuiError(self.raise_error)
        cfg = config.as_dict()
        rows: list[EpochRow] = []
        if resume is not None:
            rows, _ = runs.read_metrics(Path(resume))
            writer = runs.RunWriter.reopen(Path(resume), config.epochs, len(rows), config=cfg)
        else:
            writer = runs.RunWriter.create(
                Path(runs_dir),
                cfg,
                {"device": self.device_name, "from_run": str(from_run) if from_run else None},
                name=run_name,
            )
        emit(
            events.RunStarted(
                writer.run_id,
                str(writer.path),
                cfg,
                {"train": 800, "val": 200, "test": 200},
                self.device_name,
                len(rows),
                config.epochs,
            )
        )
        wrote = 0.0
        for epoch in range(len(rows) + 1, config.epochs + 1):
            for batch in range(1, self.batches + 1):
                if stop_event.is_set():
                    self.stopped_at = (epoch, batch)
                    writer.write_status(
                        runs.CANCELLED, epoch - 1, config.epochs, "cancelled by user"
                    )
                    summary = summarize(rows, writer, config, runs.CANCELLED)
                    writer.write_summary(summary)
                    writer.close()
                    emit(events.RunCancelled(epoch - 1, summary))
                    return summary
                if self.batch_delay:
                    time.sleep(self.batch_delay)
                for i in range(self.spam + 1):
                    event = events.BatchProgress(
                        epoch, batch, self.batches, 0.5, 850.0 + i, (self.batches - batch) * 1.5
                    )
                    emit(event)
                # what the recorder does (every 50 ms here, and always where it holds or an epoch ends)
                now = time.monotonic()
                if now - wrote >= 0.05 or self.hold_at == (epoch, batch) or batch == self.batches:
                    writer.write_progress(of_event(event, config.epochs, 400, time.time()), force=True)
                    wrote = now
                if self.hold_at == (epoch, batch):
                    self.holding.set()
                    while not (self.released.is_set() or stop_event.is_set()):
                        time.sleep(0.01)
            if self.fail_at == epoch:
                message = "loss became NaN at epoch %d; lower lr" % epoch  # status and event, as the recorder
                writer.write_status(runs.FAILED, epoch - 1, config.epochs, message)
                writer.close()
                emit(events.RunFailed(message, epoch - 1))
                return None
            row = metrics_row(epoch)
            rows.append(row)
            writer.append_metrics(row)
            writer.write_status(runs.RUNNING, epoch, config.epochs)
            b = best_index(rows)
            emit(events.EpochMetrics(epoch, row, rows[b].epoch, b == len(rows) - 1))
            emit(events.CheckpointSaved(epoch, str(writer.path / "last.pt"), "last"))
        summary = summarize(rows, writer, config, runs.FINISHED)
        writer.write_status(runs.FINISHED, len(rows), config.epochs)
        writer.write_summary(summary)
        writer.close()
        emit(events.RunFinished(summary))
        return summary


STARTED = 1_717_243_200.0  # 2024-06-01 12:00:00 UTC
# DamtuiApp(trainer=...): runs start as real processes of the CLI with the FakeEngine (fake_train.py)
FAKE_TRAINER = (sys.executable, str(Path(__file__).parent / "fake_train.py"))


def config_dict(
    dataset: str = "synthetic2d", stage: str = "pretrain", **over: Any
) -> dict[str, Any]:
    base = {
        "preset": f"any-{stage}-demo",
        "dataset": dataset,
        "stage": stage,
        "source": "test fixture",
        "description": "",
        "epochs": 6,
        "batch_size": 32,
        "eval_batch_size": 1024,
        "lr": 0.1,
        "optimizer": "sgd" if stage == "pretrain" else "pesg",
        "momentum": 0.9,
        "weight_decay": 0.0,
        "loss": "ce" if stage == "pretrain" else "aucm",
        "class_weighting": False,
        "milestones": None,
        "decay_factor": 10.0,
        "margin": 1.0,
        "epoch_decay": 0.0,
        "dual_sampler": False,
        "sampling_rate": 0.5,
        "dropout": 0.0,
        "width": 8,
        "augment": True,
        "pipeline": "fast",
        "head_transplant": True,
        "seed": 0,
    }
    base.update(over)
    return base


def make_run(
    root: Path,
    name: str,
    *,
    epochs_done: int,
    state: str = runs.FINISHED,
    started: float = STARTED,
    epoch_s: float = 60.0,
    wobble: float = 0.0,
    pid: int | None = None,
    **config_over: Any,
) -> Path:
    """A run folder with fixed name and times, written with the runs module's own writers."""
    cfg = config_dict(**config_over)
    path = Path(root) / name
    path.mkdir(parents=True)
    runs.atomic_write_json(path / runs.CONFIG, {"config": cfg, "runtime": {"device": "cpu"}})
    writer = runs.RunWriter(path)
    for epoch in range(1, epochs_done + 1):
        writer.append_metrics(metrics_row(epoch, wobble))
    set_status(
        path, state, epochs_done, cfg["epochs"], started, started + epoch_s * epochs_done, pid
    )
    return path


def set_status(
    path: Path,
    state: str,
    epoch: int,
    epochs: int,
    started: float,
    updated: float,
    pid: int | None = None,
    message: str = "",
) -> None:
    import os
    import socket

    runs.atomic_write_json(
        Path(path) / runs.STATUS,
        {
            "state": state,
            "pid": os.getpid() if pid is None else pid,
            "host": socket.gethostname(),
            "started": started,
            "updated": updated,
            "epoch": epoch,
            "epochs": epochs,
            "message": message,
        },
    )


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())


def screen_text(app) -> str:
    """The current screen as plain text (what a user would read), for assertions and debugging."""
    import io

    from rich.console import Console

    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    console.print(
        app.screen._compositor.render_update(
            full=True, screen_stack=app._background_screens, simplify=True
        )
    )
    return console.export_text(styles=False)


def flat_text(app) -> str:
    """The screen's words with line breaks and padding folded, for text that may wrap."""
    return " ".join(screen_text(app).split())


async def drawn(pilot, text: str, timeout: float = 30.0) -> None:
    """Wait until `text` is on screen: a widget's state changes before its repaint."""
    await wait_for(pilot, lambda: text in flat_text(pilot.app), timeout)


async def settle(pilot, seconds: float = 0.0) -> None:
    """Let workers finish and their messages be handled."""
    await pilot.pause(seconds)
    for worker in list(pilot.app.workers):
        try:
            await worker.wait()
        except WorkerCancelled:  # an exclusive worker that a newer one replaced: expected
            pass
    await pilot.pause()


async def wait_for(pilot, predicate, timeout: float = 30.0, step: float = 0.02) -> None:
    """Wait until `predicate()` holds. The timeout is a hang guard, generous so that a busy machine
    (xdist workers beside other jobs) passes: test_compare[size0] missed 5 s once."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await pilot.pause(step)
