"""No step waits for the device: the calls that would block a GPU stream, counted on the CPU.

A `TorchFunctionMode` sees every torch call the engine makes. The ones that wait for a CUDA stream
(a value copied to the host, or host data copied to the device) are counted over an epoch of N
steps; the count must not grow with N, for one model and for packed seeds, in both stages, with
EMA and flip TTA on."""

from __future__ import annotations

import itertools
import math
from collections import Counter
import sys
import threading
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode

from damtui.train import engine, packing
from damtui.train.trainer import SingleTrainer
from support import demo_config

# Tensor -> host: each waits for every kernel queued before it.
TO_HOST = {torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.cpu, torch.Tensor.numpy, torch.Tensor.__bool__,
           torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__, torch.Tensor.nonzero, torch.nonzero,
           torch.Tensor.masked_select, torch.masked_select, torch.unique, torch.Tensor.unique}
INDEXING = {torch.Tensor.__getitem__, torch.Tensor.__setitem__}
# where tensors live on the host in a CUDA run too: torch's optimizers keep `step` on the CPU
HOST_BY_DESIGN = (f"torch{'/'}optim{'/'}",)


class BlockingCalls(TorchFunctionMode):
    """Records (call, caller) for each call that would block a GPU stream."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str]] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self._blocks(func, args, kwargs):
            caller = sys._getframe(1)
            where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            if not any(part in where for part in HOST_BY_DESIGN):
                self.calls.append((getattr(func, "__qualname__", str(func)), where))
        return func(*args, **kwargs)

    @staticmethod
    def _blocks(func, args, kwargs) -> bool:
        if func in TO_HOST:
            return True
        if func is torch.tensor:  # Python data copied to the device
            return True
        if func is torch.Tensor.to:  # a copy to the host that does not say non_blocking
            target = [a for a in args[1:] if isinstance(a, (str, torch.device))] + [kwargs.get("device")]
            return any(t is not None and torch.device(t).type == "cpu" for t in target) \
                and not kwargs.get("non_blocking", False)
        if func in INDEXING:  # a boolean mask (a nonzero) or a Python list (a copy to the device)
            index = args[1] if isinstance(args[1], tuple) else (args[1],)
            return any((isinstance(i, torch.Tensor) and i.dtype == torch.bool) or isinstance(i, list) for i in index)
        return False


def _first_steps(trainer, n: int) -> None:
    """Cut the trainer's epochs to their first n steps."""
    real = type(trainer).epoch_batches

    def epoch_batches(epoch: int):
        batches, _ = real(trainer, epoch)
        return itertools.islice(batches, n), n

    trainer.epoch_batches = epoch_batches


def _blocking_calls_per_epoch(trainer, recorders, steps: list[int]) -> list[list[tuple[str, str]]]:
    """The calls of epoch 0 trained again for each step count, each time as the best epoch so far
    (so that each saves best.pt): only the number of steps differs between them. A first epoch of
    one step, not counted, builds what is built once (the constants of augment.py, ...)."""
    out = []
    for n in [1, *steps]:
        _first_steps(trainer, n)
        for rec in recorders:
            rec.best_val = -math.inf
        with BlockingCalls() as mode:
            assert engine.train_one_epoch(trainer, recorders, list(range(len(recorders))), {}, 0, threading.Event())
        out.append(mode.calls)
    return out[1:]


@pytest.fixture
def no_progress_clock(monkeypatch):
    """Progress reads the losses at most every PROGRESS_EVERY_S: a clock, not the step count. Off
    here so that the count depends on the steps alone (the epoch's last batch still reports)."""
    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", math.inf)


def _single(config, runs_dir: Path, source: Path | None):
    run = engine.prepare(config, lambda ev: None, runs_dir=runs_dir, device="cpu", from_run=source)
    recorder = run.open()
    return SingleTrainer(run.state, run.spec, run.pipeline, run.device), [recorder]


