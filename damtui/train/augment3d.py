"""The report's 3D augmentation (torchio's RandomAffine, RandomElasticDeformation, RandomFlip,
RandomNoise), batched on the training device: parameters drawn from torchio's distributions and
applied with one resampling per sample. The 2D path and the per-sample reference live in
damtui.train.augment, which explains how both differ from the reference.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

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


def uniform(shape: tuple[int, ...], low: float, high: float, device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, device=device)


@dataclass
class Params3D:
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


@functools.cache
def _locked_mask(k: int, locked: int, device: torch.device) -> torch.Tensor:
    """Built once per device (as the other constants here: no host-to-device copy per step).
    torchio's locked borders: zeroes the outer `locked` control planes of the first TWO grid
    axes only (its loop indexes [i, :] and [:, i], never [:, :, i]); reproduced as is."""
    mask = torch.ones(k, k, k, 1, device=device)
    for i in range(locked):
        mask[i] = 0
        mask[-1 - i] = 0
        mask[:, i] = 0
        mask[:, -1 - i] = 0
    return mask


def sample_3d(n: int, device: torch.device) -> Params3D:
    """torchio's draws, batched: every scalar torchio draws with U(a, b) is U(a, b) here too.

    RandomAffine: s_i ~ U(0.9, 1.1), theta_i ~ U(-10, 10) deg, t_i ~ U(-0.1, 0.1) mm, per axis.
    RandomElasticDeformation: each control-point component ~ U(-5, 5) mm, borders locked.
    RandomFlip: each axis with probability 0.5. RandomNoise: std ~ U(0.01, 0.05), mean 0.
    Each of affine, elastic and noise is applied with p = 0.5 (torchio's `p`).
    """
    k = ELASTIC_CONTROL_POINTS
    d = ELASTIC_MAX_DISPLACEMENT
    locked = _locked_mask(k, ELASTIC_LOCKED_BORDERS, device)
    control = uniform((n, k, k, k, 3), -d, d, device) * locked
    return Params3D(
        affine=torch.rand(n, device=device) < AFFINE_P,
        scales=uniform((n, 3), *AFFINE_SCALES, device),
        degrees=uniform((n, 3), -AFFINE_DEGREES, AFFINE_DEGREES, device),
        translation=uniform((n, 3), -AFFINE_TRANSLATION, AFFINE_TRANSLATION, device),
        elastic=torch.rand(n, device=device) < ELASTIC_P,
        control=control,
        flip=torch.rand(n, 3, device=device) < FLIP_P_3D,
        noise=torch.rand(n, device=device) < NOISE_P,
        noise_std=uniform((n,), *NOISE_STD, device),
    )


def _knots(size: int, device: torch.device) -> torch.Tensor:
    """Voxel coordinates of ITK's K control points along an axis of `size` voxels, ascending.

    BSplineTransformInitializer (mesh K-3) widens the image bounds by 0.125 mm each side and puts
    the first knot one grid spacing before them (checked against SimpleITK's TransformPoint).
    """
    k = ELASTIC_CONTROL_POINTS
    spacing = (size + 2 * _ITK_EPSILON) / (k - _SPLINE_ORDER)
    steps = torch.arange(k, device=device, dtype=torch.float32) - 1
    return -0.5 - _ITK_EPSILON + steps * spacing


def bspline_weights(coord: torch.Tensor, size: int) -> torch.Tensor:
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


def sampling_controls(p: Params3D, spatial: list[int], device: torch.device) -> torch.Tensor:
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
    lps = _constant(_LPS, device)
    flip_dims = [1 + a for a in range(3) if _LPS[a] < 0]
    shift = p.control.flip(flip_dims) * lps * p.elastic[:, None, None, None, None]
    z = position + shift  # the elastic step's source point, in voxels

    sizes = _constant(tuple(float(v) for v in spatial), device)
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


@functools.cache
def _constant(values: tuple[float, ...], device: torch.device) -> torch.Tensor:
    """A float32 constant on the device, copied there once, not once a step."""
    return torch.tensor(values, dtype=torch.float32, device=device)


# On CPU, chunks that stay in cache: whole-batch elementwise passes are memory-bound.
_CPU_CHUNK = 16


def by_sample(device: torch.device) -> bool:
    """Whether to pick out the samples each transform was drawn for (only those are resampled
    and get noise): worth it on the CPU, where reading the picks costs nothing, but a host sync
    per step on a GPU, which instead runs one pass over the whole batch. Tests set it False to
    run the GPU's path on the CPU (tests/train/test_host_sync.py, test_augment.py)."""
    return device.type == "cpu"


def apply_3d(x: torch.Tensor, p: Params3D) -> torch.Tensor:
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
    controls = sampling_controls(p, spatial, dev)
    weights = []
    for axis, size in enumerate(spatial):
        ramp = torch.arange(size, dtype=torch.float32, device=dev)
        coord = torch.where(p.flip[:, axis, None], (size - 1) - ramp, ramp)  # (N, size)
        weights.append(bspline_weights(coord, size))

    out = torch.empty(x.shape, dtype=torch.float32, device=dev)
    if by_sample(dev):
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


def _add_noise(out: torch.Tensor, p: Params3D) -> None:
    """RandomNoise: N(0, std^2) per voxel on the samples drawn for it. Only those samples get
    random numbers (CPU Gaussian draws cost as much as the rest of the elementwise work)."""
    if by_sample(out.device):
        idx = p.noise.nonzero()[:, 0]
        if len(idx):
            std = p.noise_std[idx][:, None, None, None, None]
            out[idx] += torch.randn((len(idx), *out.shape[1:]), device=out.device) * std
    else:  # no host sync on CUDA, where the draws are cheap
        std = torch.where(p.noise, p.noise_std, 0.0)[:, None, None, None, None]
        out.addcmul_(torch.randn_like(out), std)
