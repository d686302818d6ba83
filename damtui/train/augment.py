"""The report's augmentations, twice: per sample as the report ran them, and batched on the device.

`reference_transform` is the report's chain verbatim (torchvision on PIL images for 2D, torchio
for 3D), one sample at a time, for DataLoader workers. `augment_batch` draws its parameters from
the same distributions (read off torchvision 0.29 / torchio 1.2.1 source) and applies them to a
whole uint8 batch already on the training device: the torchio chain costs 7-14 ms per 28^3
sample on a CPU core and would starve a GPU.

How the batched version differs from the reference (the tests pin each of these down):
- Same distributions, different random streams: a seed reproduces a run, not torchio's numbers.
- 2D: torchvision rotates with NEAREST, then crops and resizes with PIL's BILINEAR (8-bit
  rounding, clamped at the crop box). Here rotation, flip and crop are one affine matrix and one
  bilinear `grid_sample` (zeros outside, as the rotation's fill=0): a little smoother.
- 3D, one spatial transform drawn (3 samples in 4): equal to torchio's output to ~1e-6,
  borders included (ITK's clamp-to-edge inside the image, the sample minimum outside).
- 3D, affine AND elastic drawn (1 in 4): torchio resamples twice, this once along the composed
  map. Inside, that is only less smoothing (<= ~0.01 on the [0, 1] scale); within ~3 voxels of
  the field-of-view edge torchio blends its fill into the image, this cuts it hard. The fill is
  the input's minimum (torchio's elastic step takes the affine output's, nearly always equal).
- The elastic displacement is not approximated: it is ITK's cubic B-spline evaluated on ITK's own
  control grid (checked against SimpleITK's TransformPoint), including torchio's locked-border
  quirk (only the first two grid axes are locked; see `_locked_mask`).

`import damtui.train.augment` pulls in numpy and torch, not torchvision, torchio or textual.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from damtui.train.augment3d import (  # noqa: F401  (the 3D settings are part of this module's API)
    AFFINE_DEGREES, AFFINE_P, AFFINE_SCALES, AFFINE_TRANSLATION, ELASTIC_CONTROL_POINTS, ELASTIC_LOCKED_BORDERS,
    ELASTIC_MAX_DISPLACEMENT, ELASTIC_P, FLIP_P_3D, NOISE_P, NOISE_STD, apply_3d, sample_3d, uniform,
)

MEAN_2D, STD_2D = 0.1307, 0.3081

# 2D (torchvision): RandomRotation(15), RandomHorizontalFlip(0.5),
# RandomResizedCrop(28, scale=(0.8, 1.2)), then ToTensor and Normalize.
ROTATION_2D = 15.0
FLIP_P_2D = 0.5
CROP_SIZE_2D = 28
CROP_SCALE = (0.8, 1.2)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 times, then falls back



# ---------------------------------------------------------------------------------------------
# Public API


def to_float(x: torch.Tensor, is_3d: bool) -> torch.Tensor:
    """uint8 batch (N,C,...) -> float32 normalised exactly like eval: 2D (x/255-mean)/std,
    3D x/255. Bit for bit what reference_transform(train=False) gives per sample."""
    out = x.float().div(255)
    return out if is_3d else _normalize_2d(out)


def _normalize_2d(img: torch.Tensor) -> torch.Tensor:
    """(img - mean) / std with float32 tensors, so it is torchvision's Normalize bit for bit."""
    mean, std = _mean_std(img.device)
    return img.sub(mean).div(std)


@functools.cache
def _mean_std(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Built once per device: `torch.tensor(value, device=cuda)` copies from pageable memory and
    waits for the stream, which twice a step kept the host from queueing the next one."""
    return (torch.tensor(MEAN_2D, dtype=torch.float32, device=device),
            torch.tensor(STD_2D, dtype=torch.float32, device=device))


def reference_transform(is_3d: bool, train: bool) -> Callable[[np.ndarray], torch.Tensor]:
    """Per-sample transform of the report (torchvision 2D / torchio 3D) taking ONE uint8 numpy
    sample in MedMNIST layout ((28, 28), (28, 28, 3) or (28, 28, 28)) and returning a float32
    tensor (C,H,W) or (1,D,H,W), normalised like to_float. train=False: no augmentation.
    Picklable for DataLoader workers (a small class, no lambdas)."""
    return _Reference3D(train) if is_3d else _Reference2D(train)


@torch.no_grad()
def augment_batch(x: torch.Tensor, is_3d: bool) -> torch.Tensor:
    """Batched augmentation on x's device (uint8 batch in, float32 normalised out).

    Parameters come from the same distributions as `reference_transform(is_3d, train=True)`,
    drawn with torch's global RNG on x.device, so seeding torch makes an epoch reproducible (per
    device: CPU and CUDA generators differ). Each sample is resampled once, by one `grid_sample`
    over the batch (over chunks of 16 on CPU, to stay in cache); no Python loop over samples.
    CPU and CUDA, fp32.
    """
    _check_batch(x, is_3d)
    if x.shape[0] == 0:
        return to_float(x, is_3d)
    if is_3d:
        return apply_3d(x, sample_3d(x.shape[0], x.device))
    return _apply_2d(x, _sample_2d(x.shape[0], tuple(x.shape[-2:]), x.device))


# ---------------------------------------------------------------------------------------------
# Reference (per sample)


class _Reference2D:
    """PIL -> torchvision chain: MedMNIST's 2D datasets hand PIL images to the transform."""

    def __init__(self, train: bool) -> None:
        from torchvision import transforms as T

        steps: list = []
        if train:
            steps = [
                T.RandomRotation(ROTATION_2D),
                T.RandomHorizontalFlip(p=FLIP_P_2D),
                T.RandomResizedCrop(CROP_SIZE_2D, scale=CROP_SCALE, ratio=CROP_RATIO),
            ]
        steps += [T.ToTensor(), T.Normalize((MEAN_2D,), (STD_2D,))]
        self.train = train
        self.transform = T.Compose(steps)

    def __call__(self, sample: np.ndarray) -> torch.Tensor:
        from PIL import Image

        return self.transform(Image.fromarray(np.ascontiguousarray(sample, dtype=np.uint8)))


class _Reference3D:
    """uint8 volume -> /255 -> torchio chain (the noise std is on the [0, 1] scale)."""

    def __init__(self, train: bool) -> None:
        self.train = train
        self.transform = None
        if train:
            import torchio as tio

            self.transform = tio.Compose([
                tio.RandomAffine(
                    scales=AFFINE_SCALES, degrees=AFFINE_DEGREES,
                    translation=AFFINE_TRANSLATION, p=AFFINE_P,
                ),
                tio.RandomElasticDeformation(
                    num_control_points=ELASTIC_CONTROL_POINTS,
                    max_displacement=ELASTIC_MAX_DISPLACEMENT,
                    locked_borders=ELASTIC_LOCKED_BORDERS, p=ELASTIC_P,
                ),
                # p=1: the 0.5 is drawn per axis by flip_probability, as in torchio's default.
                tio.RandomFlip(axes=(0, 1, 2), flip_probability=FLIP_P_3D),
                tio.RandomNoise(std=NOISE_STD, p=NOISE_P),
            ])

    def __call__(self, sample: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(sample, dtype=np.uint8)).float()[None].div(255)
        if self.transform is not None:
            x = self.transform(x)
        return x


# ---------------------------------------------------------------------------------------------
# Batched: parameters


@dataclass
class _Params2D:
    """Per-sample parameters, in torchvision's terms: angle in degrees (counter-clockwise, as
    PIL), horizontal flip, crop box (top, left, height, width) in pixels."""

    angle: torch.Tensor  # (N,)
    flip: torch.Tensor  # (N,) bool
    top: torch.Tensor  # (N,) float, integer-valued
    left: torch.Tensor
    height: torch.Tensor
    width: torch.Tensor




