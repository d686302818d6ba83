"""damtui.train.augment: the batched augmentations against the report's torchvision/torchio chains.

Two kinds of checks. Exact ones feed the same parameters to both (the batched geometry must
reproduce torchio's Affine, ElasticDeformation and Flip, and torchvision's crop/flip/rotation, up
to float rounding). Statistical ones draw from both with fixed seeds and compare rates, ranges
and means with tolerances of about four standard errors, so that e.g. a flip probability of 0.25
instead of 0.5, or an elastic displacement of half its size, fails.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest
import torch

from damtui.train import augment as A
from damtui.train import augment3d as A3

S = 28
CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """torchio's per-sample chain runs ~8x slower with 2 torch threads on a busy 2-core machine
    (tiny ops, spinning workers); one thread is also how DataLoader workers run it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _blob_3d() -> np.ndarray:
    """A smooth asymmetric blob in one octant: flips move its centre of mass across the middle."""
    g = np.mgrid[0:S, 0:S, 0:S].astype(np.float32)
    r2 = (g[0] - 8) ** 2 / 18 + (g[1] - 9) ** 2 / 30 + (g[2] - 7) ** 2 / 12
    return (255 * np.exp(-r2)).astype(np.uint8)


def _texture_3d() -> np.ndarray:
    """Smooth, non-constant everywhere, minimum inside: shows any geometric mismatch."""
    g = np.mgrid[0:S, 0:S, 0:S].astype(np.float32)
    v = 128 + 60 * np.sin(g[0] / 4) * np.cos(g[1] / 5) + 40 * np.sin(g[2] / 3 + 1)
    return v.clip(0, 255).astype(np.uint8)


def _image_2d() -> np.ndarray:
    """Blob left of centre plus vertical stripes: asymmetric, with edges and flat parts."""
    g = np.mgrid[0:S, 0:S].astype(np.float32)
    v = 200 * np.exp(-((g[0] - 9) ** 2 / 30 + (g[1] - 8) ** 2 / 20)) + 40 * (np.sin(g[1] / 2) > 0)
    return v.clip(0, 255).astype(np.uint8)


def _texture_2d() -> np.ndarray:
    g = np.mgrid[0:S, 0:S].astype(np.float32)
    v = 128 + 80 * np.sin(g[1] / 4 + 0.3) * np.cos(g[0] / 5) + 30 * np.sin((g[1] + 2 * g[0]) / 7)
    return v.clip(0, 255).astype(np.uint8)


def _batch(sample: np.ndarray, n: int) -> torch.Tensor:
    """n copies of one MedMNIST-layout sample as the engine's uint8 (N, C, ...) batch."""
    x = torch.from_numpy(sample)
    x = x.permute(2, 0, 1) if sample.shape[-1] == 3 else x[None]  # (28, 28, 3) is 2D RGB
    return x[None].expand(n, *x.shape).contiguous()


def _no_3d_augment(p: A3.Params3D) -> A3.Params3D:
    p.affine[:] = False
    p.elastic[:] = False
    p.flip[:] = False
    p.noise[:] = False
    return p


def _com(volumes: torch.Tensor, axis: int) -> torch.Tensor:
    """Centre of mass along a spatial axis of (N, D, H, W) or (N, H, W) non-negative images."""
    w = volumes.clamp(min=0)
    shape = [1] * (w.dim() - 1)
    shape[axis] = -1
    c = torch.arange(S, dtype=torch.float32).view(shape)
    return (w * c).flatten(1).sum(1) / w.flatten(1).sum(1)


def _mean_se(values: torch.Tensor) -> tuple[float, float]:
    return float(values.mean()), float(values.std() / len(values) ** 0.5)


def _close(a: torch.Tensor, b: torch.Tensor, k: float = 4.0, slack: float = 0.0) -> bool:
    """Means of two samples agree within k combined standard errors (+ slack)."""
    (ma, sa), (mb, sb) = _mean_se(a), _mean_se(b)
    return abs(ma - mb) <= k * (sa**2 + sb**2) ** 0.5 + slack


# ---------------------------------------------------------------------------------------------
# Contract: shapes, dtypes, eval path, pickling


