"""The two training stages: what loss, optimizer, head and lr schedule each one uses.

pretrain: cross-entropy over 2 logits (binary) or BCE-with-logits (multi-label); SGD or Adam;
          lr divided by `decay_factor` at the milestones.
finetune: LibAUC's AUCMLoss v1 (MultiLabelAUCMLoss for multi-label) on sigmoid scores with PESG;
          at each milestone `update_regularizer(decay_factor)` (never before the first step).
          The binary single-score head starts as z1 - z0 of the pretrained CE head.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from damtui.config import Config
from damtui.data.datasets import DatasetSpec
from damtui.train.models import ResNet18, build_model, transplant_binary_head


def num_outputs(spec: DatasetSpec, stage: str) -> int:
    if spec.multilabel:
        return spec.n_labels
    return 2 if stage == "pretrain" else 1


class Stage:
    """Loss, optimizer and schedule for one stage; `scores` maps outputs to probabilities (N, L)."""

    def __init__(self, config: Config, model: nn.Module, spec: DatasetSpec, pos_share: np.ndarray,
                 device: torch.device, members: int = 1) -> None:
        """`members` > 1: `model` is a damtui.train.packing.Stack and AUCM keeps one a/b/alpha per member."""
        self.config, self.model, self.spec, self.device = config, model, spec, device
        self.members = members
        self.milestones = config.resolved_milestones()
        self.loss_fn: nn.Module
        self.optimizer: torch.optim.Optimizer
        if config.stage == "pretrain":
            self._build_pretrain(pos_share)
        else:
            self._build_finetune(pos_share)

    # -- construction

    def _build_pretrain(self, pos_share: np.ndarray) -> None:
        c = self.config
        p = torch.tensor(np.clip(pos_share, 1e-6, 1 - 1e-6), dtype=torch.float32, device=self.device)
        if self.spec.multilabel:
            self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=(1 - p) / p if c.class_weighting else None)
        else:
            weight = None
            if c.class_weighting:  # inverse class frequency, normalised to mean 1
                freq = torch.stack([1 - p[0], p[0]])
                weight = (1.0 / freq) / (1.0 / freq).mean()
            self.loss_fn = nn.CrossEntropyLoss(weight=weight)
        params = self.model.parameters()
        if c.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, weight_decay=c.weight_decay)
        else:
            self.optimizer = torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    def _build_finetune(self, pos_share: np.ndarray) -> None:
        from libauc.losses import MultiLabelAUCMLoss
        from libauc.optimizers import PESG

        c = self.config
        self.imratio = float(np.mean(pos_share))
        if self.spec.multilabel:
            self.loss_fn = MultiLabelAUCMLoss(margin=c.margin, num_labels=self.spec.n_labels,
                                              imratio=[float(v) for v in pos_share], device=self.device)
        else:
            self.loss_fn = aucm_loss_type()(margin=c.margin, imratio=float(pos_share[0]), version="v1",
                                            device=self.device)
        if self.members > 1:
            _widen_aucm(self.loss_fn, self.members)
        self.optimizer = PESG(self.model.parameters(), loss_fn=self.loss_fn, lr=c.lr,
                              momentum=c.momentum, epoch_decay=c.epoch_decay,
                              weight_decay=c.weight_decay, device=self.device, verbose=False)

    # -- training step pieces

    def loss(self, out: torch.Tensor, y: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """The batch loss; `member` picks a packed member's AUCM a/b/alpha (see Stage.members)."""
        out = _at_least_float32(out)
        if self.config.stage == "finetune":
            loss_fn = self.loss_fn if member is None else _member_aucm(self.loss_fn, member)
            return loss_fn(torch.sigmoid(out), y)
        if self.spec.multilabel:
            return self.loss_fn(out, y)
        return self.loss_fn(out, y[:, 0].long())

    def scores(self, out: torch.Tensor) -> torch.Tensor:
        return output_scores(out, self.config.stage, self.spec.multilabel)

    def start_epoch(self, epoch: int) -> None:
        """Apply the schedule at the start of 0-based `epoch` (milestones are all > 0)."""
        if epoch not in self.milestones:
            return
        if self.config.stage == "finetune":
            if self.config.epoch_decay > 0:
                self.optimizer.update_regularizer(decay_factor=self.config.decay_factor)
            else:
                self.optimizer.update_lr(decay_factor=self.config.decay_factor)
        else:
            for g in self.optimizer.param_groups:
                g["lr"] = g["lr"] / self.config.decay_factor

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def aucm_numbers(self, member: int = 0) -> dict[str, float]:
        """LibAUC's a, b, alpha (means over labels) and the imratio given to its loss, of one member:
        what says whether AUCM/PESG is healthy. Empty for a pretrain. Note: a host sync."""
        if self.config.stage != "finetune":
            return {}
        out = {}
        for name in ("a", "b", "alpha"):
            value = getattr(self.loss_fn, name).detach()
            out[f"aucm_{name}"] = float((value[member] if self.members > 1 else value).float().mean())
        # the imratio given to the loss; note: LibAUC 2.0.1's v1 forward (auto=True) replaces it by
        # each batch's positive share, which train_pos_share records
        out["imratio"] = self.imratio
        return out

    # -- checkpoint state

    def state_dict(self) -> dict[str, Any]:
        optimizer = self.optimizer.state_dict()
        if self.config.stage == "finetune":
            # PESG keeps its reference/average weights and a/b/alpha in every param group AND at the
            # top level (a second full copy of the model each in last.pt); its load_state_dict
            # re-points the groups at the top-level ones, so the groups need not carry them.
            optimizer["param_groups"] = [{k: v for k, v in g.items() if k not in PESG_SHARED}
                                         for g in optimizer["param_groups"]]
        state: dict[str, Any] = {"optimizer": optimizer}
        if self.config.stage == "finetune":
            # MultiLabelAUCMLoss keeps a/b/alpha outside its state_dict: save them ourselves.
            state["loss"] = {k: getattr(self.loss_fn, k).detach().clone() for k in ("a", "b", "alpha")}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.config.stage == "finetune":
            for k, v in state["loss"].items():
                getattr(self.loss_fn, k).data.copy_(v.to(self.device))
        keys = [set(g) for g in self.optimizer.param_groups]
        self.optimizer.load_state_dict(state["optimizer"])  # PESG re-points a/b/alpha itself
        for group, fresh in zip(self.optimizer.param_groups, keys):
            for key in set(group) - fresh:  # PESG's __setstate__ adds an unused 'nesterov' on load:
                del group[key]  # a resumed checkpoint keeps the structure of an uninterrupted one


