"""scores.npz, part of the run store: the validation and test scores of best.pt's epoch, written
right after it, so curves, intervals and mistakes are never recomputed.

A copied or hand-made folder can hold anything there, so reading checks the file against the
run's own config before any number is used: arrays named and shaped as damtui writes them (their
headers are read before their data, so a small compressed file cannot declare 5,000,000 rows for a
200-image test set), scores finite, labels 0 or 1, one threshold per label, the epoch
within the run. Anything else is ScoresDamage: one line that names the file and what is wrong.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from damtui.atomic import atomic_write_bytes
from damtui.errors import DamtuiError
from damtui.store.files import CONFIG, MAX_EPOCHS, MB, SCORES, STATUS, UnsafeFile, open_file, read_json, size_text

if TYPE_CHECKING:
    import numpy as np  # imported where scores are read or written: `damtui --help` stays quick


class ScoresDamage(DamtuiError):
    """scores.npz is not what damtui writes for this run."""


@dataclass(frozen=True)
class Scores:
    """Scores are float32 class-1 probabilities, (N,) binary or (N, L) multi-label; labels int64
    of the same shape; `val_threshold` is the one chosen on validation (a float, or (L,))."""

    epoch: int
    val_scores: np.ndarray
    val_labels: np.ndarray
    test_scores: np.ndarray
    test_labels: np.ndarray
    val_threshold: np.ndarray

    @classmethod
    def of(cls, epoch: int, val: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
           threshold: Any) -> Scores:
        """From the trainer's (scores (N, L), labels (N, L)) of one member; L = 1 becomes (N,)."""
        import numpy as np

        def flat(a: np.ndarray, dtype: Any) -> np.ndarray:
            a = np.asarray(a, dtype=dtype)
            return a.reshape(len(a)) if a.ndim == 2 and a.shape[1] == 1 else a
        thr = np.asarray(threshold, dtype=np.float64).reshape(-1)
        return cls(int(epoch), flat(val[0], np.float32), flat(val[1], np.int64), flat(test[0], np.float32),
                   flat(test[1], np.int64), thr.reshape(()) if thr.size == 1 else thr)


FIELDS = tuple(f.name for f in fields(Scores))


def write_scores(run_dir: Path, scores: Scores, name: str = SCORES) -> None:
    """scores.npz, or `name` in the same format (a fine-tune's source_scores.npz)."""
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{f: getattr(scores, f) for f in FIELDS})
    atomic_write_bytes(Path(run_dir) / name, buf.getvalue())


@dataclass(frozen=True)
class Expected:
    """What the run's config says its scores can be: labels per image, the most images of each
    split, the last epoch."""

    labels: int | None = None  # None: a dataset this version does not know, any count
    sizes: dict[str, int] | None = None
    epochs: int = MAX_EPOCHS

    @classmethod
    def of_run(cls, run_dir: Path, name: str = SCORES) -> Expected:
        """From the run's config.json (and status.json for an extension's epochs); the epoch of
        another run's scores kept here (source_scores.npz) is any epoch."""
        from damtui.data import datasets

        try:
            config = read_json(Path(run_dir) / CONFIG).get("config") or {}
            spec = datasets.spec(str(config.get("dataset")))
            labels, sizes = spec.n_labels, dict(spec.sizes)
        except (OSError, ValueError, AttributeError, DamtuiError):
            config, labels, sizes = {}, None, None
        epochs = [config.get("epochs") if isinstance(config, dict) else None]
        try:
            epochs.append(read_json(Path(run_dir) / STATUS).get("epochs"))
        except (OSError, ValueError, AttributeError):
            pass
        known = [e for e in epochs if type(e) is int and e > 0 and name == SCORES]
        return cls(labels, sizes, min(max(known), MAX_EPOCHS) if known else MAX_EPOCHS)

    def bound(self) -> int:
        """The most bytes the file can take: scores (4 bytes) and labels (8) of every image."""
        if self.sizes is None or self.labels is None:
            return 256 * MB
        return 12 * self.labels * (self.sizes.get("val", 0) + self.sizes.get("test", 0)) + 1 * MB