@pytest.mark.slow
def test_import_pulls_no_textual() -> None:
    import subprocess

    code = "import sys, damtui.train.augment; assert 'textual' not in sys.modules; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout == "ok\n", done.stderr


@pytest.mark.parametrize("shape,is_3d", [
    ((5, 1, S, S), False), ((5, 3, S, S), False), ((4, 1, S, S, S), True),
])
def test_shapes_dtypes_devices(shape: tuple[int, ...], is_3d: bool) -> None:
    x = torch.randint(0, 256, shape, dtype=torch.uint8)
    for f in (A.augment_batch, A.to_float):
        out = f(x, is_3d)
        assert out.shape == x.shape and out.dtype == torch.float32 and out.device == x.device
    assert A.augment_batch(x[:0], is_3d).shape == (0, *shape[1:])


def test_rejects_wrong_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        A.augment_batch(torch.zeros(2, 1, S, S), False)
    with pytest.raises(ValueError, match="5 dims"):
        A.augment_batch(torch.zeros(2, 1, S, S, dtype=torch.uint8), True)


@pytest.mark.parametrize("channels", [1, 3])
def test_to_float_is_reference_eval_2d(channels: int) -> None:
    x = torch.randint(0, 256, (6, channels, S, S), dtype=torch.uint8)
    ref = A.reference_transform(is_3d=False, train=False)
    samples = x.permute(0, 2, 3, 1).numpy()
    want = torch.stack([ref(s[..., 0] if channels == 1 else s) for s in samples])
    assert torch.equal(A.to_float(x, False), want)


def test_to_float_is_reference_eval_3d() -> None:
    x = torch.randint(0, 256, (4, 1, S, S, S), dtype=torch.uint8)
    ref = A.reference_transform(is_3d=True, train=False)
    want = torch.stack([ref(s) for s in x[:, 0].numpy()])
    assert torch.equal(A.to_float(x, True), want)


@pytest.mark.parametrize("is_3d", [False, True])
def test_eval_never_augments(is_3d: bool) -> None:
    sample = _blob_3d() if is_3d else _image_2d()
    ref = A.reference_transform(is_3d, train=False)
    outs = []
    for seed in range(5):
        torch.manual_seed(seed)
        np.random.seed(seed)
        outs.append(ref(sample))
    assert all(torch.equal(o, outs[0]) for o in outs)
    assert torch.equal(outs[0], A.to_float(_batch(sample, 1), is_3d)[0])


@pytest.mark.parametrize("is_3d", [False, True])
@pytest.mark.parametrize("train", [False, True])
def test_reference_is_picklable(is_3d: bool, train: bool) -> None:
    ref = pickle.loads(pickle.dumps(A.reference_transform(is_3d, train)))
    sample = _blob_3d() if is_3d else _image_2d()
    out = ref(sample)
    assert out.dtype == torch.float32
    assert out.shape == ((1, S, S, S) if is_3d else (1, S, S))


@pytest.mark.parametrize("is_3d", [False, True])
def test_reproducible_under_seed(is_3d: bool) -> None:
    x = _batch(_blob_3d() if is_3d else _image_2d(), 8)
    torch.manual_seed(3)
    a = A.augment_batch(x, is_3d)
    torch.manual_seed(3)
    b = A.augment_batch(x, is_3d)
    assert torch.equal(a, b)
    assert not torch.equal(a, A.augment_batch(x, is_3d))


