"""One run's bookkeeping, whatever trains it: metrics rows, best-on-validation tracking,
checkpoints, status, summary and the events a front end sees. The epoch loop (damtui.train.engine)
keeps one RunRecorder per run: one for a single model, K for a packed stack.
"""

from __future__ import annotations

import math
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import torch

from damtui.store import results as run_results, runs
from damtui.errors import DamtuiError
from damtui.records import EpochRow, RunSummary
from damtui.store.progress import of_event
from damtui.events import BatchProgress, CheckpointSaved, EpochMetrics, Event, RunCancelled, RunFailed, RunFinished, RunStarted
from damtui.store.log import RunLog, tee
from damtui.train.trainer import RunState, Scored

Emit = Callable[[Event], None]


class RunRecorder:
    """Writes one run's folder through its RunWriter and reports through `emit`."""

    def __init__(self, state: RunState, emit: Emit, writer: runs.RunWriter, best_epoch: int, best_val: float,
                 source_summary: RunSummary | None) -> None:
        self.state, self.c, self.writer = state, state.config, writer
        self.emit = tee(emit, RunLog(writer.path))  # the run's own output, in its log.txt
        self.best_epoch, self.best_val, self.source_summary = best_epoch, best_val, source_summary
        self.rows, _ = runs.read_metrics(writer.path)
        self.eval_images = 0

    def announce(self, sizes: dict[str, int], device_name: str, start_epoch: int, note: str = "") -> None:
        self.eval_images = sizes.get("val", 0) + sizes.get("test", 0)
        self.emit(RunStarted(self.writer.run_id, str(self.writer.path), self.c.as_dict(), sizes, device_name,
                             start_epoch, self.c.epochs, note))

    def progress(self, event: BatchProgress) -> None:
        """Batch progress to the front end, and (throttled) to progress.json for other processes."""
        self.emit(event)
        self.writer.write_progress(of_event(event, self.c.epochs, self.eval_images, time.time()),
                                   force=event.batch >= event.batches)
        self.writer.heartbeat()

    def record(self, epoch: int, row: EpochRow, scored: tuple[Scored, Scored] | None = None) -> None:
        """Book one finished epoch: best.pt (and the val/test `scored` of it in scores.npz) if it is
        the best on validation, metrics, last.pt, status."""
        is_best = row.val_auc is not None and row.val_auc > self.best_val
        if is_best:
            self.best_epoch, self.best_val = epoch + 1, row.val_auc
            scores = runs.Scores.of(epoch + 1, *scored, row.threshold) if scored is not None else None
            self._save_best(epoch + 1, row, scores)
        self.writer.append_metrics(row)
        self.rows.append(row)
        self._save_last(epoch + 1)
        self.writer.write_status(runs.RUNNING, epoch + 1, self.c.epochs)
        self.emit(EpochMetrics(epoch + 1, row, self.best_epoch, is_best))

    def check_finite(self, train_loss: float, epoch: int) -> None:
        if not math.isfinite(train_loss):
            kept = "best.pt is kept" if any(r.val_auc is not None for r in self.rows) else "no checkpoint yet"
            raise DamtuiError(
                f"loss became {train_loss} in epoch {epoch + 1}; {kept}."
                f" Lower the learning rate (now --set lr={self.c.lr:g})"
            )

    # -- checkpoints

    def _save_best(self, epoch: int, row: EpochRow, scores: runs.Scores | None) -> None:
        s = self.state

        def done(path: Path) -> None:  # on the writer thread, right after best.pt is in place
            if scores is not None:
                runs.write_scores(self.writer.path, scores)
            self.emit(CheckpointSaved(epoch, str(path), "best"))

        self.writer.save_checkpoint(runs.BEST, _to_cpu({
            "epoch": epoch, "model": s.eval_model.state_dict(), "config": self.c.as_dict(),
            "num_outputs": s.model.fc.out_features, "val_auc": row.val_auc,
        }), on_done=done)

    def _save_last(self, epoch: int) -> None:
        s = self.state
        self.writer.save_checkpoint(runs.LAST, _to_cpu({
            "epoch": epoch, "model": s.model.state_dict(), "stage": s.stage.state_dict(),
            "ema": s.ema.state_dict() if s.ema is not None else None,
            "best_epoch": self.best_epoch, "best_val": self.best_val, "config": self.c.as_dict(),
        }), on_done=lambda path: self.emit(CheckpointSaved(epoch, str(path), "last")))

    # -- endings

    def summary(self, state: str, message: str = "") -> RunSummary:
        """From the rows, with the test intervals of the best epoch's scores.npz (call after flush)."""
        summary = RunSummary.of(self.rows, run_id=self.writer.run_id, status=state, dataset=self.c.dataset,
                                stage=self.c.stage, preset=self.c.preset, source=self.source_summary,
                                message=message)
        return run_results.with_intervals(summary, runs.load_scores(self.writer.path))

    def end(self, state: str, message: str = "") -> RunSummary:
        self.writer.flush()
        summary = self.summary(state)
        self.writer.write_summary(summary)
        self.writer.write_status(state, len(self.rows), self.c.epochs, message)
        self.writer.close()
        self.emit(RunFinished(summary) if state == runs.FINISHED else RunCancelled(len(self.rows), summary))
        return summary

    def fail(self, message: str) -> RunSummary:
        summary = self.summary(runs.FAILED, message)
        for write in (self.writer.flush, lambda: self.writer.write_summary(summary),
                      lambda: self.writer.write_status(runs.FAILED, len(self.rows), self.c.epochs, message)):
            try:
                write()
            except DamtuiError:
                pass  # disk full: the status stays 'running' and readers show it as crashed
        self.writer.close()
        self.emit(RunFailed(message, len(self.rows)))
        return summary

    def fail_with(self, err: Exception) -> RunSummary:
        """End the run as failed with a one-line reason; the traceback of a bug goes to error.log."""
        if isinstance(err, DamtuiError):
            return self.fail(str(err))
        if isinstance(err, torch.cuda.OutOfMemoryError):
            b = self.c.batch_size
            return self.fail(f"CUDA out of memory at batch size {b}; try --set batch_size={max(1, b // 2)}")
        self.writer.write_error("".join(traceback.format_exception(err)))
        return self.fail(f"{type(err).__name__}: {err} (traceback in {self.writer.path}/error.log)")


def _to_cpu(obj: Any) -> Any:
    """A CPU snapshot of a nested checkpoint payload, safe to write while training goes on."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj
