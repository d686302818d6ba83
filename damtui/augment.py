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

`import damtui.augment` pulls in numpy and torch, not torchvision, torchio or textual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

MEAN_2D, STD_2D = 0.1307, 0.3081

# 2D (torchvision): RandomRotation(15), RandomHorizontalFlip(0.5),
# RandomResizedCrop(28, scale=(0.8, 1.2)), then ToTensor and Normalize.
ROTATION_2D = 15.0
FLIP_P_2D = 0.5
CROP_SIZE_2D = 28
CROP_SCALE = (0.8, 1.2)
CROP_RATIO = (3 / 4, 4 / 3)
CROP_ATTEMPTS = 10  # torchvision's RandomResizedCrop.get_params tries 10 times, then falls back

# 3D (torchio): RandomAffine, RandomElasticDeformation, RandomFlip, RandomNoise.
AFFINE_P = 0.5
AFFINE_SCALES = (0.9, 1.1)
AFFINE_DEGREES = 10.0
AFFINE_TRANSLATION = 0.1  # mm; torchio wraps a tensor with an identity affine, so 1 mm = 1 voxel
ELASTIC_P = 0.5
ELASTIC_MAX_DISPLACEMENT = 5.0
ELASTIC_CONTROL_POINTS = 5
ELASTIC_LOCKED_BORDERS = 2
FLIP_P_3D = 0.5
NOISE_P = 0.5
NOISE_STD = (0.01, 0.05)

_SPLINE_ORDER = 3
_ITK_EPSILON = 0.125  # ITK's BSplineTransformInitializer widens the image bounds by this (mm)
_LPS = (-1.0, -1.0, 1.0)  # torchio hands ITK RAS tensors as LPS: the first two axes change sign


# ---------------------------------------------------------------------------------------------
# Public API


def to_float(x: torch.Tensor, is_3d: bool) -> torch.Tensor:
    """uint8 batch (N,C,...) -> float32 normalised exactly like eval: 2D (x/255-mean)/std,
    3D x/255. Bit for bit what reference_transform(train=False) gives per sample."""
    out = x.float().div(255)
    return out if is_3d else _normalize_2d(out)


def _normalize_2d(img: torch.Tensor) -> torch.Tensor:
    """(img - mean) / std with float32 tensors, so it is torchvision's Normalize bit for bit."""
    mean = torch.tensor(MEAN_2D, dtype=torch.float32, device=img.device)
    std = torch.tensor(STD_2D, dtype=torch.float32, device=img.device)
    return img.sub(mean).div(std)


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
        return _apply_3d(x, _sample_3d(x.shape[0], x.device))
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


@dataclass
class _Params3D:
    """Per-sample parameters, in torchio's terms (so tests can feed them to torchio as is).

    `control` is torchio's `ElasticDeformation.control_points` layout (N, 5, 5, 5, 3): ITK grid
    index order, LPS displacement components in mm.
    """

    affine: torch.Tensor  # (N,) bool
    scales: torch.Tensor  # (N, 3)
    degrees: torch.Tensor  # (N, 3)
    translation: torch.Tensor  # (N, 3)
    elastic: torch.Tensor  # (N,) bool
    control: torch.Tensor  # (N, K, K, K, 3)
    flip: torch.Tensor  # (N, 3) bool
    noise: torch.Tensor  # (N,) bool
    noise_std: torch.Tensor  # (N,)


def _uniform(shape: tuple[int, ...], low: float, high: float, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, device=device)


