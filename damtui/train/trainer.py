"""What the one epoch loop (damtui.train.engine) trains: a Trainer. Two implementations exist: one
model (`SingleTrainer`, here) and K seeds stacked with torch.func (`damtui.train.packing.PackedTrainer`).

Every tensor a Trainer hands the loop has a leading member dimension (size 1 for a single model),
so the loop has one code path. `RunState` is what a run's checkpoints are made of; a Trainer
`publish`es member i's current weights into its RunState before the run's recorder saves it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import numpy as np
import torch

from damtui.config import Config
from damtui.data.datasets import DatasetSpec
from damtui.train.pipeline import DataPipeline, epoch_order
from damtui.train.stages import Stage, output_scores

Batch = tuple[torch.Tensor, torch.Tensor]
Scored = tuple[np.ndarray, np.ndarray]  # scores (K, N, L) and labels (N, L) of one split


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed every generator from (seed, epoch): a run resumed at any epoch repeats exactly what
    the uninterrupted run did, with no random stream to replay."""
    s = (seed * 1_000_003 + epoch * 7919) % (2**31)
    random.seed(s)
    np.random.seed(s)
    torch.manual_seed(s)  # also seeds every CUDA device


def memory_format(is_3d: bool) -> torch.memory_format:
    return torch.channels_last_3d if is_3d else torch.channels_last


@dataclass
class RunState:
    """One run's own model, stage (optimizer, loss state) and EMA: what its checkpoints hold."""

    config: Config
    model: torch.nn.Module
    stage: Stage
    ema: Any = None  # torch.optim.swa_utils.AveragedModel when config.ema > 0

    @property
    def eval_model(self) -> torch.nn.Module:
        """The weights evaluated and saved as best.pt: the EMA ones when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def load(self, ckpt: dict[str, Any]) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.stage.load_state_dict(ckpt["stage"])
        if self.ema is not None:
            self.ema.load_state_dict(ckpt["ema"])


def make_ema(model: torch.nn.Module, decay: float) -> Any:
    if decay <= 0:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


class Trainer(Protocol):
    """The model side of one training process, as the epoch loop drives it."""

    members: int
    device: torch.device
    lr: float

    def epoch_batches(self, epoch: int) -> tuple[Iterator[Batch], int]:
        """Apply the schedule, seed, and return the epoch's batches (x (K, B, ...), y (K, B, L))
        and their number."""

    def step(self, x: torch.Tensor, y: torch.Tensor, alive: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step on the members in `alive`: losses (K,) and train scores (K, B, L)."""

    def evaluate(self, split: str) -> Scored:
        """Scores (K, N, L) of the evaluated weights on a split, and its labels (N, L)."""

    def publish(self, i: int) -> None:
        """Make member i's RunState hold its current weights (before its checkpoints are saved)."""

    def aucm_numbers(self, i: int) -> dict[str, float]:
        """Member i's AUCM a/b/alpha and imratio (damtui.train.health); empty for a pretrain."""


