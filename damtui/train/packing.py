"""Packing: runs that differ only by seed, trained as one stacked model in one process.

Why: separate processes time-slice a GPU rather than share it, and a 28 px ResNet-18 leaves most
of an H100 idle. `torch.func.stack_module_state` + `vmap(functional_call)` turn K members into one
batched model, so one process launches each kernel once for all K.

Each member is still an ordinary run. It is built by `engine.prepare` exactly as `damtui train`
builds it (same initial weights, PESG reference noise and folder), trains on its own sample
order and its own augmentation random stream, and writes the same metrics and checkpoint files,
so `damtui train --resume RUN` can continue any member alone. Without dropout a member matches the
run trained alone up to floating-point rounding (vmap's batched convolutions sum in another order).

Invariant that makes state handling generic: every packed tensor with at least one dimension is
the members' tensors stacked on a new leading dimension (parameters, buffers, optimizer moments,
PESG's reference weights, AUCM's a/b/alpha); 0-d tensors (Adam's step, EMA's count) and plain
values are shared and equal across members.
"""

from __future__ import annotations

import copy
import functools
import threading
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from damtui.config import Config, same_but_seed
from damtui.data.datasets import DatasetSpec
from damtui.train.engine import Emit, Prepared, prepare, run_epochs
from damtui.errors import DamtuiError
from damtui.records import RunSummary
from damtui.train.pipeline import DataPipeline, epoch_order
from damtui.train.recorder import RunRecorder
from damtui.train.stages import Stage, output_scores
from damtui.train.trainer import Batch, RunState, Scored, amp_enabled, make_ema, seed_epoch, update_ema


def why_not_packable(configs: list[Config]) -> str | None:
    """None when the configs can train packed, else the reason, phrased as what to change."""
    if len(configs) < 2:
        return "packing needs at least 2 seeds"
    if len({c.seed for c in configs}) != len(configs):
        return "packed members need distinct seeds"
    if not all(same_but_seed(configs[0], c) for c in configs[1:]):
        return "packed members may differ only by seed"
    if configs[0].pipeline != "fast":
        return "packing uses the fast pipeline; drop --set pipeline=reference"
    if configs[0].compile:
        return "packing trains with vmap, not torch.compile; drop --set compile=true"
    return None


# ----------------------------------------------------------------------------- stacked state


class Stack(nn.Module):
    """K models' parameters and buffers stacked on a leading member dimension, registered on one
    module so that torch optimizers, LibAUC's PESG and AveragedModel (EMA) work on it unchanged."""

    def __init__(self, models: list[nn.Module]) -> None:
        super().__init__()
        params, buffers = stack_module_state(models)
        self.param_names, self.buffer_names = list(params), list(buffers)
        for i, t in enumerate(params.values()):
            self.register_parameter(f"p{i}", nn.Parameter(t.detach().clone()))
        for i, t in enumerate(buffers.values()):
            self.register_buffer(f"b{i}", t.detach().clone())
        self.members = len(models)
        base = copy.deepcopy(models[0]).to("meta")
        for module in base.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.__class__ = _float32_norm(type(module))
        self._base = [base]  # in a list: structure only, not a submodule

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        params = {n: getattr(self, f"p{i}") for i, n in enumerate(self.param_names)}
        buffers = {n: getattr(self, f"b{i}") for i, n in enumerate(self.buffer_names)}
        return params, buffers

    def forward(self, x: torch.Tensor, shared_input: bool = False) -> torch.Tensor:
        """(K, B, ...) -> (K, B, L); with `shared_input` one (B, ...) batch goes to every member."""
        base = self._base[0].train(self.training)

        def one(params: dict, buffers: dict, xb: torch.Tensor) -> torch.Tensor:
            return functional_call(base, (params, buffers), (xb,))

        params, buffers = self._tensors()
        return vmap(one, in_dims=(0, 0, None if shared_input else 0), randomness="different")(params, buffers, x)

    @torch.no_grad()
    def copy_member_into(self, k: int, model: nn.Module) -> None:
        params, buffers = self._tensors()
        for name, t in model.named_parameters():
            t.copy_(params[name][k])
        for name, t in model.named_buffers():
            t.copy_(buffers[name][k])