def _sample_2d(n: int, size: tuple[int, int], device: torch.device) -> _Params2D:
    """torchvision's RandomRotation / RandomHorizontalFlip / RandomResizedCrop draws, batched.

    The crop reproduces `RandomResizedCrop.get_params`: ten attempts of area U(0.8, 1.2) x image
    area and log-uniform aspect ratio, w/h rounded half-to-even like Python's round; the first
    attempt that fits is used with a uniform integer position; if none fits (scale > 1 often
    overflows the image) the centre-crop fallback, which for a square image is the whole image.
    """
    h_img, w_img = size
    angle = _uniform((n,), -ROTATION_2D, ROTATION_2D, device)
    flip = torch.rand(n, device=device) < FLIP_P_2D

    scale = _uniform((n, CROP_ATTEMPTS), *CROP_SCALE, device)
    log_lo, log_hi = math.log(CROP_RATIO[0]), math.log(CROP_RATIO[1])
    aspect = torch.exp(_uniform((n, CROP_ATTEMPTS), log_lo, log_hi, device)).double()
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


def _locked_mask(k: int, locked: int, device: torch.device) -> torch.Tensor:
    """torchio's locked borders: zeroes the outer `locked` control planes of the first TWO grid
    axes only (its loop indexes [i, :] and [:, i], never [:, :, i]); reproduced as is."""
    mask = torch.ones(k, k, k, 1, device=device)
    for i in range(locked):
        mask[i] = 0
        mask[-1 - i] = 0
        mask[:, i] = 0
        mask[:, -1 - i] = 0
    return mask


def _sample_3d(n: int, device: torch.device) -> _Params3D:
    """torchio's draws, batched: every scalar torchio draws with U(a, b) is U(a, b) here too.

    RandomAffine: s_i ~ U(0.9, 1.1), theta_i ~ U(-10, 10) deg, t_i ~ U(-0.1, 0.1) mm, per axis.
    RandomElasticDeformation: each control-point component ~ U(-5, 5) mm, borders locked.
    RandomFlip: each axis with probability 0.5. RandomNoise: std ~ U(0.01, 0.05), mean 0.
    Each of affine, elastic and noise is applied with p = 0.5 (torchio's `p`).
    """
    k = ELASTIC_CONTROL_POINTS
    d = ELASTIC_MAX_DISPLACEMENT
    locked = _locked_mask(k, ELASTIC_LOCKED_BORDERS, device)
    control = _uniform((n, k, k, k, 3), -d, d, device) * locked
    return _Params3D(
        affine=torch.rand(n, device=device) < AFFINE_P,
        scales=_uniform((n, 3), *AFFINE_SCALES, device),
        degrees=_uniform((n, 3), -AFFINE_DEGREES, AFFINE_DEGREES, device),
        translation=_uniform((n, 3), -AFFINE_TRANSLATION, AFFINE_TRANSLATION, device),
        elastic=torch.rand(n, device=device) < ELASTIC_P,
        control=control,
        flip=torch.rand(n, 3, device=device) < FLIP_P_3D,
        noise=torch.rand(n, device=device) < NOISE_P,
        noise_std=_uniform((n,), *NOISE_STD, device),
    )


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


def _knots(size: int, device: torch.device) -> torch.Tensor:
    """Voxel coordinates of ITK's K control points along an axis of `size` voxels, ascending.

    BSplineTransformInitializer (mesh K-3) widens the image bounds by 0.125 mm each side and puts
    the first knot one grid spacing before them (checked against SimpleITK's TransformPoint).
    """
    k = ELASTIC_CONTROL_POINTS
    spacing = (size + 2 * _ITK_EPSILON) / (k - _SPLINE_ORDER)
    steps = torch.arange(k, device=device, dtype=torch.float32) - 1
    return -0.5 - _ITK_EPSILON + steps * spacing


def _bspline_weights(coord: torch.Tensor, size: int) -> torch.Tensor:
    """Cubic B-spline weights (..., K) of the ascending knots at voxel coordinates `coord`."""
    k = ELASTIC_CONTROL_POINTS
    spacing = (size + 2 * _ITK_EPSILON) / (k - _SPLINE_ORDER)
    t = ((coord[..., None] - _knots(size, coord.device)) / spacing).abs()
    return torch.where(t < 1, 2 / 3 - t**2 + t**3 / 2, (2 - t).clamp(min=0) ** 3 / 6)