def test_the_gpus_one_pass_3d_path_gives_the_cpus_per_sample_output(monkeypatch) -> None:
    """The GPU resamples the whole batch in one pass (no host sync); the CPU picks out the samples
    each transform was drawn for. With the same parameters (noise off: the CPU draws noise for
    its picks only) the outputs agree, checked here on the CPU with the GPU's path forced."""
    x = _batch(_blob_3d(), 16)
    p = A3.sample_3d(16, CPU)
    p.noise[:] = False
    assert p.affine.any() and p.elastic.any() and not (p.affine | p.elastic).all()  # both branches used
    want = A3.apply_3d(x, p)
    monkeypatch.setattr(A3, "by_sample", lambda device: False)
    got = A3.apply_3d(x, p)
    assert (want - got).abs().max() < 1e-5


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA")
@pytest.mark.parametrize("is_3d", [False, True])
def test_cuda_matches_cpu_statistics(is_3d: bool) -> None:
    x = _batch(_blob_3d() if is_3d else _image_2d(), 512)
    cpu = A.augment_batch(x, is_3d)
    gpu = A.augment_batch(x.cuda(), is_3d)
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float32
    gpu = gpu.cpu()
    for f in (lambda t: t.flatten(1).mean(1), lambda t: t.flatten(1).std(1)):
        assert _close(f(cpu), f(gpu))
    # Same parameters on both devices: same output up to float rounding.
    p = A3.sample_3d(16, CPU) if is_3d else A._sample_2d(16, (S, S), CPU)
    if is_3d:
        p.noise[:] = False
        moved = A3.Params3D(**{k: v.cuda() for k, v in vars(p).items()})
        want, got = A3.apply_3d(x[:16], p), A3.apply_3d(x[:16].cuda(), moved).cpu()
    else:
        moved = A._Params2D(**{k: v.cuda() for k, v in vars(p).items()})
        want, got = A._apply_2d(x[:16], p), A._apply_2d(x[:16].cuda(), moved).cpu()
    assert (want - got).abs().max() < 1e-3


# ---------------------------------------------------------------------------------------------
# 3D: exact geometry against torchio with the same parameters


def _torchio_one(vol: torch.Tensor, p: A3.Params3D, i: int) -> torch.Tensor:
    import torchio as tio
    from torchio.transforms.augmentation.spatial.random_affine import Affine
    from torchio.transforms.augmentation.spatial.random_elastic_deformation import (
        ElasticDeformation,
    )

    t = vol
    if p.affine[i]:
        t = Affine(
            scales=p.scales[i].tolist(), degrees=p.degrees[i].tolist(),
            translation=p.translation[i].tolist(),
        )(t)
    if p.elastic[i]:
        max_d = (A.ELASTIC_MAX_DISPLACEMENT,) * 3
        t = ElasticDeformation(control_points=p.control[i].numpy(), max_displacement=max_d)(t)
    axes = tuple(np.flatnonzero(p.flip[i].numpy()).tolist())
    return tio.Flip(axes=axes)(t) if axes else t


@pytest.mark.parametrize("part", ["affine", "elastic", "flip"])
def test_3d_single_transform_is_torchio_exactly(part: str) -> None:
    """One spatial transform at a time, the batched resampling IS torchio's, borders included."""
    n = 4
    vol = _texture_3d()
    p = _no_3d_augment(A3.sample_3d(n, CPU))
    if part == "flip":
        p.flip = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], dtype=torch.bool)
    else:
        getattr(p, part)[:] = True
        p.flip = torch.rand(n, 3) < 0.5  # flips compose with either
    ours = A3.apply_3d(_batch(vol, n), p)
    ref_in = torch.from_numpy(vol).float()[None] / 255
    for i in range(n):
        assert (ours[i] - _torchio_one(ref_in, p, i)).abs().max() < 1e-5


def test_3d_affine_plus_elastic_close_to_torchio() -> None:
    """Both at once: one resampling instead of torchio's two. Inside, the difference is the
    second interpolation's smoothing; near the field-of-view edge torchio blends its fill in
    where this cuts hard, so only the mean is bounded there."""
    n = 4
    vol = _texture_3d()
    p = _no_3d_augment(A3.sample_3d(n, CPU))
    p.affine[:] = True
    p.elastic[:] = True
    ours = A3.apply_3d(_batch(vol, n), p)
    ref_in = torch.from_numpy(vol).float()[None] / 255
    for i in range(n):
        diff = (ours[i] - _torchio_one(ref_in, p, i)).abs()
        assert diff[:, 4:-4, 4:-4, 4:-4].max() < 0.02
        assert diff.mean() < 0.03