def load_scores(run_dir: Path, name: str = SCORES, expected: Expected | None = None) -> Scores | None:
    """The run's scores.npz (or `name`, the same format), checked against `expected` (default:
    the run's own config); None when the run has none (runs from before it existed),
    ScoresDamage when it is not what damtui writes for this run."""
    path = Path(run_dir) / name
    try:
        fd = open_file(path)
    except FileNotFoundError:
        return None
    except UnsafeFile as err:
        raise ScoresDamage(str(err)) from None
    except OSError as err:
        raise ScoresDamage(f"{path}: unreadable ({err.strerror})") from None
    expected = expected or Expected.of_run(run_dir, name)
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > expected.bound():
            _damaged(path, f"{size_text(size)}, more than this run's images can take ({size_text(expected.bound())})")
        try:
            values = _read_arrays(fh, path, expected)
        except ScoresDamage:
            raise
        except Exception as err:  # noqa: BLE001 - zipfile and numpy raise many types for foreign bytes
            _damaged(path, f"not a readable .npz ({type(err).__name__})")
    return _checked(path, values, expected)


def _damaged(path: Path, what: str) -> None:
    raise ScoresDamage(f"{path}: {what}; move it away (curves and intervals then read 'not recorded')")


def _read_arrays(fh: Any, path: Path, expected: Expected) -> dict[str, np.ndarray]:
    """Each array, its header checked before its data is read."""
    import numpy as np
    from numpy.lib import format as npy

    out = {}
    with zipfile.ZipFile(fh) as zf:
        names = set(zf.namelist())
        for key in FIELDS:
            if f"{key}.npy" not in names:
                _damaged(path, f"no array {key!r}")
            with zf.open(f"{key}.npy") as member:
                version = npy.read_magic(member)
                shape, _, dtype = (npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0)(member)
                _check_header(path, key, shape, dtype, expected)
            with zf.open(f"{key}.npy") as member:
                out[key] = np.lib.format.read_array(member, allow_pickle=False)
    return out


def _check_header(path: Path, key: str, shape: tuple[int, ...], dtype: Any, expected: Expected) -> None:
    import numpy as np

    kind = {"epoch": "an integer", "val_labels": "integers", "test_labels": "integers"}.get(key, "numbers")
    ok = np.issubdtype(dtype, np.integer) or dtype == np.bool_ if kind != "numbers" else np.issubdtype(dtype, np.floating)
    if not ok or dtype.hasobject:
        _damaged(path, f"{key} holds {dtype}, not {kind}")
    if key == "epoch":
        if shape != ():
            _damaged(path, f"epoch has shape {shape}, not one number")
        return
    if key == "val_threshold":
        if len(shape) > 1 or (expected.labels is not None and int(np.prod(shape)) != expected.labels):
            _damaged(path, f"val_threshold has shape {shape} for {expected.labels} label(s)")
        return
    split = key.split("_")[0]
    labels = expected.labels
    want = 1 if labels == 1 else 2
    if len(shape) != want or (want == 2 and labels is not None and shape[1] != labels) or len(shape) == 0:
        what = "(N,)" if labels == 1 else f"(N, {labels})"
        _damaged(path, f"{key} has shape {shape}, not {what}")
    top = (expected.sizes or {}).get(split)
    if shape[0] == 0 or (top is not None and shape[0] > top):
        _damaged(path, f"{key} has {shape[0]} rows; the {split} split has {top if top is not None else 'more than 0'}")


def _checked(path: Path, values: dict[str, np.ndarray], expected: Expected) -> Scores:
    """The values of a file whose headers passed: same row counts, ranges, the epoch."""
    import numpy as np

    epoch = int(values["epoch"])
    if not 1 <= epoch <= expected.epochs:
        _damaged(path, f"epoch {epoch} is not one of the run's epochs 1..{expected.epochs}")
    for split in ("val", "test"):
        s, y = values[f"{split}_scores"], values[f"{split}_labels"]
        if s.shape != y.shape or (expected.labels is None and s.ndim not in (1, 2)):
            _damaged(path, f"{split}_scores {s.shape} and {split}_labels {y.shape} do not match")
        if not np.isfinite(s).all():  # damtui writes probabilities; finite is what no reader can do without
            _damaged(path, f"{split}_scores hold NaN or infinite values")
        if not np.isin(y, (0, 1)).all():
            _damaged(path, f"{split}_labels are not all 0 or 1 (found {json.dumps(np.unique(y)[:5].tolist())})")
    thr = values["val_threshold"]
    labels = 1 if values["test_scores"].ndim == 1 else values["test_scores"].shape[1]
    if thr.size != labels or not np.isfinite(thr).all():
        _damaged(path, f"val_threshold {thr.shape} is not one finite number per label ({labels})")
    return Scores(epoch, values["val_scores"], values["val_labels"], values["test_scores"], values["test_labels"],
                  thr.reshape(()) if labels == 1 else thr.reshape(labels))
