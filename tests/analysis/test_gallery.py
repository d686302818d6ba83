"""damtui.analysis.gallery and damtui.analysis.pictures: the dataset browser's data, without a terminal."""

from __future__ import annotations

import numpy as np
import pytest

from damtui.data import datasets
from damtui.analysis import gallery, pictures
from damtui.errors import DamtuiError

from support import REAL_DATA as REAL


def test_orthogonal_slices_are_taken_across_d_h_w():
    d, h, w = np.meshgrid(np.arange(28), np.arange(28), np.arange(28), indexing="ij")
    volume = d * 10_000 + h * 100 + w  # each voxel names its own (d, h, w)
    axial, coronal, sagittal = gallery.orthogonal_slices(volume)
    assert (axial // 10_000 == 14).all() and (axial == volume[14]).all()
    assert ((coronal // 100) % 100 == 14).all() and (coronal == volume[:, 14, :]).all()
    assert (sagittal % 100 == 14).all() and (sagittal == volume[:, :, 14]).all()
    first = gallery.orthogonal_slices(volume, offset=-20)  # clamped to the first plane
    assert (first[0] == volume[0]).all() and (first[2] == volume[:, :, 0]).all()


def test_a_3d_tile_is_the_three_planes_side_by_side():
    vol = np.random.default_rng(0).integers(0, 255, (28, 28, 28), dtype=np.uint8)
    t = gallery.tile(vol, is_3d=True, offset=2)
    assert t.shape == (28, 3 * 28 + 2 * gallery.GAP)
    assert (t[:, :28] == vol[16]).all() and (t[:, -28:] == vol[:, :, 16]).all()
    flat = np.zeros((28, 28), np.uint8)
    assert gallery.tile(flat, is_3d=False) is flat


def test_upscale_is_nearest_neighbour_so_pixels_stay_square():
    img = np.array([[0, 255], [10, 20]], dtype=np.uint8)
    big = gallery.upscale(img, 3)
    assert big.shape == (6, 6)
    assert (big[:3, :3] == 0).all() and (big[:3, 3:] == 255).all() and (big[3:, 3:] == 20).all()


def test_class_counts_pixel_stats_and_samples_per_class(data_root):
    data = datasets.load("synthetic2d", data_root)
    counts = gallery.class_counts(data)
    assert [c.name for c in counts] == ["no blob", "bright blob"]
    for sp in datasets.SPLITS:
        assert counts[1].counts[sp] == int(data.labels[sp][:, 0].sum())
        assert counts[0].counts[sp] + counts[1].counts[sp] == len(data.labels[sp])
    stats = {p.split: p for p in gallery.pixel_stats(data)}
    assert stats["test"].mean == pytest.approx(float(data.images["test"].mean()))
    groups = gallery.browse(data, "val", per_class=5)
    for g in groups:
        assert len(g.samples) == 5
        assert all(data.labels["val"][s.index, 0] == g.key for s in g.samples)
        assert all((s.picture == data.images["val"][s.index]).all() for s in g.samples)
    only = gallery.browse(data, "val", keys=[1], per_class=3)
    assert [g.key for g in only] == [1]


def test_multilabel_groups_by_label_positives():
    s = datasets.DatasetSpec("toy", True, 3, 1, False, {}, label_names={"0": "a", "1": "b", "2": "c"})
    labels = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 1]])
    assert list(gallery.members(s, labels, 2)) == [0, 1, 2]
    assert list(gallery.members(s, labels, 0)) == [0]
    assert gallery.resolve_class(s, "b") == 1 and gallery.resolve_class(s, "2") == 2
    with pytest.raises(DamtuiError, match="no label"):
        gallery.resolve_class(s, "zz")


@pytest.mark.parametrize("flag", ["synthetic2d", "synthetic3d"])
def test_augmented_view_is_the_batched_training_augmentation(data_root, flag):
    import torch

    data = datasets.load(flag, data_root)
    x = data.images["train"][:4]
    state = torch.random.get_rng_state()
    a, b = gallery.augmented(x, data.spec.is_3d, seed=1), gallery.augmented(x, data.spec.is_3d, seed=1)
    assert (torch.random.get_rng_state() == state).all()  # the global stream is left alone
    assert a.dtype == np.uint8 and a.shape == x.shape and (a == b).all()
    assert not (a == x).all()  # something was done to them
    groups = gallery.browse(data, "train", per_class=2, augment=True)
    assert not all((s.picture == gallery.tile(data.images["train"][s.index], data.spec.is_3d)).all()
                   for g in groups for s in g.samples)


def test_montage_png_has_every_tile(data_root, tmp_path):
    from PIL import Image

    data = datasets.load("synthetic2d", data_root)
    groups = [(f"{g.key} {g.name}", g.samples) for g in gallery.browse(data, "test", per_class=3)]
    out = gallery.write_png(gallery.montage(groups, "t", scale=2, columns=3), tmp_path / "m.png")
    img = Image.open(out)
    assert img.width >= 3 * 28 * 2 and img.height >= 2 * 28 * 2
    assert gallery.write_png(gallery.montage(groups), tmp_path / "new" / "m.png").is_file()  # as --csv/--md do
    with pytest.raises(DamtuiError, match="is a folder"):
        gallery.write_png(gallery.montage(groups), tmp_path)


def test_pictures_modes_and_cell_sizes(monkeypatch):
    monkeypatch.delenv(pictures.ENV, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert pictures.mode() == "unicode"  # half-blocks are only colour: the ramp instead
    monkeypatch.delenv("NO_COLOR")
    assert pictures.mode() == "auto"
    monkeypatch.setenv(pictures.ENV, "halfcell")
    assert pictures.mode() == "halfcell"
    pic = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28).astype(np.uint8)
    assert pictures.cells(pic) == (28, 14) and pictures.cells(pic, 0.5) == (14, 7)
    assert pictures.prepared(pic, 28, 14, "halfcell").size == (28, 28)  # two pixels per cell
    assert pictures.prepared(pic, 28, 14, "unicode").size == (28, 14)
    big = np.asarray(pictures.prepared(pic, 28, 14, "auto"))
    assert big.shape == (28 * 4, 28 * 4) and (big[:4, :4] == pic[0, 0]).all()


@pytest.mark.parametrize("flag", ["breastmnist", "adrenalmnist3d"])
def test_real_files_when_present(flag, tmp_path):
    if not (REAL / f"{flag}.npz").is_file():
        pytest.skip(f"{flag}.npz not in {REAL}")
    data = datasets.load(flag, REAL)
    counts = gallery.class_counts(data)
    assert sum(c.counts["train"] for c in counts) == len(data.labels["train"])
    assert [c.name for c in counts] == [data.spec.label_names["0"], data.spec.label_names["1"]]
    groups = gallery.browse(data, "test", per_class=4, augment=True)
    assert all(len(g.samples) == 4 for g in groups)
    width = 28 * 3 + 2 * gallery.GAP if data.spec.is_3d else 28
    assert groups[0].samples[0].picture.shape[1] == width
    gallery.write_png(gallery.montage([(g.name, g.samples) for g in groups]), tmp_path / "real.png")


def test_the_image_engine_imports_no_textual():
    import subprocess
    import sys

    code = ("import sys, damtui.analysis.gallery, damtui.analysis.mistakes, damtui.analysis.pictures, damtui.cli.datasets, damtui.cli.runs;"
            "print(any(m == 'textual' or m.startswith('textual.') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
