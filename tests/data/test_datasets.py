import io
import shutil

import numpy as np
import pytest

from damtui.data import datasets
from damtui.errors import DamtuiError
from support import REAL_DATA


def test_synthetic_sets_are_medmnist_format_and_deterministic(data_root, tmp_path):
    for flag, shape in (("synthetic2d", (28, 28)), ("synthetic3d", (28, 28, 28))):
        with np.load(datasets.dataset_path(flag, data_root)) as npz:
            assert sorted(npz.files) == sorted(f"{s}_{k}" for s in datasets.SPLITS for k in ("images", "labels"))
            assert npz["train_images"].dtype == np.uint8 and npz["train_images"].shape[1:] == shape
            assert npz["train_labels"].shape[1] == 1
        splits = datasets.load(flag, data_root)
        share = splits.positive_share()[0]
        assert 0.2 < share < 0.45  # imbalanced, label 1 the minority
        again = datasets.make_synthetic(flag)
        assert np.array_equal(again["val_images"], splits.images["val"])


@pytest.mark.skipif(not (REAL_DATA / "breastmnist.npz").exists(), reason="real MedMNIST files not here")
@pytest.mark.parametrize("flag, n_train", [("breastmnist", 546), ("adrenalmnist3d", 1188)])
def test_real_files_load_and_verify(flag, n_train):
    splits = datasets.load(flag, REAL_DATA)
    assert splits.sizes()["train"] == n_train
    st = datasets.status(flag, REAL_DATA)
    assert (st.state, st.md5) == ("present", "ok")


def test_missing_file_names_path_and_fetch_command(tmp_path):
    with pytest.raises(DamtuiError) as err:
        datasets.load("breastmnist", tmp_path)
    msg = str(err.value)
    assert str(tmp_path / "breastmnist.npz") in msg and "damtui datasets fetch breastmnist" in msg
    assert datasets.status("breastmnist", tmp_path).state == "missing"


def _good_arrays():
    return datasets.make_synthetic("synthetic2d")


def _write_npz(path, arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("mutate, expect", [
    (lambda a: a.pop("val_labels"), "'val_labels' missing"),
    (lambda a: a.update(train_images=a["train_images"].astype(np.float32)), "dtype float32"),
    (lambda a: a.update(test_images=a["test_images"][:, :20]), "shape"),
    (lambda a: a.update(train_labels=a["train_labels"] * 3), "other than 0 and 1"),
    (lambda a: a.update(val_labels=a["val_labels"][:5]), "shape"),
])
def test_foreign_npz_is_one_line_error(tmp_path, mutate, expect):
    arrays = _good_arrays()
    mutate(arrays)
    _write_npz(tmp_path / "breastmnist.npz", arrays)
    with pytest.raises(DamtuiError, match=expect) as err:
        datasets.load("breastmnist", tmp_path)
    assert "\n" not in str(err.value)
    assert datasets.status("breastmnist", tmp_path).state == "corrupt"


def test_truncated_and_garbage_files(tmp_path):
    _write_npz(tmp_path / "breastmnist.npz", _good_arrays())
    data = (tmp_path / "breastmnist.npz").read_bytes()
    (tmp_path / "breastmnist.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DamtuiError, match="truncated or foreign"):
        datasets.load("breastmnist", tmp_path)
    (tmp_path / "breastmnist.npz").write_bytes(b"hello, not a zip")
    with pytest.raises(DamtuiError, match="truncated or foreign"):
        datasets.load("breastmnist", tmp_path)


def test_unknown_and_multiclass_flags():
    with pytest.raises(DamtuiError, match="unknown dataset"):
        datasets.spec("nosuchmnist")
    with pytest.raises(DamtuiError, match="multi-class task"):
        datasets.spec("pathmnist")
    chest = datasets.spec("chestmnist")
    assert chest.multilabel and chest.n_labels == 14
    assert "dermamnist" not in datasets.all_flags()
    for flag in datasets.REPORT_FLAGS:
        assert flag in datasets.all_flags()


def test_user_files_are_never_overwritten(tmp_path, monkeypatch):
    path = tmp_path / "breastmnist.npz"
    path.write_bytes(b"my own file")
    with pytest.raises(DamtuiError, match="left alone"):
        datasets.fetch("breastmnist", tmp_path)
    assert path.read_bytes() == b"my own file"
    synth = tmp_path / "synthetic2d.npz"
    synth.write_bytes(b"user bytes")
    datasets.fetch("synthetic2d", tmp_path)
    assert synth.read_bytes() == b"user bytes"


def test_fetch_offline_is_a_clear_message(tmp_path, monkeypatch):
    import medmnist

    def offline(*a, **k):
        raise RuntimeError("Automatic download failed!")

    monkeypatch.setattr(medmnist, "BreastMNIST", offline)
    with pytest.raises(DamtuiError, match="could not download breastmnist .*offline"):
        datasets.fetch("breastmnist", tmp_path)
    assert not (tmp_path / "breastmnist.npz").exists()


@pytest.mark.skipif(not (REAL_DATA / "breastmnist.npz").exists(), reason="real MedMNIST files not here")
def test_fetch_keeps_a_verified_file(tmp_path):
    shutil.copy(REAL_DATA / "breastmnist.npz", tmp_path)
    assert datasets.fetch("breastmnist", tmp_path) == tmp_path / "breastmnist.npz"


def test_dataset_states_need_neither_torch_nor_medmnists_package(tmp_path):
    """Issue 26 item 21: the launch screen said `checking…` for 4-9 s: `import medmnist.info` ran
    medmnist's __init__, which imports torch, before any state could be shown."""
    import subprocess
    import sys

    code = ("import sys; from damtui.data import datasets; "
            f"[datasets.status(f, {str(tmp_path)!r}) for f in datasets.all_flags()]; datasets.data_root(); "
            "print(sorted(m for m in ('torch', 'medmnist') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
