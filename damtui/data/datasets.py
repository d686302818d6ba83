"""MedMNIST 28 px datasets through the `medmnist` package's INFO, plus synthetic look-alikes.

Real files are read from a data root (`--data-root`, else DAMTUI_DATA, else medmnist's default
folder) and validated strictly, so a truncated or foreign file is a one-line error. Synthetic sets
are written once as real MedMNIST-format `.npz` files and go through the same loader.
Downloads happen only on request (`damtui datasets fetch FLAG`).
"""

from __future__ import annotations

import hashlib
import io
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from damtui.atomic import atomic_write_bytes
from damtui.errors import DamtuiError

SPLITS = ("train", "val", "test")
REPORT_FLAGS = (
    "breastmnist", "pneumoniamnist", "chestmnist",
    "nodulemnist3d", "adrenalmnist3d", "vesselmnist3d", "synapsemnist3d",
)
SYNTHETIC_SIZES = {
    "synthetic2d": {"train": 800, "val": 200, "test": 200},
    "synthetic3d": {"train": 240, "val": 80, "test": 80},
}


@dataclass(frozen=True)
class DatasetSpec:
    flag: str
    multilabel: bool
    n_labels: int  # 1 for binary
    n_channels: int
    is_3d: bool
    sizes: dict[str, int]
    md5: str | None = None
    url: str | None = None
    label_names: dict[str, str] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        return self.md5 is None

    @property
    def image_shape(self) -> tuple[int, ...]:
        """Shape of one image as stored in the .npz (MedMNIST layout, channels last for RGB)."""
        if self.is_3d:
            return (28, 28, 28)
        return (28, 28) if self.n_channels == 1 else (28, 28, self.n_channels)


def _medmnist_info_module() -> Any:
    """medmnist's info.py (flags, tasks, label names, MD5s, the default root) read on its own:
    `import medmnist.info` runs the package's __init__, which imports torch (20 s on a busy
    2-core machine) before the app could show one dataset's state."""
    if "medmnist.info" in sys.modules:
        return sys.modules["medmnist.info"]
    import importlib.util

    found = importlib.util.find_spec("medmnist")
    if found is None or not found.submodule_search_locations:
        raise DamtuiError("medmnist is not installed; `pip install medmnist`")
    path = Path(list(found.submodule_search_locations)[0]) / "info.py"
    spec = importlib.util.spec_from_file_location("damtui_medmnist_info", path)
    if spec is None or spec.loader is None:
        raise DamtuiError(f"cannot read {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["medmnist.info"] = module  # the same module a later `import medmnist` would make
    return module


def _medmnist_info() -> dict:
    return _medmnist_info_module().INFO


def all_flags() -> list[str]:
    """Every flag damtui can train: the synthetic ones and MedMNIST's binary/multi-label ones."""
    info = _medmnist_info()
    ok = [f for f, v in info.items() if v["task"] in ("binary-class", "multi-label, binary-class")]
    return list(SYNTHETIC_SIZES) + sorted(ok, key=lambda f: (f not in REPORT_FLAGS, f))


def spec(flag: str) -> DatasetSpec:
    flag = flag.lower()
    if flag in SYNTHETIC_SIZES:
        return DatasetSpec(flag, False, 1, 1, flag.endswith("3d"), SYNTHETIC_SIZES[flag],
                           label_names={"0": "no blob", "1": "bright blob"})
    info = _medmnist_info()
    if flag not in info:
        raise DamtuiError(
            f"unknown dataset {flag!r}; `damtui datasets` lists the ones damtui knows"
        )
    v = info[flag]
    if v["task"] not in ("binary-class", "multi-label, binary-class"):
        raise DamtuiError(
            f"{flag} is a {v['task']} task, which AUC maximisation here does not support;"
            " choose a binary or multi-label dataset (`damtui datasets`)"
        )
    multilabel = v["task"].startswith("multi-label")
    return DatasetSpec(
        flag=flag,
        multilabel=multilabel,
        n_labels=len(v["label"]) if multilabel else 1,
        n_channels=int(v["n_channels"]),
        is_3d=flag.endswith("3d"),
        sizes=dict(v["n_samples"]),
        md5=v["MD5"],
        url=v["url"],
        label_names=dict(v["label"]),
    )


def data_root(path: str | os.PathLike[str] | None = None) -> Path:
    if path:
        return Path(path).expanduser()
    if env := os.environ.get("DAMTUI_DATA"):
        return Path(env).expanduser()
    return Path(_medmnist_info_module().DEFAULT_ROOT)


def dataset_path(flag: str, root: Path) -> Path:
    return Path(root) / f"{flag}.npz"  # medmnist's file name for 28 px


@dataclass
class Splits:
    """Whole splits in memory: uint8 images in MedMNIST layout, int64 labels (N, n_labels)."""

    spec: DatasetSpec
    images: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]

    def sizes(self) -> dict[str, int]:
        return {s: len(self.labels[s]) for s in SPLITS}

    def positive_share(self, split: str = "train") -> np.ndarray:
        """Share of label 1 per label column."""
        return self.labels[split].mean(axis=0)


