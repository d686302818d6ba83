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
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from damtui import engine, runs
from damtui.config import Config, hyperparameters
from damtui.errors import DamtuiError
from damtui.events import BatchProgress
from damtui.pipeline import epoch_order
from damtui.stages import Stage, output_scores


def why_not_packable(configs: list[Config]) -> str | None:
    """None when the configs can train packed, else the reason, phrased as what to change."""
    if len(configs) < 2:
        return "packing needs at least 2 seeds"
    if len({c.seed for c in configs}) != len(configs):
        return "packed members need distinct seeds"
    first = hyperparameters(configs[0], ["seed"])
    if any(hyperparameters(c, ["seed"]) != first for c in configs[1:]):
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
        self._base = [copy.deepcopy(models[0]).to("meta")]  # in a list: structure only, not a submodule

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


def train_packed(
    configs: list[Config],
    emits: list[engine.Emit],
    stop_event: threading.Event,
    *,
    runs_dir: Path,
    data_root: Path | None = None,
    device: str = "auto",
    from_runs: list[Path | None] | None = None,
    runtime_extra: dict[str, Any] | None = None,
    run_names: list[str | None] | None = None,
    threads: int | None = None,
) -> list[dict[str, Any]]:
    """Train the members of `configs` (same config, distinct seeds) packed; one summary each."""
    reason = why_not_packable(configs)
    if reason:
        raise DamtuiError(reason)
    k = len(configs)
    from_runs = from_runs or [None] * k
    run_names = run_names or [None] * k
    if len(emits) != k or len(from_runs) != k or len(run_names) != k:
        raise DamtuiError("give one --from and one --name per packed seed")
    preps: list[engine.Prepared] = []
    for config, emit, src, name in zip(configs, emits, from_runs, run_names):
        shared = preps[0].loop.pipeline if preps else None
        extra = {**(runtime_extra or {}), "packed_with": k}
        preps.append(engine.prepare(config, emit, stop_event, runs_dir=runs_dir, data_root=data_root,
                                    device=device, from_run=src, runtime_extra=extra, run_name=name,
                                    pipeline=shared, threads=threads))
    widths = {p.loop.c.width for p in preps}
    if len(widths) != 1:
        raise DamtuiError(f"the --from runs have different widths {sorted(widths)}; pack runs of one width")
    packed = _PackedLoop([p.loop for p in preps], stop_event)
    for p in preps:
        p.open()
    return packed.run()


class _PackedLoop:
    """The epoch loop over K members; each member's engine loop does its own bookkeeping."""

    def __init__(self, members: list[engine._Loop], stop: threading.Event) -> None:
        first = members[0]
        self.members, self.stop = members, stop
        self.c, self.spec, self.device, self.pipeline = first.c, first.spec, first.device, first.pipeline
        self.stack = Stack([m.model for m in members]).to(self.device)
        self.stage = Stage(self.c, self.stack, self.spec, self.pipeline.splits.positive_share("train"),
                           self.device, members=len(members))
        self.stage.load_state_dict(stack_states([m.stage.state_dict() for m in members], "stage"))
        self.ema = None
        if self.c.ema > 0:
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            self.ema = AveragedModel(self.stack, multi_avg_fn=get_ema_multi_avg_fn(self.c.ema), use_buffers=True)
        self.autocast = self.device.type == "cuda" and self.c.amp
        self.alive = list(range(len(members)))

    def run(self) -> list[dict[str, Any]]:
        summaries: dict[int, dict[str, Any]] = {}
        try:
            for epoch in range(self.c.epochs):
                done = self._epoch(epoch, summaries)
                if not done:
                    for i in self.alive:
                        summaries[i] = self.members[i].end(runs.CANCELLED, "cancelled")
                    self.alive = []
                    break
            for i in self.alive:
                summaries[i] = self.members[i].end(runs.FINISHED, "")
        except Exception as err:
            for i in self.alive:
                summaries[i] = self.members[i].fail_with(err)
        return [summaries[i] for i in range(len(self.members))]

    def _epoch(self, epoch: int, summaries: dict[int, dict[str, Any]]) -> bool:
        c, stage, k = self.c, self.stage, len(self.members)
        stage.start_epoch(epoch)
        streams = []
        for m in self.members:
            engine._seed_epoch(m.c.seed, epoch)
            order = epoch_order(self.pipeline.np_labels["train"], m.c, epoch)
            streams.append(_Stream(iter(self.pipeline.train_batches(order)), self.device))
        n_batches = self.pipeline.num_train_batches(order)
        self.stack.train()
        t0 = last_emit = time.perf_counter()
        loss_sum = torch.zeros(k, device=self.device)
        seen, scores, labels = 0, [], []
        for b in range(n_batches):
            if self.stop.is_set():
                return False
            xs, ys = zip(*(s.next() for s in streams))
            x, y = torch.stack(xs), torch.stack(ys)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
                out = self.stack(x)
            member_losses = torch.stack([stage.loss(out[i], y[i], member=i) for i in range(k)]).reshape(k)
            stage.optimizer.zero_grad(set_to_none=True)
            member_losses[self.alive].sum().backward()
            stage.optimizer.step()
            if self.ema is not None:
                engine.update_ema(self.ema, self.stack)
            loss_sum += member_losses.detach() * y.shape[1]
            seen += y.shape[1]
            scores.append(stage.scores(out.detach()))
            labels.append(y)
            now = time.perf_counter()
            if now - last_emit >= engine.PROGRESS_EVERY_S or b + 1 == n_batches:
                last_emit = now
                rate = seen * len(self.alive) / max(now - t0, 1e-9)
                left = (n_batches - b - 1) * (now - t0) / (b + 1)
                values = member_losses.detach().cpu().tolist()
                for i in self.alive:
                    self.members[i].emit(BatchProgress(epoch + 1, b + 1, n_batches, values[i], rate, left))
                    self.members[i].writer.heartbeat()
        train_s = time.perf_counter() - t0
        train_losses = (loss_sum / max(seen, 1)).cpu().tolist()
        t1 = time.perf_counter()
        val, test = self._scores("val"), self._scores("test")
        all_scores, all_labels = torch.cat(scores, 1).cpu().numpy(), torch.cat(labels, 1).cpu().numpy()
        for i in list(self.alive):
            member = self.members[i]
            try:
                member.check_finite(train_losses[i], epoch)
            except DamtuiError as err:
                summaries[i] = member.fail(str(err))
                self.alive.remove(i)
                continue
            row = engine.epoch_row(epoch, train_losses[i], (all_scores[i], all_labels[i]),
                                   (val[0][i], val[1]), (test[0][i], test[1]), stage.lr, seen, t0, t1, train_s)
            self._sync(i)
            member.record(epoch, row)
        return True

    @torch.inference_mode()
    def _scores(self, split: str) -> tuple[np.ndarray, np.ndarray]:
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

    def _sync(self, i: int) -> None:
        """Copy member i's share of the pack into its own model, EMA and stage, which its engine
        loop then saves in the usual checkpoint format."""
        member = self.members[i]
        self.stack.copy_member_into(i, member.model)
        if self.ema is not None:
            self.ema.module.copy_member_into(i, member.ema.module)
            member.ema.n_averaged.copy_(self.ema.n_averaged)
        member.stage.load_state_dict(member_state(self.stage.state_dict(), i))