def test_3d_parameter_draws_match_torchio() -> None:
    """Ranges and means of the affine draws, and the locked control-point pattern, as torchio's."""
    import torchio as tio

    n = 2000
    p = A3.sample_3d(n, CPU)
    ref = A.reference_transform(True, True).transform.transforms
    affine, elastic = ref[0], ref[1]
    assert isinstance(affine, tio.RandomAffine)
    assert isinstance(elastic, tio.RandomElasticDeformation)
    for drawn, step in ((p.affine, affine), (p.elastic, elastic), (p.noise, ref[3])):
        assert step.probability == 0.5 and abs(float(drawn.float().mean()) - 0.5) < 0.04
    draws = [affine.get_params(affine.scales, affine.degrees, affine.translation, False)
             for _ in range(n)]
    for ours, k, lo, hi in [
        (p.scales, 0, *A.AFFINE_SCALES),
        (p.degrees, 1, -A.AFFINE_DEGREES, A.AFFINE_DEGREES),
        (p.translation, 2, -A.AFFINE_TRANSLATION, A.AFFINE_TRANSLATION),
    ]:
        theirs = torch.stack([d[k] for d in draws]).float()
        for t in (ours, theirs):
            assert t.min() >= lo and t.max() <= hi
            assert t.min() < lo + 0.01 * (hi - lo) and t.max() > hi - 0.01 * (hi - lo)
        for axis in range(3):
            assert _close(ours[:, axis], theirs[:, axis])

    control = torch.stack([torch.from_numpy(elastic.get_params(
        elastic.num_control_points, elastic.max_displacement, elastic.num_locked_borders,
    )) for _ in range(200)])
    assert torch.equal(control.abs().amax(0) > 0, p.control.abs().amax(0) > 0)
    free = p.control[p.control != 0]
    assert free.abs().max() <= A.ELASTIC_MAX_DISPLACEMENT
    assert _close(free.abs(), control[control != 0].abs())


# ---------------------------------------------------------------------------------------------
# 3D: distributions of the whole chain against torchio's


@pytest.fixture(scope="module")
def chain_3d() -> tuple[torch.Tensor, torch.Tensor]:
    """The blob through torchio's chain (300 samples, 7-14 ms each) and augment_batch (1000)."""
    torch.manual_seed(1)
    ref = A.reference_transform(True, True)
    blob = _blob_3d()
    theirs = torch.stack([ref(blob) for _ in range(300)])
    return theirs, A.augment_batch(_batch(blob, 1000), True)


def test_3d_flip_rate_per_axis(chain_3d: tuple[torch.Tensor, torch.Tensor]) -> None:
    theirs, ours = chain_3d
    for axis in range(3):
        # The blob sits at ~8 voxels: after affine/elastic its centre stays on its side of 13.5.
        rate_t = (_com(theirs[:, 0], axis) > (S - 1) / 2).float().mean()
        rate_o = (_com(ours[:, 0], axis) > (S - 1) / 2).float().mean()
        assert abs(rate_t - 0.5) < 0.10, (axis, rate_t)  # 300 draws: 3.5 sd
        assert abs(rate_o - 0.5) < 0.06, (axis, rate_o)  # 1000 draws: 3.8 sd


def test_3d_intensity_statistics(chain_3d: tuple[torch.Tensor, torch.Tensor]) -> None:
    theirs, ours = chain_3d
    for stat in (lambda t: t.flatten(1).mean(1), lambda t: t.flatten(1).std(1)):
        assert _close(stat(theirs), stat(ours))


def test_3d_noise_rate_and_std_range() -> None:
    """A constant volume stays constant under every spatial step (fill = its minimum = itself),
    so out - clean is exactly the noise: its rate and std range must be torchio's."""
    const = np.full((S, S, S), 128, np.uint8)
    clean = 128 / 255
    ours = (A.augment_batch(_batch(const, 1000), True) - clean).flatten(1).std(1)
    noise = A.reference_transform(True, True).transform.transforms[-1]
    ref_in = torch.full((1, S, S, S), clean)
    theirs = torch.stack([(noise(ref_in) - clean).std() for _ in range(300)])
    lo, hi = A.NOISE_STD
    for stds, n, tol in ((ours, 1000, 0.06), (theirs, 300, 0.10)):
        noisy = stds[stds > 1e-4]
        assert abs(len(noisy) / n - A.NOISE_P) < tol
        assert stds[stds <= 1e-4].max() < 1e-6  # untouched samples are exactly clean
        assert lo * 0.97 < noisy.min() < lo + 0.1 * (hi - lo)
        assert hi - 0.1 * (hi - lo) < noisy.max() < hi * 1.03
    assert _close(ours[ours > 1e-4], theirs[theirs > 1e-4])


