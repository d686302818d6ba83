"""Feeding batches to the model: the fast device-resident path and the report's reference path.

fast:      each split is one uint8 tensor on the training device; a batch is an index into it,
           augmented in one batched call on the device (damtui.train.augment.augment_batch).
reference: the report's per-sample torchvision/torchio transforms in a DataLoader, kept so the
           fast path can be checked for faithfulness (`--set pipeline=reference`).
Both draw the epoch's sample order from the same seeded sampler, so only augmentation differs.
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from damtui.config import Config
from damtui.data.datasets import SPLITS, Splits


def layout(x: np.ndarray, is_3d: bool) -> torch.Tensor:
    """MedMNIST layout -> (N, C, H, W) or (N, 1, D, H, W) uint8."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    if is_3d or t.ndim == 3:
        return t.unsqueeze(1)
    return t.permute(0, 3, 1, 2).contiguous()  # RGB: channels last -> first


def epoch_order(labels: np.ndarray, config: Config, epoch: int) -> np.ndarray:
    """Sample indices for one epoch, a pure function of (seed, epoch) so a resumed run repeats it.

    With `dual_sampler`, LibAUC's DualSampler oversamples the *minority* class: when label 1 is
    the majority (BreastMNIST, PneumoniaMNIST) the sampler is given flipped labels.
    """
    seed = config.seed * 100_003 + epoch
    n = len(labels)
    if not config.dual_sampler:
        return np.random.default_rng(seed).permutation(n)
    from libauc.sampler import DualSampler

    y = labels[:, 0].astype(np.int64)
    minority = y if y.mean() <= 0.5 else 1 - y
    state = np.random.get_state()  # DualSampler reseeds numpy's global RNG
    try:
        sampler = DualSampler(np.arange(n), config.batch_size, labels=minority,
                              sampling_rate=config.sampling_rate, random_seed=seed % (2**31))
        order = np.fromiter(iter(sampler), dtype=np.int64)
    finally:
        np.random.set_state(state)
    return order


class _SampleSet(torch.utils.data.Dataset):
    """Per-sample dataset for the reference pipeline (picklable for DataLoader workers)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), torch.from_numpy(self.labels[i]).float()


class _EpochBatches:
    """A batch sampler whose batches are replaced every epoch (sampling stays in this process)."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class DataPipeline:
    def __init__(self, splits: Splits, config: Config, device: torch.device, workers: int = 0) -> None:
        self.splits = splits
        self.spec = splits.spec
        self.config = config
        self.device = device
        self.workers = workers
        self.is_3d = splits.spec.is_3d
        self.np_labels = splits.labels
        self.np_images = splits.images
        self.y = {s: torch.from_numpy(splits.labels[s]).float().to(device) for s in SPLITS}
        self.x = {s: layout(splits.images[s], self.is_3d).to(device) for s in SPLITS}
        self._epoch_batches = _EpochBatches()
        self._loader: torch.utils.data.DataLoader | None = None

    def sizes(self) -> dict[str, int]:
        return {s: len(self.y[s]) for s in SPLITS}

    def _batches(self, order: np.ndarray, size: int) -> list[np.ndarray]:
        """Consecutive slices of `order`; only the last can be short. It is dropped if it has one
        sample (a batch of one breaks BatchNorm in train mode), and under `compile` whenever it is
        short: a compiled step replays one captured shape (a new shape would compile again)."""
        out = [order[i:i + size] for i in range(0, len(order), size)]
        least = size if self.config.compile else 2
        return [b for b in out if len(b) >= least]

    def num_train_batches(self, order: np.ndarray) -> int:
        return len(self._batches(order, self.config.batch_size))

    def train_batches(self, order: np.ndarray) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from damtui.train import augment

        batches = self._batches(order, self.config.batch_size)
        if self.config.pipeline == "reference":
            yield from self._reference(batches, train=self.config.augment)
            return
        # One host-to-device copy of the order per epoch, sliced on the device per batch: a copy from
        # pageable memory per batch would synchronise the stream every step, so the CPU could never
        # queue the next step while the GPU runs this one (small models are launch-bound).
        order_dev = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64)).to(self.device)
        size = self.config.batch_size
        for i, b in enumerate(batches):  # consecutive slices of the order (see _batches)
            idx = order_dev[i * size:i * size + len(b)]
            x = self.x["train"].index_select(0, idx)
            x = augment.augment_batch(x, self.is_3d) if self.config.augment else augment.to_float(x, self.is_3d)
            yield x, self.y["train"].index_select(0, idx)

    def _reference(self, batches: list[np.ndarray], train: bool):
        """The report's DataLoader, created once with persistent workers (as a plain PyTorch
        script would run it); each epoch only swaps the batch list the sampler hands out."""
        if self._loader is None:
            from damtui.train import augment

            ds = _SampleSet(self.np_images["train"], self.np_labels["train"],
                            augment.reference_transform(self.is_3d, train=train))
            self._loader = torch.utils.data.DataLoader(
                ds, batch_sampler=self._epoch_batches, num_workers=self.workers,
                pin_memory=self.device.type == "cuda", persistent_workers=self.workers > 0,
            )
        self._epoch_batches.batches = [b.tolist() for b in batches]
        for x, y in self._loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from damtui.train import augment

        x_all, y_all = self.x[split], self.y[split]
        step = self.config.eval_batch_size
        for i in range(0, len(y_all), step):
            yield augment.to_float(x_all[i:i + step], self.is_3d), y_all[i:i + step]