@pytest.mark.slow
def test_blocking_calls_do_not_grow_with_the_steps(runs_dir, no_progress_clock):
    """One model and two packed seeds, pretrain then finetune, EMA and flip TTA on: an epoch of 5
    steps makes exactly the blocking calls of an epoch of 2 (reading the epoch's losses and scores,
    the order's one copy to the device, the checkpoints' snapshots, ...), none per step."""
    over = dict(width=2, ema=0.9, tta_flip=True)
    source = None
    for stage in ("pretrain", "finetune"):
        configs = [demo_config(stage, seed=s, **over) for s in (0, 1)]
        single, [recorder] = _single(configs[0], runs_dir, source)
        few, many = _blocking_calls_per_epoch(single, [recorder], [2, 5])
        assert Counter(many) == Counter(few), Counter(many) - Counter(few)
        assert few  # the counter sees the epoch's own reads
        recorder.end("finished")
        packed, recorders = packing.open_packed(configs, [lambda ev: None] * 2, runs_dir=runs_dir, device="cpu",
                                                from_runs=[source, source])
        few, many = _blocking_calls_per_epoch(packed, recorders, [2, 5])
        assert Counter(many) == Counter(few), Counter(many) - Counter(few)
        for rec in recorders:
            rec.end("finished")
        source = recorder.writer.path


def test_aucm_loss_without_the_sync_is_libaucs_loss_bit_for_bit():
    """stages.aucm_loss_type drops LibAUC's `if sum(pos_mask) == 0` (a host sync every step) and
    nothing else: the same loss, gradients and PESG steps, batches without positives included."""
    import warnings

    from libauc.losses import AUCMLoss
    from libauc.optimizers import PESG

    from damtui.train.stages import aucm_loss_type

    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(8, 1, generator=g)
    losses, weights = [], []
    for loss_type in (AUCMLoss, aucm_loss_type()):
        torch.manual_seed(0)  # PESG draws its reference weights
        loss_fn = loss_type(margin=1.0, imratio=0.3, version="v1", device="cpu")
        w = torch.nn.Parameter(w0.clone())
        opt = PESG([w], loss_fn=loss_fn, lr=0.1, epoch_decay=0.003, weight_decay=1e-5, device="cpu", verbose=False)
        g = torch.Generator().manual_seed(1)
        seen = []
        for step in range(4):
            x = torch.randn(16, 8, generator=g)
            y = torch.zeros(16, 1) if step == 2 else (torch.rand(16, 1, generator=g) < 0.3).float()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # LibAUC warns about the batch without positives
                loss = loss_fn(torch.sigmoid(x @ w), y)
            opt.zero_grad()
            loss.backward()
            seen.append((loss.detach(), w.grad.clone(), loss_fn.a.grad.clone(), loss_fn.alpha.grad.clone()))
            opt.step()
        losses.append(seen)
        weights.append([w.detach().clone(), loss_fn.a.detach().clone(), loss_fn.b.detach().clone(),
                        loss_fn.alpha.detach().clone()])
    for ours, theirs in zip(*losses):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert all(torch.equal(a, b) for a, b in zip(*weights))
    with BlockingCalls() as mode:
        aucm_loss_type()(imratio=0.3, device="cpu")(torch.rand(8, 1), torch.ones(8, 1))
    assert mode.calls == []


@pytest.mark.slow
def test_the_3d_step_blocks_no_more_with_more_steps(runs_dir, no_progress_clock, monkeypatch):
    """The 3D path on the GPU's branch of its augmentation (augment3d.by_sample False: one pass
    over the batch; the CPU's branch picks samples with a nonzero per transform, three host syncs
    a step on a GPU): 4 steps block as often as 2. The stages' steps are the 2D test's."""
    from damtui.train import augment3d

    monkeypatch.setattr(augment3d, "by_sample", lambda device: False)
    single, [recorder] = _single(demo_config(flag="synthetic3d", width=2, batch_size=8), runs_dir, None)
    few, many = _blocking_calls_per_epoch(single, [recorder], [2, 4])
    assert Counter(many) == Counter(few), Counter(many) - Counter(few)
    recorder.end("finished")