@pytest.mark.slow
def test_3d_elastic_displacement_matches_torchio() -> None:
    """Displacement read off a coordinate image (value = 9 x voxel index, one channel per axis),
    inside a margin where neither version fills: torchio's elastic step (as configured by
    reference_transform, p forced to 1) against the batched one with only elastic drawn."""
    g = np.mgrid[0:S, 0:S, 0:S]
    coords = torch.from_numpy((9 * g).astype(np.uint8))
    base = torch.from_numpy(g).float()

    def displacement(out: torch.Tensor) -> torch.Tensor:
        d = out * 255 / 9 - base
        return d[:, :, 6:-6, 6:-6, 6:-6].abs().flatten(2).mean(2)  # (n, 3) mean |d| per axis

    elastic = A.reference_transform(True, True).transform.transforms[1]
    elastic.probability = 1.0
    theirs = displacement(torch.stack([elastic(coords.float() / 255) for _ in range(100)]))
    p = _no_3d_augment(A3.sample_3d(1000, CPU))
    p.elastic[:] = True
    ours = displacement(A3.apply_3d(coords[None].expand(1000, -1, -1, -1, -1).contiguous(), p))
    for axis in range(3):
        assert _close(ours[:, axis], theirs[:, axis]), axis
    assert _close(ours.mean(1), theirs.mean(1), k=3.0)


def test_bspline_field_is_sitk() -> None:
    """The dense displacement is ITK's cubic B-spline on its own control grid, not an
    approximation: compare with SimpleITK's TransformPoint at random points."""
    import SimpleITK as sitk  # torchio's dependency
    from torchio.data.io import nib_to_sitk
    from torchio.transforms.augmentation.spatial.random_elastic_deformation import (
        ElasticDeformation,
    )

    p = A3.sample_3d(1, CPU)
    cp = p.control[0].numpy()
    image = nib_to_sitk(torch.zeros(1, S, S, S), np.eye(4), force_3d=True)
    bspline = ElasticDeformation(control_points=cp, max_displacement=(5, 5, 5)) \
        .get_bspline_transform(image)
    assert isinstance(bspline, sitk.BSplineTransform)
    points = torch.rand(50, 3) * S - 0.5
    lps = np.array([-1.0, -1.0, 1.0])
    want = torch.from_numpy(np.stack([
        lps * np.array(bspline.TransformPoint(tuple(lps * q))) for q in points.double().numpy()
    ])).float()
    # Evaluate our control grid (z channels, normalised, W-H-D order) at the same points.
    p.elastic[:] = True
    p.affine[:] = False
    controls = A3.sampling_controls(p, [S, S, S], CPU)[0, 3:]  # (3, K, K, K)
    w = [A3.bspline_weights(points[:, a], S) for a in range(3)]
    got = torch.einsum("cijk,ni,nj,nk->nc", controls, w[0], w[1], w[2])
    got = ((got + 1) * S - 1) / 2  # back to voxel coordinates
    assert (got.flip(-1) - want).abs().max() < 1e-4


# ---------------------------------------------------------------------------------------------
# 2D: geometry and distributions against torchvision


def _params_2d(angle: float, flip: bool, top: int, left: int, h: int, w: int) -> A._Params2D:
    def t(v: float) -> torch.Tensor:
        return torch.tensor([float(v)])

    return A._Params2D(t(angle), torch.tensor([flip]), t(top), t(left), t(h), t(w))


@pytest.mark.parametrize("angle,flip,box,tol", [
    (0.0, False, (0, 0, 28, 28), 1e-6),
    (0.0, True, (0, 0, 28, 28), 1e-6),
    (0.0, True, (2, 1, 25, 26), 0.01),
    (12.0, False, (0, 0, 28, 28), 0.01),
    (-9.0, True, (3, 0, 24, 27), 0.02),  # PIL resamples twice here, this once
])
def test_2d_geometry_matches_torchvision(
    angle: float, flip: bool, box: tuple[int, ...], tol: float,
) -> None:
    """Same parameters through PIL (rotation BILINEAR here, to isolate geometry from the
    reference's NEAREST) and through the one-matrix version: equal inside, up to PIL's 8-bit
    rounding; the outermost pixels differ where PIL clamps at the crop box or fills."""
    import torchvision.transforms.functional as TF
    from PIL import Image
    from torchvision.transforms import InterpolationMode

    img = _texture_2d()
    ours = A._apply_2d(_batch(img, 1), _params_2d(angle, flip, *box))[0, 0]
    ours = ours * A.STD_2D + A.MEAN_2D
    pil = TF.rotate(Image.fromarray(img), angle, InterpolationMode.BILINEAR)
    if flip:
        pil = TF.hflip(pil)
    pil = TF.resized_crop(pil, *box, [S, S], InterpolationMode.BILINEAR)
    want = torch.from_numpy(np.array(pil)).float() / 255
    assert (ours - want)[3:-3, 3:-3].abs().max() < tol