PESG_SHARED = ("model_ref", "model_acc", "a", "b", "alpha")  # in PESG's groups and restored from itself


def output_scores(out: torch.Tensor, stage: str, multilabel: bool) -> torch.Tensor:
    """Probabilities (..., N, L) from model outputs (..., N, outputs): class-1 softmax of a 2-logit
    CE head, else sigmoid. Leading dimensions are packed members."""
    out = _at_least_float32(out)
    if stage == "pretrain" and not multilabel:
        return torch.softmax(out, dim=-1)[..., 1:2]
    return torch.sigmoid(out)


def _at_least_float32(out: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 outputs of autocast up to float32; float64 (the equality tests) stays float64."""
    return out.float() if out.dtype in (torch.float16, torch.bfloat16) else out


@functools.cache
def aucm_loss_type() -> type[nn.Module]:
    """LibAUC's AUCMLoss with a forward that never waits for the device (built on first use: libauc
    is a heavy import). Its own v1 forward first runs `if sum(pos_mask) == 0: warnings.warn(...)`:
    Python's `sum` indexes the device tensor once per sample, then `bool` copies the total to the
    host, every step. This forward is that method's v1 arithmetic, term for term in the same order,
    without the check (a batch without positives trains as before, only unannounced); a test holds
    it equal to LibAUC's loss and gradients."""
    from libauc.losses import AUCMLoss
    from libauc.losses.auc import check_tensor_shape

    class AUCMLossNoSync(AUCMLoss):
        def forward(self, y_pred: torch.Tensor, y_true: torch.Tensor, auto: bool = True, **kwargs: Any) -> torch.Tensor:
            if self.version != "v1":
                return super().forward(y_pred, y_true, auto=auto, **kwargs)
            y_pred = check_tensor_shape(y_pred, (-1, 1))
            y_true = check_tensor_shape(y_true, (-1, 1))
            if auto or self.p is None:
                self.p = (1 == y_true).float().sum() / y_true.shape[0]
            return (1 - self.p) * torch.mean((y_pred - self.a) ** 2 * (1 == y_true).float()) + \
                self.p * torch.mean((y_pred - self.b) ** 2 * (0 == y_true).float()) + \
                2 * self.alpha * (self.p * (1 - self.p) * self.margin +
                                  torch.mean((self.p * y_pred * (0 == y_true).float()
                                              - (1 - self.p) * y_pred * (1 == y_true).float()))) - \
                self.p * (1 - self.p) * self.alpha ** 2

    return AUCMLossNoSync


def _widen_aucm(loss_fn: nn.Module, members: int) -> None:
    """Give an AUCM loss one a/b/alpha per packed member (leading dimension), before PESG is built
    on it: PESG's updates are elementwise, so each member's a/b/alpha move as if trained alone."""
    for name in ("a", "b", "alpha"):
        old = getattr(loss_fn, name)
        new = torch.zeros((members, *old.shape), dtype=old.dtype, device=old.device, requires_grad=True)
        setattr(loss_fn, name, nn.Parameter(new) if isinstance(old, nn.Parameter) else new)


def _member_aucm(loss_fn: nn.Module, k: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """LibAUC's own AUCM forward, evaluated with member k's a/b/alpha. The views are taken at each
    call: PESG rebinds a.data/b.data every step, so a view kept from an earlier step goes stale."""
    view = SimpleNamespace(**{n: v for n, v in vars(loss_fn).items() if not n.startswith("_")})
    view.a, view.b, view.alpha = loss_fn.a[k], loss_fn.b[k], loss_fn.alpha[k]
    if isinstance(view.p, list):
        view.p = list(view.p)  # MultiLabelAUCMLoss writes the batch's positive share into it
    if hasattr(loss_fn, "mean"):
        view.mean = loss_fn.mean
    forward = type(loss_fn).forward
    return lambda pred, y: forward(view, pred, y)


def make_model(config: Config, spec: DatasetSpec, outputs: int) -> ResNet18:
    return build_model(spec.n_channels, outputs, spec.is_3d, config.width, config.dropout)


def finetune_model_from(config: Config, spec: DatasetSpec, source_state: dict[str, torch.Tensor]) -> ResNet18:
    """Pretrained weights with the fine-tune head: z1 - z0 (binary) or the same logits (multi-label)."""
    model = make_model(config, spec, num_outputs(spec, "pretrain"))
    model.load_state_dict(source_state)
    if not spec.multilabel:
        if config.head_transplant:
            model.fc = transplant_binary_head(model.fc)
        else:
            model.fc = nn.Linear(model.fc.in_features, 1)
    return model
