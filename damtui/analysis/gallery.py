"""What a dataset looks like: samples per class, class counts, pixel statistics, 3D mid-slices,
the training augmentation's view and a labelled PNG montage. Pure numpy/Pillow (torch only for
the augmented view); no Textual, so the CLI and the app draw from the same tiles.

Images stay uint8 in MedMNIST layout until `tile` turns one sample into a 2D picture: a 2D
image as it is, a 3D volume (D, H, W) as its axial, coronal and sagittal slices side by side.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from damtui.atomic import write_output
from damtui.data.datasets import SPLITS, DatasetSpec, Splits
from damtui.errors import DamtuiError

if TYPE_CHECKING:
    from PIL import Image

PLANES = ("axial", "coronal", "sagittal")  # slices across D, H and W of a (D, H, W) volume
GAP = 2  # pixels between the three planes of a 3D tile, drawn grey so the planes stay apart
GAP_VALUE = 96


@dataclass(frozen=True)
class ClassCount:
    """Samples of one class (binary) or positives of one label (multi-label), per split."""

    key: int
    name: str
    counts: dict[str, int]


@dataclass(frozen=True)
class PixelStats:
    split: str
    mean: float
    std: float
    low: int
    high: int


@dataclass(frozen=True)
class Sample:
    """One picture to draw: a 2D uint8 array (H, W) or (H, W, 3) and its caption."""

    index: int
    picture: np.ndarray
    caption: str


@dataclass(frozen=True)
class ClassSamples:
    key: int
    name: str
    total: int  # how many of this class the split holds
    samples: list[Sample]


def classes(s: DatasetSpec) -> list[tuple[int, str]]:
    """(key, name) of what the browser groups by: classes 0 and 1, or each label of a multi-label set."""
    if s.multilabel:
        return [(j, s.label_names.get(str(j), f"label {j}")) for j in range(s.n_labels)]
    return [(c, s.label_names.get(str(c), f"class {c}")) for c in (0, 1)]


def resolve_class(s: DatasetSpec, ref: str) -> int:
    """A --label value: a key (0, 1, label index) or a (unique prefix of a) label name."""
    known = classes(s)
    if ref.isdigit() and int(ref) in dict(known):
        return int(ref)
    hits = [k for k, name in known if name.lower().startswith(ref.lower())]
    if len(hits) == 1:
        return hits[0]
    names = ", ".join(f"{k}={name}" for k, name in known)
    raise DamtuiError(f"{s.flag} has no label {ref!r}; choose one of {names}")


def members(s: DatasetSpec, labels: np.ndarray, key: int) -> np.ndarray:
    """Indices of the samples of class `key` (binary) or positive for label `key` (multi-label)."""
    column = labels[:, key] if s.multilabel else labels[:, 0]
    return np.flatnonzero(column == (1 if s.multilabel else key))


def class_counts(data: Splits) -> list[ClassCount]:
    return [ClassCount(k, name, {sp: len(members(data.spec, data.labels[sp], k)) for sp in SPLITS})
            for k, name in classes(data.spec)]


def pixel_stats(data: Splits) -> list[PixelStats]:
    """Mean, standard deviation and range of the uint8 pixels of each split (0-255 scale)."""
    out = []
    for sp in SPLITS:
        x = data.images[sp]
        out.append(PixelStats(sp, float(x.mean()), float(x.std()), int(x.min()), int(x.max())))
    return out


def pick(indices: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to n of `indices`, spread over the split by a fixed seed, in index order."""
    if len(indices) <= n:
        return np.asarray(indices)
    return np.sort(np.random.default_rng(seed).choice(indices, n, replace=False))