class _Float32Norm:
    """Under vmap, functorch's batch-norm rule hands the kernel a dummy weight of the input's dtype
    beside the members' float32 running statistics; CUDA autocast gives BatchNorm a bf16 input (it
    casts the convolution before it), and the kernel refuses the mix ("Expected running_mean to
    have type BFloat16 but got Float"). So a packed BatchNorm normalises in float32, its statistics'
    dtype, and returns the input's dtype, as an unpacked BatchNorm does under autocast."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype in (torch.bfloat16, torch.float16):
            return super().forward(x.float()).to(x.dtype)  # type: ignore[misc]
        return super().forward(x)  # type: ignore[misc]


@functools.cache
def _float32_norm(cls: type[nn.Module]) -> type[nn.Module]:
    return type(f"Float32{cls.__name__}", (_Float32Norm, cls), {})


def stack_states(states: list[Any], where: str = "state") -> Any:
    """Stack the members' optimizer/loss states by the invariant in the module docstring."""
    first = states[0]
    if isinstance(first, torch.Tensor):
        if first.ndim == 0:
            if any(not torch.equal(s, first) for s in states[1:]):
                raise DamtuiError(f"packed members disagree on {where}; train them separately")
            return first.detach().clone()
        return torch.stack([s.detach() for s in states])
    if isinstance(first, dict):
        if any(s.keys() != first.keys() for s in states[1:]):
            raise DamtuiError(f"packed members disagree on the keys of {where}; train them separately")
        return {k: stack_states([s[k] for s in states], f"{where}.{k}") for k in first}
    if isinstance(first, (list, tuple)):
        if any(len(s) != len(first) for s in states[1:]):
            raise DamtuiError(f"packed members disagree on {where}; train them separately")
        return type(first)(stack_states([s[i] for s in states], f"{where}[{i}]") for i in range(len(first)))
    if any(s != first for s in states[1:]):
        raise DamtuiError(f"packed members disagree on {where} ({first!r}); train them separately")
    return first


def member_state(packed: Any, k: int) -> Any:
    """Member k's share of a packed state: row k of every tensor with a member dimension."""
    if isinstance(packed, torch.Tensor):
        return (packed[k] if packed.ndim else packed).detach().clone()
    if isinstance(packed, dict):
        return {key: member_state(v, k) for key, v in packed.items()}
    if isinstance(packed, (list, tuple)):
        return type(packed)(member_state(v, k) for v in packed)
    return packed


class _Stream:
    """One member's training batches, drawn under the member's own random state, so its
    augmentation is what it would have been had the member trained alone."""

    def __init__(self, batches: Iterator[tuple[torch.Tensor, torch.Tensor]], device: torch.device) -> None:
        self.batches, self.device = batches, device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)
        batch = next(self.batches)
        self.cpu = torch.get_rng_state()
        if self.cuda is not None:
            self.cuda = torch.cuda.get_rng_state(self.device)
        return batch


# ----------------------------------------------------------------------------- training


def train_packed(configs: list[Config], emits: list[Emit], stop_event: threading.Event,
                 **kw: Any) -> list[RunSummary]:
    """Train the members of `configs` (same config, distinct seeds) packed; one summary each. The
    keyword arguments are `open_packed`'s."""
    trainer, recorders = open_packed(configs, emits, **kw)
    return run_epochs(trainer, recorders, stop_event)


def open_packed(
    configs: list[Config],
    emits: list[Emit],
    *,
    runs_dir: Path,
    data_root: Path | None = None,
    device: str = "auto",
    from_runs: list[Path | None] | None = None,
    runtime_extra: dict[str, Any] | None = None,
    run_names: list[str | None] | None = None,
    threads: int | None = None,
) -> tuple[PackedTrainer, list[RunRecorder]]:
    """Check and build every member (nothing is written before all pass), then open their folders."""
    reason = why_not_packable(configs)
    if reason:
        raise DamtuiError(reason)
    k = len(configs)
    from_runs = from_runs or [None] * k
    run_names = run_names or [None] * k
    if len(emits) != k or len(from_runs) != k or len(run_names) != k:
        raise DamtuiError("give one --from and one --name per packed seed")
    preps: list[Prepared] = []
    for config, emit, src, name in zip(configs, emits, from_runs, run_names):
        shared = preps[0].pipeline if preps else None
        extra = {**(runtime_extra or {}), "packed_with": k}
        preps.append(prepare(config, emit, runs_dir=runs_dir, data_root=data_root, device=device, from_run=src,
                             runtime_extra=extra, run_name=name, pipeline=shared, threads=threads))
    widths = {p.state.config.width for p in preps}
    if len(widths) != 1:
        raise DamtuiError(f"the --from runs have different widths {sorted(widths)}; pack runs of one width")
    trainer = PackedTrainer([p.state for p in preps], preps[0].spec, preps[0].pipeline, preps[0].device)
    return trainer, [p.open() for p in preps]