def file_md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fetch_hint(s: DatasetSpec, root: Path) -> str:
    if s.synthetic:
        return "it is generated automatically"
    return f"fetch it with `damtui datasets fetch {s.flag} --data-root {root}`"


def _check(s: DatasetSpec, path: Path, arrays: dict[str, np.ndarray]) -> Splits:
    bad = f"{path} is not a valid {s.flag} file:"
    images, labels = {}, {}
    for split in SPLITS:
        for kind in ("images", "labels"):
            if f"{split}_{kind}" not in arrays:
                raise DamtuiError(f"{bad} key '{split}_{kind}' missing; {_fetch_hint(s, path.parent)}")
        x, y = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if x.dtype != np.uint8:
            raise DamtuiError(f"{bad} {split}_images has dtype {x.dtype}, expected uint8")
        if x.ndim < 1 or x.shape[1:] != s.image_shape:
            raise DamtuiError(f"{bad} {split}_images has shape {x.shape}, expected (N, {', '.join(map(str, s.image_shape))})")
        if not np.issubdtype(y.dtype, np.integer):
            raise DamtuiError(f"{bad} {split}_labels has dtype {y.dtype}, expected integers")
        y = y.reshape(len(y), -1) if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[1] != s.n_labels or len(y) != len(x):
            raise DamtuiError(f"{bad} {split}_labels has shape {y.shape}, expected ({len(x)}, {s.n_labels})")
        if len(y) and not np.isin(y, (0, 1)).all():
            raise DamtuiError(f"{bad} {split}_labels has values other than 0 and 1")
        if len(y) == 0:
            raise DamtuiError(f"{bad} split '{split}' is empty")
        images[split], labels[split] = x, y.astype(np.int64)
    return Splits(s, images, labels)