def _sample_2d(n: int, size: tuple[int, int], device: torch.device) -> _Params2D:
    """torchvision's RandomRotation / RandomHorizontalFlip / RandomResizedCrop draws, batched.

    The crop reproduces `RandomResizedCrop.get_params`: ten attempts of area U(0.8, 1.2) x image
    area and log-uniform aspect ratio, w/h rounded half-to-even like Python's round; the first
    attempt that fits is used with a uniform integer position; if none fits (scale > 1 often
    overflows the image) the centre-crop fallback, which for a square image is the whole image.
    """
    h_img, w_img = size
    angle = uniform((n,), -ROTATION_2D, ROTATION_2D, device)
    flip = torch.rand(n, device=device) < FLIP_P_2D

    scale = uniform((n, CROP_ATTEMPTS), *CROP_SCALE, device)
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = torch.exp(uniform((n, CROP_ATTEMPTS), log_lo, log_hi, device)).double()
    area = float(h_img * w_img) * scale.double()
    w_try = torch.round(torch.sqrt(area * aspect))
    h_try = torch.round(torch.sqrt(area / aspect))
    fits = (w_try > 0) & (w_try <= w_img) & (h_try > 0) & (h_try <= h_img)
    first = fits.to(torch.uint8).argmax(dim=1, keepdim=True)  # first attempt that fits
    any_fits = fits.any(dim=1)

    fb_h, fb_w = _fallback_crop(h_img, w_img)
    height = torch.where(any_fits, h_try.gather(1, first)[:, 0], float(fb_h)).float()
    width = torch.where(any_fits, w_try.gather(1, first)[:, 0], float(fb_w)).float()
    # torch.randint(0, m + 1) per sample == floor(U[0,1) * (m + 1)), clamped against rounding up.
    top_room, left_room = h_img - height, w_img - width
    top = torch.minimum(torch.floor(torch.rand(n, device=device) * (top_room + 1)), top_room)
    left = torch.minimum(torch.floor(torch.rand(n, device=device) * (left_room + 1)), left_room)
    top = torch.where(any_fits, top, float((h_img - fb_h) // 2))
    left = torch.where(any_fits, left, float((w_img - fb_w) // 2))
    return _Params2D(angle, flip, top, left, height, width)


def _fallback_crop(h_img: int, w_img: int) -> tuple[int, int]:
    """torchvision's central-crop fallback size (h, w) when no attempt fits."""
    in_ratio = w_img / h_img
    if in_ratio < min(CROP_RATIO):
        return int(round(w_img / min(CROP_RATIO))), w_img
    if in_ratio > max(CROP_RATIO):
        return h_img, int(round(h_img * max(CROP_RATIO)))
    return h_img, w_img


# ---------------------------------------------------------------------------------------------
# Batched: application


def _check_batch(x: torch.Tensor, is_3d: bool) -> None:
    want = 5 if is_3d else 4
    if x.dtype != torch.uint8 or x.dim() != want:
        raise ValueError(
            f"augment_batch wants a uint8 tensor with {want} dims, got {x.dtype} {tuple(x.shape)}"
        )


def _apply_2d(x: torch.Tensor, p: _Params2D) -> torch.Tensor:
    """Rotate, flip, crop-and-resize as ONE output->input affine map, one bilinear resampling.

    Built in continuous pixel coordinates (pixel k spans [k, k+1], as PIL): output -> crop box
    (PIL's resize of the crop) -> undo flip -> PIL's rotation about (W/2, H/2) -> source. Outside
    the source is 0 before normalisation, as RandomRotation's fill=0.
    """
    n, c, h, w = x.shape
    img = x.float().div(255)
    dev = img.device
    one, zero = torch.ones(n, device=dev), torch.zeros(n, device=dev)

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)  # (n, 3, 3)

    def const(v: float) -> torch.Tensor:
        return torch.full((n,), float(v), device=dev)

    to_pixels = mat([
        [const(w / 2), zero, const(w / 2)], [zero, const(h / 2), const(h / 2)], [zero, zero, one]
    ])
    crop = mat([[p.width / w, zero, p.left], [zero, p.height / h, p.top], [zero, zero, one]])
    sign = torch.where(p.flip, -1.0, 1.0)
    shift = torch.where(p.flip, float(w), 0.0)
    flip = mat([[sign, zero, shift], [zero, one, zero], [zero, zero, one]])
    rad = torch.deg2rad(p.angle)
    cos, sin = torch.cos(rad), torch.sin(rad)
    cx, cy = w / 2, h / 2
    rotate = mat([
        [cos, -sin, cx - cos * cx + sin * cy],
        [sin, cos, cy - sin * cx - cos * cy],
        [zero, zero, one],
    ])
    to_norm = mat([
        [const(2 / w), zero, const(-1)], [zero, const(2 / h), const(-1)], [zero, zero, one]
    ])
    theta = to_norm @ rotate @ flip @ crop @ to_pixels
    grid = F.affine_grid(theta[:, :2], [n, c, h, w], align_corners=False)
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _normalize_2d(out)