class PackedTrainer:
    """K members as one Stack: one vmapped forward and backward per batch for all of them. Each
    member draws its own sample order and augmentation (its own random stream); `publish` copies
    a member's share back into its RunState, which its recorder saves in the usual format."""

    def __init__(self, members: list[RunState], spec: DatasetSpec, pipeline: DataPipeline,
                 device: torch.device) -> None:
        self.states, self.spec, self.pipeline, self.device = members, spec, pipeline, device
        self.c = members[0].config
        self.members = len(members)
        self.stack = Stack([m.model for m in members]).to(device)
        self.stage = Stage(self.c, self.stack, spec, pipeline.splits.positive_share("train"), device,
                           members=self.members)
        self.stage.load_state_dict(stack_states([m.stage.state_dict() for m in members], "stage"))
        self.ema = make_ema(self.stack, self.c.ema)
        self.ema_updates = 0  # packed runs start fresh (a member resumes alone)
        self.autocast = amp_enabled(self.c, device)
        self.alive = torch.ones(self.members, dtype=torch.bool, device=device)  # on the device: no copy per step
        self.alive_count = self.members

    @property
    def lr(self) -> float:
        return self.stage.lr

    def epoch_batches(self, epoch: int) -> tuple[Iterator[Batch], int]:
        self.stage.start_epoch(epoch)
        streams = []
        for m in self.states:
            seed_epoch(m.config.seed, epoch)
            order = epoch_order(self.pipeline.np_labels["train"], m.config, epoch)
            streams.append(_Stream(iter(self.pipeline.train_batches(order)), self.device))
        self.stack.train()
        n_batches = self.pipeline.num_train_batches(order)

        def batches() -> Iterator[Batch]:
            for _ in range(n_batches):
                xs, ys = zip(*(s.next() for s in streams))
                yield torch.stack(xs), torch.stack(ys)

        return batches(), n_batches

    def step(self, x: torch.Tensor, y: torch.Tensor, alive: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        stage = self.stage
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            out = self.stack(x)
        losses = torch.stack([stage.loss(out[i], y[i], member=i) for i in range(self.members)]).reshape(-1)
        stage.optimizer.zero_grad(set_to_none=True)
        torch.where(self._alive_mask(alive), losses, 0).sum().backward()  # a failed member gets no gradient
        stage.optimizer.step()
        if self.ema is not None:
            update_ema(self.ema, self.stack, self.c.ema, first=self.ema_updates == 0)
            self.ema_updates += 1
        return losses.detach(), stage.scores(out.detach())

    def _alive_mask(self, alive: list[int]) -> torch.Tensor:
        """The members still training as a mask on the device, changed only when one fails: indexing
        the losses with the Python list would copy it to the device, and wait, every step."""
        if len(alive) != self.alive_count:
            for i in set(range(self.members)) - set(alive):
                self.alive[i] = False
            self.alive_count = len(alive)
        return self.alive

    @torch.inference_mode()
    def evaluate(self, split: str) -> Scored:
        """Scores (K, N, L) of every member on one split, one vmapped pass per eval batch."""
        model = (self.ema.module if self.ema is not None else self.stack).eval()
        out_s, out_y = [], []
        for x, y in self.pipeline.eval_batches(split):
            views = [x, x.flip(-1)] if self.c.tta_flip else [x]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                scores = sum(output_scores(model(v, shared_input=True), self.c.stage, self.spec.multilabel)
                             for v in views) / len(views)
            out_s.append(scores)
            out_y.append(y)
        return torch.cat(out_s, 1).cpu().numpy(), torch.cat(out_y).cpu().numpy()

    def aucm_numbers(self, i: int) -> dict[str, float]:
        return self.stage.aucm_numbers(i)

    def publish(self, i: int) -> None:
        """Copy member i's share of the pack into its own model, EMA and stage."""
        member = self.states[i]
        self.stack.copy_member_into(i, member.model)
        if self.ema is not None:
            self.ema.module.copy_member_into(i, member.ema.module)
            member.ema.n_averaged.copy_(self.ema.n_averaged)
        member.stage.load_state_dict(member_state(self.stage.state_dict(), i))