def read_npz(s: DatasetSpec, path: Path) -> Splits:
    """Read and validate; any unreadable or foreign file is a one-line DamtuiError."""
    if not path.is_file():
        raise DamtuiError(f"{s.flag}: {path} not found; {_fetch_hint(s, path.parent)}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as err:
        raise DamtuiError(
            f"{path} is not a readable .npz (truncated or foreign: {type(err).__name__});"
            f" move it away and {_fetch_hint(s, path.parent)}"
        ) from None
    return _check(s, path, arrays)


def load(flag: str, root: str | os.PathLike[str] | None = None) -> Splits:
    """Load a dataset by flag; synthetic sets are generated on first use (the CLI announces that
    beforehand through `ensure_synthetic`)."""
    s = spec(flag)
    path = dataset_path(s.flag, data_root(root))
    ensure_synthetic(s.flag, root)
    return read_npz(s, path)


def ensure_synthetic(flag: str, root: str | os.PathLike[str] | None = None) -> Path | None:
    """Write a synthetic set into the data root if it is not there yet; the path when it was
    written now (so a front end can say so), None when there was nothing to do."""
    s = spec(flag)
    path = dataset_path(s.flag, data_root(root))
    if not s.synthetic or path.exists():
        return None
    write_synthetic(s.flag, path)
    return path


def announce_synthetic(path: Path) -> str:
    """The line a front end prints when a synthetic set was just written into the user's folder."""
    size = path.stat().st_size / 1e6
    return (f"{path.stem}: wrote the generated synthetic set to {path} ({size:.1f} MB, the same on every"
            " machine; delete it any time, it is made again on use)")


# ----------------------------------------------------------------------------- synthetic


def make_synthetic(flag: str) -> dict[str, np.ndarray]:
    """Deterministic MedMNIST-format arrays with a learnable, noisy signal and 30% positives.

    Every image is smooth noise plus a Gaussian blob; positives have a brighter blob on average,
    with overlap and 5% flipped labels so AUC stays below 1 and training has something to do.
    """
    s = spec(flag)
    rng = np.random.default_rng(20240601 + (3 if s.is_3d else 2))
    shape = s.image_shape
    grid = np.stack(np.meshgrid(*[np.arange(28)] * len(shape), indexing="ij"), axis=0).astype(np.float32)
    out: dict[str, np.ndarray] = {}
    for split in SPLITS:
        n = s.sizes[split]
        y = (rng.random(n) < 0.3).astype(np.uint8)
        amp = np.where(y == 1, 80.0, 30.0) + rng.normal(0, 15, n)
        centre = rng.uniform(8, 20, (n, len(shape)))
        sigma = rng.uniform(2.5, 4.0, n)
        d2 = ((grid[None] - centre.reshape(n, len(shape), *[1] * len(shape))) ** 2).sum(axis=1)
        blob = amp.reshape(n, *[1] * len(shape)) * np.exp(-d2 / (2 * sigma.reshape(n, *[1] * len(shape)) ** 2))
        noise = rng.normal(90, 20, (n, *shape))
        x = np.clip(noise + blob, 0, 255).astype(np.uint8)
        flip = rng.random(n) < 0.05
        y = np.where(flip, 1 - y, y).astype(np.uint8)
        out[f"{split}_images"], out[f"{split}_labels"] = x, y.reshape(n, 1)
    return out


def write_synthetic(flag: str, path: Path) -> None:
    """Write the synthetic set as a real .npz; never replaces an existing file."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    np.savez_compressed(buf, **make_synthetic(flag))
    atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------- listing, fetching


@dataclass(frozen=True)
class DatasetStatus:
    flag: str
    state: str  # "present" | "missing" | "corrupt" | "synthetic"
    md5: str  # "ok" | "mismatch" | "-"
    is_3d: bool
    multilabel: bool
    sizes: dict[str, int]
    positive_share: float | None
    path: Path
    error: str = ""


def status(flag: str, root: str | os.PathLike[str] | None = None) -> DatasetStatus:
    s = spec(flag)
    path = dataset_path(s.flag, data_root(root))
    base = dict(flag=s.flag, is_3d=s.is_3d, multilabel=s.multilabel, path=path)
    if not path.exists():
        state = "synthetic" if s.synthetic else "missing"
        return DatasetStatus(state=state, md5="-", sizes=s.sizes, positive_share=None, **base)
    md5 = "-" if s.synthetic else ("ok" if file_md5(path) == s.md5 else "mismatch")
    try:
        splits = read_npz(s, path)
    except DamtuiError as err:
        return DatasetStatus(state="corrupt", md5=md5, sizes=s.sizes, positive_share=None,
                             error=str(err), **base)
    return DatasetStatus(
        state="synthetic" if s.synthetic else "present", md5=md5, sizes=splits.sizes(),
        positive_share=float(splits.positive_share().mean()), **base,
    )


def fetch(flag: str, root: str | os.PathLike[str] | None = None) -> Path:
    """Download FLAG with medmnist's downloader and check its MD5; never replace a user's file."""
    s = spec(flag)
    folder = data_root(root)
    path = dataset_path(s.flag, folder)
    if s.synthetic:
        write_synthetic(s.flag, path)
        return path
    if path.exists():
        if file_md5(path) == s.md5:
            return path
        raise DamtuiError(
            f"{path} exists but its MD5 differs from medmnist's; it was left alone:"
            " move it away and fetch again"
        )
    made = [p for p in (folder, *folder.parents) if not p.exists()]  # removed again if the download fails
    folder.mkdir(parents=True, exist_ok=True)
    import medmnist

    try:
        getattr(medmnist, _medmnist_info()[s.flag]["python_class"])(split="train", root=str(folder), download=True)
    except Exception:  # medmnist wraps every failure in a bare RuntimeError
        for leftover in folder.glob(f"{s.flag}.npz*"):
            if leftover != path or file_md5(leftover) != s.md5:
                leftover.unlink(missing_ok=True)
        for empty in made:  # deepest first: only the folders this fetch created, and only if empty
            try:
                empty.rmdir()
            except OSError:
                break
        raise DamtuiError(
            f"could not download {s.flag} from {s.url} (offline?); download it by hand"
            f" into {folder} as {path.name} (MD5 {s.md5})"
        ) from None
    if file_md5(path) != s.md5:
        path.unlink(missing_ok=True)
        raise DamtuiError(f"downloaded {s.flag} failed its MD5 check and was removed; try again")
    return path