def test_2d_crop_draws_match_torchvision() -> None:
    """RandomResizedCrop.get_params including its scale>1 retries and whole-image fallback."""
    from torchvision import transforms as T

    n_ref, n = 3000, 20000
    img = torch.zeros(1, S, S)
    theirs = torch.tensor([T.RandomResizedCrop.get_params(img, list(A.CROP_SCALE),
                                                          list(A.CROP_RATIO))
                           for _ in range(n_ref)], dtype=torch.float32)
    p = A._sample_2d(n, (S, S), CPU)
    ours = torch.stack([p.top, p.left, p.height, p.width], dim=1)
    assert torch.equal(ours, ours.round())
    for col in range(4):  # means agree; ours (7x the draws) covers at least their range
        assert _close(ours[:, col], theirs[:, col]), col
        assert ours[:, col].min() <= theirs[:, col].min()
        assert ours[:, col].max() >= theirs[:, col].max()
    smallest = round((S * S * A.CROP_SCALE[0] * A.CROP_RATIO[0]) ** 0.5)
    assert ours[:, 2:].min() == smallest and ours[:, 2:].max() == S
    assert (ours[:, 0] + ours[:, 2]).max() <= S and (ours[:, 1] + ours[:, 3]).max() <= S
    for col in (2, 3):  # marginals of h and w: total variation distance
        values = torch.arange(S + 1, dtype=torch.float32)
        h_t = (theirs[:, col, None] == values).float().mean(0)
        h_o = (ours[:, col, None] == values).float().mean(0)
        assert 0.5 * (h_t - h_o).abs().sum() < 0.05
    whole_t = ((theirs[:, 2] == S) & (theirs[:, 3] == S)).float()
    whole_o = ((ours[:, 2] == S) & (ours[:, 3] == S)).float()
    assert _close(whole_o, whole_t)


def test_2d_angle_and_flip_draws() -> None:
    p = A._sample_2d(4000, (S, S), CPU)
    assert p.angle.min() >= -A.ROTATION_2D and p.angle.max() <= A.ROTATION_2D
    assert abs(float(p.angle.mean())) < 0.5 and abs(float(p.angle.std()) - 15 / 3**0.5) < 0.3
    assert abs(float(p.flip.float().mean()) - 0.5) < 0.03


@pytest.fixture(scope="module")
def chain_2d() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(2)
    ref = A.reference_transform(False, True)
    img = _image_2d()
    theirs = torch.stack([ref(img) for _ in range(1000)])
    return theirs, A.augment_batch(_batch(img, 4000), False)


def test_2d_flip_rate(chain_2d: tuple[torch.Tensor, torch.Tensor]) -> None:
    theirs, ours = chain_2d
    for out, n, tol in ((theirs, 1000, 0.06), (ours, 4000, 0.03)):
        com = _com(out[:, 0] * A.STD_2D + A.MEAN_2D, axis=1)  # blob sits left of centre
        assert abs(float((com > (S - 1) / 2).float().mean()) - 0.5) < tol


def test_2d_intensity_statistics(chain_2d: tuple[torch.Tensor, torch.Tensor]) -> None:
    """Mean and std per image agree; the std may sit ~0.5% low because the batched version
    resamples once with bilinear where torchvision rotates with NEAREST first."""
    theirs, ours = chain_2d
    assert _close(ours.flatten(1).mean(1), theirs.flatten(1).mean(1))
    std_t, std_o = theirs.flatten(1).std(1), ours.flatten(1).std(1)
    assert _close(std_o, std_t, slack=0.01 * float(std_t.mean()))