class SingleTrainer:
    """One model: the plain training step, with channels-last on CUDA, bf16 autocast when the run's
    `amp` asks for it and torch.compile (reduce-overhead: CUDA graphs on CUDA) when `compile` does."""

    members = 1

    def __init__(self, state: RunState, spec: DatasetSpec, pipeline: DataPipeline, device: torch.device) -> None:
        c = state.config
        self.state, self.spec, self.pipeline, self.device, self.c = state, spec, pipeline, device, c
        self.autocast = amp_enabled(c, device)
        self.memory_format = memory_format(spec.is_3d) if device.type == "cuda" and c.pipeline == "fast" else None
        self.forward = compiled(state.model) if c.compile else state.model
        self.ema_updates = int(state.ema.n_averaged) if state.ema is not None else 0  # once, not per step

    @property
    def lr(self) -> float:
        return self.state.stage.lr

    def epoch_batches(self, epoch: int) -> tuple[Iterator[Batch], int]:
        seed_epoch(self.c.seed, epoch)
        self.state.stage.start_epoch(epoch)
        order = epoch_order(self.pipeline.np_labels["train"], self.c, epoch)
        self.state.model.train()
        batches = ((x[None], y[None]) for x, y in self.pipeline.train_batches(order))
        return batches, self.pipeline.num_train_batches(order)

    def step(self, x: torch.Tensor, y: torch.Tensor, alive: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = x[0], y[0]
        if self.memory_format is not None:
            x = x.contiguous(memory_format=self.memory_format)
        if self.c.compile:
            torch.compiler.cudagraph_mark_step_begin()  # the last step's graph outputs may be reused
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.forward(x)
        stage = self.state.stage
        loss = stage.loss(out, y)
        stage.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        stage.optimizer.step()
        if self.state.ema is not None:
            update_ema(self.state.ema, self.state.model, self.c.ema, first=self.ema_updates == 0)
            self.ema_updates += 1
        return loss.detach().reshape(1), stage.scores(out.detach())[None]

    def evaluate(self, split: str) -> Scored:
        scores, labels = score_split(self.state.eval_model.eval(), self.pipeline, split, self.c,
                                     self.spec.multilabel, self.device, self.memory_format)
        return scores[None], labels

    def publish(self, i: int) -> None:
        pass  # the run's own objects are the ones being trained

    def aucm_numbers(self, i: int) -> dict[str, float]:
        return self.state.stage.aucm_numbers()


def amp_enabled(config: Config, device: torch.device) -> bool:
    """Whether this run trains under bf16 autocast on this device. `auto` is bf16 on CUDA only:
    on a CPU without bf16 units (AVX2) bf16 measured 7x slower than fp32 (docs/PERFORMANCE.md)."""
    return config.amp == "bf16" or (config.amp == "auto" and device.type == "cuda")


def compiled(model: torch.nn.Module) -> Any:
    """torch.compile with mode reduce-overhead: on CUDA the forward and backward replay as CUDA
    graphs, one launch instead of hundreds per step (the pipeline keeps batch shapes fixed)."""
    return torch.compile(model, mode="reduce-overhead")


@torch.no_grad()
def update_ema(ema: Any, model: torch.nn.Module, decay: float, first: bool) -> None:
    """`AveragedModel.update_parameters` (EMA of weights and buffers), bit for bit, without its host
    work per step: it moves its step count (a CPU tensor) to the device on every call, a copy that
    waits for the stream; it reads that count to find the first update (`first` says it here); and
    it averages the integer buffers (BatchNorm's counts) one tensor at a time, ~80 launches. Here
    the floating tensors take one `_foreach_lerp_` per dtype (the averaged model's own
    `multi_avg_fn`) and the integer ones one stacked update."""
    mine = [*ema.module.parameters(), *ema.module.buffers()]
    theirs = [*model.parameters(), *model.buffers()]
    if first:
        torch._foreach_copy_([a.detach() for a in mine], [b.detach() for b in theirs])
    else:
        groups: dict[torch.dtype, tuple[list[torch.Tensor], list[torch.Tensor]]] = {}
        for a, b in zip(mine, theirs, strict=True):
            group = groups.setdefault(a.dtype, ([], []))
            group[0].append(a.detach())
            group[1].append(b.detach())
        for dtype, (averaged, current) in groups.items():
            if dtype.is_floating_point or dtype.is_complex:
                ema.multi_avg_fn(averaged, current, ema.n_averaged)
            else:  # get_ema_multi_avg_fn's integer branch, p * decay + q * (1 - decay), all at once
                mixed = torch.stack(averaged) * decay + torch.stack(current) * (1 - decay)
                torch._foreach_copy_(averaged, list(mixed.unbind()))
    ema.n_averaged += 1


@torch.inference_mode()
def score_split(model: torch.nn.Module, pipeline: DataPipeline, split: str, config: Config, multilabel: bool,
                device: torch.device, memory_format: torch.memory_format | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Scores (N, L) and labels of one split in eval batches, averaged over a horizontal flip when
    the config asks for flip TTA; the one evaluation path of training and of saved runs."""
    out_s, out_y = [], []
    for x, y in pipeline.eval_batches(split):
        if memory_format is not None:
            x = x.contiguous(memory_format=memory_format)
        views = [x, x.flip(-1)] if config.tta_flip else [x]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp_enabled(config, device)):
            scores = sum(output_scores(model(v), config.stage, multilabel) for v in views) / len(views)
        out_s.append(scores)
        out_y.append(y)
    return torch.cat(out_s).cpu().numpy(), torch.cat(out_y).cpu().numpy()