def _bspline_eval(
    ctrl: torch.Tensor, w0: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
) -> torch.Tensor:
    """Dense (m, C, S0, S1, S2) field from control values (m, C, K, K, K), one axis at a time:
    only the last product is full size, and it is written once. Channels first, so that
    reductions over channels are plain elementwise maxima of whole volumes (fast on CPU)."""
    m, c, k = ctrl.shape[:3]
    t = torch.einsum("ncijk,nzk->ncijz", ctrl, w2)
    t = torch.einsum("ncijz,nyj->nciyz", t, w1)
    dense = torch.matmul(w0[:, None], t.reshape(m, c, k, -1))  # (m, c, S0, S1 * S2)
    return dense.view(m, c, w0.shape[1], w1.shape[1], w2.shape[1])


def _rotation_ras(degrees: torch.Tensor) -> torch.Tensor:
    """(N, 3) degrees -> (N, 3, 3): torchio's Euler3D (Rz Rx Ry in LPS, angles of the first two
    axes negated) conjugated back to RAS, which is Rz(t3) Rx(t1) Ry(t2) with the angles as drawn."""
    a = torch.deg2rad(degrees)
    c, s = torch.cos(a), torch.sin(a)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])

    def mat(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(r, dim=-1) for r in rows], dim=-2)

    rx = mat([[one, zero, zero], [zero, c[:, 0], -s[:, 0]], [zero, s[:, 0], c[:, 0]]])
    ry = mat([[c[:, 1], zero, s[:, 1]], [zero, one, zero], [-s[:, 1], zero, c[:, 1]]])
    rz = mat([[c[:, 2], -s[:, 2], zero], [s[:, 2], c[:, 2], zero], [zero, zero, one]])
    return rz @ rx @ ry


def _sampling_controls(p: _Params3D, spatial: list[int], device: torch.device) -> torch.Tensor:
    """Control values (N, 6, K, K, K) whose B-spline interpolation gives, at each output voxel,
    the grid_sample coordinates of the final source point (channels 0-2) and of the elastic
    step's intermediate point (3-5), normalised and in grid_sample's (W, H, D) order.

    Cubic B-splines reproduce linear functions, so the voxel's own coordinate (the knot
    positions), the displacement (the control points) and the affine map of their sum all live
    on the 5x5x5 control grid; the dense grid then costs one separable interpolation.
    """
    k = ELASTIC_CONTROL_POINTS
    knots = [_knots(s, device) for s in spatial]
    position = torch.stack(torch.meshgrid(*knots, indexing="ij"), dim=-1)  # (K, K, K, 3)
    # torchio's control grid is ITK's: LPS components, index reversed along the LPS-flipped axes.
    lps = torch.tensor(_LPS, device=device)
    flip_dims = [1 + a for a in range(3) if _LPS[a] < 0]
    shift = p.control.flip(flip_dims) * lps * p.elastic[:, None, None, None, None]
    z = position + shift  # the elastic step's source point, in voxels

    sizes = torch.tensor(spatial, dtype=torch.float32, device=device)
    center = (sizes - 1) / 2
    on = p.affine[:, None]
    scales = torch.where(on, p.scales, 1.0)[:, None, None, None, :]
    translation = torch.where(on, p.translation, 0.0)[:, None, None, None, :]
    eye = torch.eye(3, device=device).expand(len(p.affine), 3, 3)
    rot = torch.where(on[:, :, None], _rotation_ras(p.degrees), eye)
    # The affine's output->input map, as SimpleITK applies it: c + R^T ((z - c) / s - t).
    src = center + torch.einsum("nijkc,ncd->nijkd", (z - center) / scales - translation, rot)

    both = torch.stack([src, z], dim=-2)  # (N, K, K, K, 2, 3)
    both = ((2 * both + 1) / sizes - 1).flip(-1).reshape(-1, k, k, k, 6)
    return both.permute(0, 4, 1, 2, 3)