def orthogonal_slices(volume: np.ndarray, offset: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Axial (across D), coronal (across H) and sagittal (across W) slices of a (D, H, W) volume,
    each at its axis' middle plus `offset` (clamped): offset 0 gives the three mid-slices."""
    if volume.ndim != 3:
        raise ValueError(f"expected a (D, H, W) volume, got shape {volume.shape}")
    d, h, w = (int(np.clip(n // 2 + offset, 0, n - 1)) for n in volume.shape)
    return volume[d, :, :], volume[:, h, :], volume[:, :, w]


def tile(image: np.ndarray, is_3d: bool, offset: int = 0) -> np.ndarray:
    """One sample as one 2D picture: 2D as it is; 3D as its three planes side by side."""
    if not is_3d:
        return image
    planes = orthogonal_slices(image, offset)
    gap = np.full((planes[0].shape[0], GAP), GAP_VALUE, dtype=image.dtype)
    return np.concatenate([planes[0], gap, planes[1], gap, planes[2]], axis=1)


def upscale(picture: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling: every pixel becomes a factor x factor square."""
    if factor <= 1:
        return picture
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def augmented(images: np.ndarray, is_3d: bool, seed: int = 0) -> np.ndarray:
    """The training augmentation of a few samples (the batched path the fast pipeline feeds the
    model), back in uint8 MedMNIST layout so they draw like the originals. Seeded: the same
    view every time, without touching torch's global RNG state."""
    import torch

    from damtui.train import augment
    from damtui.train.pipeline import layout

    if len(images) == 0:
        return images
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = augment.augment_batch(layout(images, is_3d), is_3d)
    if not is_3d:  # undo the 2D normalisation: (x/255 - mean) / std
        out = out * augment.STD_2D + augment.MEAN_2D
    x = (out.clamp(0, 1) * 255).round().to(torch.uint8)
    if is_3d or images.ndim == 3:
        return x[:, 0].numpy()
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def browse(data: Splits, split: str, keys: Sequence[int] | None = None, per_class: int = 8,
           offset: int = 0, augment: bool = False, seed: int = 0) -> list[ClassSamples]:
    """The browser's grid: up to `per_class` samples of each class (or of the chosen ones)."""
    if split not in SPLITS:
        raise DamtuiError(f"no split {split!r}; choose one of {', '.join(SPLITS)}")
    s = data.spec
    out = []
    for key, name in classes(s):
        if keys is not None and key not in keys:
            continue
        every = members(s, data.labels[split], key)
        chosen = pick(every, per_class, seed + key)
        images = data.images[split][chosen]
        if augment:
            images = augmented(images, s.is_3d, seed)
        samples = [Sample(int(i), tile(img, s.is_3d, offset), f"{split} #{int(i)}")
                   for i, img in zip(chosen, images)]
        out.append(ClassSamples(key, name, len(every), samples))
    return out


# ----------------------------------------------------------------------------- PNG montage


def montage(groups: Sequence[tuple[str, Sequence[Sample]]], title: str = "", scale: int = 3,
            columns: int = 8) -> Image.Image:
    """A labelled sheet: a title, then per group its heading and its samples in rows of `columns`,
    each upscaled `scale` times (nearest neighbour) with its caption under it."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    line = 14
    shapes = [s.picture.shape for _, samples in groups for s in samples] or [(28, 28)]
    cell_w = max(sh[1] for sh in shapes) * scale + 8
    cell_h = max(sh[0] for sh in shapes) * scale + line + 8
    height = line * 2
    widest = max([len(samples) for _, samples in groups] or [1])
    for _, samples in groups:
        height += line + 4 + max(1, -(-len(samples) // columns)) * cell_h
    width = max(min(columns, widest) * cell_w + 8, 320)
    sheet = Image.new("RGB", (width, height), "black")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 4), title, fill="white", font=font)
    y = line * 2
    for heading, samples in groups:
        draw.text((4, y), heading, fill=(255, 220, 120), font=font)
        y += line + 4
        for i, s in enumerate(samples):
            x0, y0 = (i % columns) * cell_w + 4, y + (i // columns) * cell_h
            pic = Image.fromarray(upscale(s.picture, scale))
            sheet.paste(pic.convert("RGB"), (x0, y0))
            draw.text((x0, y0 + pic.height + 2), s.caption, fill="white", font=font)
        y += max(1, -(-len(samples) // columns)) * cell_h
    return sheet


def write_png(image: Image.Image, path: str | Path) -> Path:
    """Save a montage atomically (a half-written PNG never replaces an old one), as every file a
    user names is written (damtui.atomic.write_output)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return write_output(path, buf.getvalue())