# On CPU, chunks that stay in cache: whole-batch elementwise passes are memory-bound.
_CPU_CHUNK = 16


def _apply_3d(x: torch.Tensor, p: _Params3D) -> torch.Tensor:
    """Flip, elastic and affine folded into ONE sampling grid and ONE trilinear `grid_sample`.

    torchio's order is affine, elastic, flip, noise, so output voxel v reads the input at
    A(f(v) + d(f(v))): f the flips, d the B-spline displacement, A the affine's output->input
    map. The flips enter as flipped output coordinates in the B-spline weights. A point that
    either of torchio's resamplings would find outside the image (ITK's IsInsideBuffer:
    [-0.5, size - 0.5)) takes the sample's minimum, torchio's default pad; inside, edges are
    clamped as ITK's linear interpolator does ('border' padding). Noise is added last.
    """
    n, ch, *spatial = x.shape
    dev = x.device
    controls = _sampling_controls(p, spatial, dev)
    weights = []
    for axis, size in enumerate(spatial):
        ramp = torch.arange(size, dtype=torch.float32, device=dev)
        coord = torch.where(p.flip[:, axis, None], (size - 1) - ramp, ramp)  # (N, size)
        weights.append(_bspline_weights(coord, size))

    out = torch.empty(x.shape, dtype=torch.float32, device=dev)
    if dev.type == "cpu":
        # Samples drawn for neither affine nor elastic only flip: copy them, skip the resampling.
        moving = p.affine | p.elastic
        still = (~moving).nonzero()[:, 0]
        if len(still):
            out[still] = _flip(x[still].float().div_(255), p.flip[still])
        idx = moving.nonzero()[:, 0]
        for lo in range(0, len(idx), _CPU_CHUNK):  # chunks that stay in cache
            sel = idx[lo:lo + _CPU_CHUNK]
            out[sel] = _resample(x[sel], controls[sel], [w[sel] for w in weights])
    else:  # one pass, no host sync
        out = _resample(x, controls, weights)
    _add_noise(out, p)
    return out


def _resample(
    x: torch.Tensor, controls: torch.Tensor, weights: list[torch.Tensor],
) -> torch.Tensor:
    """One trilinear grid_sample of x/255 on the B-spline-interpolated grid, torchio's fill
    outside."""
    img = x.float().div_(255)
    dense = _bspline_eval(controls, *weights)  # (m, 6, D, H, W)
    # Both points in [-1, 1) on every axis; amax/amin over channels beat abs().amax() on CPU.
    inside = (dense.amax(dim=1, keepdim=True) < 1) & (dense.amin(dim=1, keepdim=True) >= -1)
    grid = dense[:, :3].permute(0, 2, 3, 4, 1)  # a strided view: grid_sample accepts it
    sampled = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    fill = img.amin(dim=(2, 3, 4), keepdim=True)  # torchio's default pad: the minimum
    return torch.where(inside, sampled, fill)


def _flip(img: torch.Tensor, flip: torch.Tensor) -> torch.Tensor:
    """Per-sample flips of (m, C, D, H, W) along the axes drawn in flip (m, 3)."""
    for axis in range(3):
        img = torch.where(flip[:, axis, None, None, None, None], img.flip(2 + axis), img)
    return img


def _add_noise(out: torch.Tensor, p: _Params3D) -> None:
    """RandomNoise: N(0, std^2) per voxel on the samples drawn for it. Only those samples get
    random numbers (CPU Gaussian draws cost as much as the rest of the elementwise work)."""
    if out.device.type == "cpu":
        idx = p.noise.nonzero()[:, 0]
        if len(idx):
            std = p.noise_std[idx][:, None, None, None, None]
            out[idx] += torch.randn((len(idx), *out.shape[1:]), device=out.device) * std
    else:  # no host sync on CUDA, where the draws are cheap
        std = torch.where(p.noise, p.noise_std, 0.0)[:, None, None, None, None]
        out.addcmul_(torch.randn_like(out), std)
