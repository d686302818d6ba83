"""The files of a run folder: their names, JSON written atomically, the one-writer lock, the
checks that tell a folder damtui wrote from a damaged or tampered one, checkpoints read as data,
and the sweeps' own files under <runs>/.sweeps/. Used by damtui.store.runs, the run store (which
re-exports what others call); nothing else touches these files."""

from __future__ import annotations

import io
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from damtui.atomic import atomic_write_bytes
from damtui.errors import DamtuiError
from damtui.store.progress import Progress
from damtui.records import EpochRow, RunSummary

if TYPE_CHECKING:
    import numpy as np  # imported where scores are read or written: `damtui --help` stays quick

CONFIG, STATUS, METRICS, SUMMARY = "config.json", "status.json", "metrics.jsonl", "summary.json"
BEST, LAST, ERROR_LOG = "best.pt", "last.pt", "error.log"
PROGRESS = "progress.json"  # where the run is inside its epoch (damtui.store.progress), replaced every second
NOTES, LOG = "notes.json", "log.txt"  # the user's name, notes and tags; the run's output (run_notes.py)
SCORES = "scores.npz"  # validation and test scores of best.pt's epoch, written right after it
SOURCE_SCORES = "source_scores.npz"  # a fine-tune's copy of its pretrain's scores.npz, taken when it starts
CHECKPOINT_FORMAT = "damtui-checkpoint-v1"
RUNNING, FINISHED, FAILED, CANCELLED, CRASHED = "running", "finished", "failed", "cancelled", "crashed"
DAMAGED = "damaged"  # a file of the run is not what damtui writes: listed with the reason, never resumed
LOCK = ".writer.lock"  # flock'ed by the one process writing the run (see RunLock)
STALE_HEARTBEAT_S = 600.0  # a run on another host with no heartbeat for this long is crashed
RUN_FILES = (CONFIG, STATUS, METRICS, SUMMARY, BEST, LAST, ERROR_LOG, SCORES, SOURCE_SCORES, PROGRESS, NOTES, LOG)
SWEEPS_DIR = ".sweeps"  # under the runs dir; dot-named, so `runs.list_runs` ignores it
SWEEP_PLAN = "plan.json"
SUPERVISOR_LOCK = "supervisor.lock"  # under <runs>/.sweeps/<sweep>/: held by the one `damtui sweep` running it
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def json_safe(obj: Any) -> Any:
    """NaN/inf are not JSON: store them as null."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


class RunLock:
    """One writer per run folder: an exclusive flock on <run>/.writer.lock, held while a process
    writes the run and released by the kernel when that process dies, SIGKILL included. A second
    writer (two resumes, two `--name X`, the app resuming a run a CLI process trains) is refused
    with one line naming the holder."""

    def __init__(self, fd: int) -> None:
        self.fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: Path) -> RunLock:
        try:
            return cls.take(Path(run_dir) / LOCK, f"{os.getpid()}\n")
        except BlockingIOError as held:
            raise DamtuiError(f"{Path(run_dir).name} is being written by another damtui process (pid {held});"
                              " wait for it to end, or follow it in `damtui`") from None

    @classmethod
    def take(cls, path: Path, holder: str) -> RunLock:
        """flock `path` exclusively and write `holder` into it; BlockingIOError(the holder's text) while
        another process holds it."""
        import fcntl

        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError as err:
            raise DamtuiError(f"cannot lock {path.parent} ({err.strerror}); is it a damtui folder you may write?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, 200).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BlockingIOError(text) from None
        os.ftruncate(fd, 0)
        os.write(fd, holder.encode())
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def folder_state(path: Path) -> str:
    """What stands at a run's path: "absent", "run" (a damtui run), "empty" (dot-files at most: a
    creation that died before its config, to be taken over) or "foreign" (someone else's files)."""
    path = Path(path)
    if not path.exists():
        return "absent"
    if is_run_dir(path):
        return "run"
    return "foreign" if any(not p.name.startswith(".") for p in path.iterdir()) else "empty"


def has_checkpoint(path: Path) -> bool:
    """The run has a last.pt to resume from."""
    return (Path(path) / LAST).is_file()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a damtui checkpoint as data only (weights_only=True): a foreign file cannot run code."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    if not path.is_file():
        raise DamtuiError(f"{path}: no checkpoint there (the run has not finished an epoch); pick another run")
    try:
        with warnings.catch_warnings():  # a foreign pickle makes torch warn; the error below says it all
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DamtuiError(f"{path} is not a damtui checkpoint (not a data-only torch file, so it was not"
                          " loaded); move it away or pick another run") from None
    except Exception as err:  # noqa: BLE001 - torch raises many types for truncated or foreign files
        raise DamtuiError(f"{path} is not a damtui checkpoint (unreadable: {type(err).__name__}, truncated or"
                          " foreign); move it away or pick another run") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise DamtuiError(f"{path} is not a damtui checkpoint (no '{CHECKPOINT_FORMAT}' marker);"
                          " move it away or pick another run")
    return payload


def refuse_links(run_dir: Path) -> None:
    """A run folder whose own files are symbolic links was damaged or tampered with: damtui never
    writes through one (it could overwrite a file outside the folder)."""
    for name in RUN_FILES:
        if (Path(run_dir) / name).is_symlink():
            raise DamtuiError(f"{Path(run_dir) / name} is a symbolic link, not a run file: the folder is damaged;"
                              " start a new run with the same settings")


def check_run_name(name: str) -> None:
    """A run name is one plain, printable folder name (it is typed in shells and shown in lists)."""
    bad = (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
           or os.sep in name or not name.isprintable() or len(name) > 200)
    if bad:
        raise DamtuiError(f"run name {name!r} is not a plain folder name: use letters, digits, '-', '_' and '.'")


def metrics_damage(path: Path) -> str:
    """'' when metrics.jsonl is what damtui writes (whole JSON objects with an integer epoch, one a
    line; only the last may be torn by a crash), else the first problem with its line number."""
    file = Path(path) / METRICS
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        return ""
    except OSError as err:
        return f"{file}: unreadable ({err.strerror})"
    lines = data.splitlines(keepends=True)
    for n, line in enumerate(lines, 1):
        last = n == len(lines)
        try:
            row = json.loads(line)
        except ValueError:
            if last and not line.endswith(b"\n"):
                return ""  # torn by a crash mid-append: the next append completes or resume drops it
            return f"{file} line {n}: not a JSON object"
        try:
            epoch = EpochRow.from_json(row).epoch
        except ValueError as err:
            return f"{file} line {n}: {err}"
        if epoch != n:
            return f"{file} line {n}: epoch {epoch} where epoch {n} belongs"
    return ""


_INT, _NUMBER, _TEXT = ((int,), "an integer"), ((int, float), "a number"), ((str,), "a string")
STATUS_FIELDS = {"state": _TEXT, "pid": _INT, "pid_start": _TEXT, "host": _TEXT, "started": _NUMBER,
                 "updated": _NUMBER, "epoch": _INT, "epochs": _INT, "message": _TEXT}
CONFIG_FIELDS = {"seed": _INT, "epochs": _INT}  # the ones a listing reads as numbers


def fields_damage(name: str, obj: dict[str, Any], fields: dict[str, tuple[tuple[type, ...], str]]) -> str:
    """'' when each field present (and not null) has its type, else "NAME: 'key' is X, not a Y"."""
    for key, (types, what) in fields.items():
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
            return f"{name}: {key!r} is {json.dumps(value)[:40]}, not {what}"
    return ""


# ----------------------------------------------------------------------------- is the writer alive


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def process_start(pid: int) -> str | None:
    """The process's start time from /proc (Linux), to tell a live run from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]  # field 22, starttime
    except (OSError, IndexError):
        return None


def effective_status(status: dict[str, Any]) -> str:
    """The stored state, except a 'running' run whose process is gone is 'crashed'."""
    state = status.get("state", CRASHED)
    if state != RUNNING:
        return state
    if status.get("host") == socket.gethostname():
        pid = int(status.get("pid", -1))  # ValueError for a damaged status: the caller lists it damaged
        if not pid_alive(pid):
            return CRASHED
        started, now = status.get("pid_start"), process_start(pid)
        return CRASHED if started and now and started != now else RUNNING  # a reused pid is not the run
    return RUNNING if time.time() - status.get("updated", 0) < STALE_HEARTBEAT_S else CRASHED


# ----------------------------------------------------------------------------- a sweep's files


def sweep_dir(root: Path, sweep: str) -> Path:
    """<runs>/.sweeps/<sweep>: the plan, logs/, discarded/ (and submitit/, which submitit writes)."""
    return Path(root) / SWEEPS_DIR / sweep


def write_sweep_plan(root: Path, sweep: str, plan: dict[str, Any]) -> Path:
    """Record a sweep's plan beside the runs (atomically), so the app can count runs not started."""
    path = sweep_dir(root, sweep) / SWEEP_PLAN
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, plan)
    return path


def lock_sweep(root: Path, sweep: str) -> RunLock:
    """One supervisor per sweep: <sweep>/supervisor.lock, held while a `damtui sweep` runs it. A
    second one is refused with one line naming the first (a lock on the runs' own folders alone let
    both start every run and report the other's runs as their own)."""
    folder = sweep_dir(root, sweep)
    folder.mkdir(parents=True, exist_ok=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        return RunLock.take(folder / SUPERVISOR_LOCK, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
    except BlockingIOError as held:
        pid = str(held).split()[1] if str(held).startswith("pid ") else "?"
        raise DamtuiError(f"sweep {sweep} is already run by another `damtui sweep` ({held}); let it finish, or"
                          f" stop it with Ctrl+C there (kill -INT {pid}) and run this again") from None


def load_sweep_plans(root: Path) -> dict[str, dict[str, Any]]:
    """Every recorded sweep plan under the runs dir, by sweep name; unreadable ones are skipped."""
    out: dict[str, dict[str, Any]] = {}
    for path in sorted((Path(root) / SWEEPS_DIR).glob(f"*/{SWEEP_PLAN}")):
        try:
            data = read_json(path)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("jobs"), list):
            out[str(data.get("sweep") or path.parent.name)] = data
    return out


def request_sweep_stop(root: Path, sweep: str, run: str, why: str) -> None:
    """Ask the sweep job that trains `run` to stop it (a pruned trial): <sweep>/stop/<run>, a file
    on the filesystem every node of a Ray or Slurm sweep shares, seen by the job within a second."""
    path = sweep_dir(root, sweep) / "stop" / run
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, why.encode())


def sweep_stop_requested(root: Path, sweep: str, run: str) -> str | None:
    """Why `run` was asked to stop, or None."""
    try:
        return (sweep_dir(root, sweep) / "stop" / run).read_text(errors="replace") or "stop requested"
    except OSError:
        return None


def clear_sweep_stops(root: Path, sweep: str) -> None:
    """A new sweep process starts with no stop requests: an earlier one's are answered."""
    for path in (sweep_dir(root, sweep) / "stop").glob("*"):
        path.unlink(missing_ok=True)


def open_sweep_log(root: Path, sweep: str, run: str) -> BinaryIO:
    """<sweep>/logs/<run>.log opened to append: every attempt at the run adds its part."""
    log = sweep_dir(root, sweep) / "logs" / f"{run}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return open(log, "ab")


def read_sweep_log(log: Path, start: int = 0) -> list[str] | None:
    """The lines of a sweep log from byte `start` (one attempt's part); None when unreadable."""
    try:
        with open(log, "rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return None


def discard_run(root: Path, sweep: str, run: str) -> Path:
    """Move a run folder aside to <sweep>/discarded/<run>-<time> (it stopped before its first
    checkpoint, so there is nothing to resume and the sweep starts it again)."""
    dest = sweep_dir(root, sweep) / "discarded" / f"{run}-{time.strftime('%Y%m%d-%H%M%S')}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(Path(root) / run, dest)
    return dest


# ----------------------------------------------------------------------------- reading a run's files


def read_metrics(path: Path, offset: int = 0) -> tuple[list[EpochRow], int]:
    """Rows appended since byte `offset`, and the offset after the last whole line.

    A torn (unterminated or unparsable) last line is left for the next read; reading stops at a
    line that is not an epoch row (metrics_damage names it).
    """
    try:
        with open(Path(path) / METRICS, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    rows: list[EpochRow] = []
    consumed = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(EpochRow.from_json(json.loads(line)))
        except ValueError:
            break
        consumed += len(line)
    return rows, offset + consumed


def read_progress(path: Path) -> Progress | None:
    """The run's newest progress record; None when there is none or it is not one (a follower
    then shows no batch progress, nothing else)."""
    try:
        return Progress.from_json(read_json(Path(path) / PROGRESS))
    except (OSError, ValueError):
        return None


def trained_seconds(status: dict[str, Any]) -> float:
    """Seconds a run has trained: its earlier writers' time (`earlier_s`) plus this writer's up to
    its last write. The hours a run sat cancelled before a resume are not counted. Files written
    before the fields existed count from the first start."""
    updated = float(status.get("updated", 0.0))
    if "resumed" in status:
        return float(status.get("earlier_s", 0.0)) + max(0.0, updated - float(status["resumed"]))
    return max(0.0, updated - float(status.get("started", updated)))


def folder_stamp(path: Path) -> tuple:
    """(size, mtime) of the files a run's reader shows: it changes whenever the writer wrote.
    Cheap enough to check every second; a reader re-reads the run only when it changed."""
    stamp = []
    for name in (CONFIG, STATUS, METRICS, SUMMARY, NOTES):
        try:
            st = os.stat(Path(path) / name)
            stamp.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


# ----------------------------------------------------------------------------- scores of best.pt


@dataclass(frozen=True)
class Scores:
    """scores.npz: the scores of the best checkpoint's epoch, so curves and intervals are never
    recomputed. Scores are float32 class-1 probabilities, (N,) binary or (N, L) multi-label;
    `val_threshold` is the one chosen on validation (a float, or (L,) for multi-label)."""

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


def write_scores(run_dir: Path, scores: Scores, name: str = SCORES) -> None:
    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{f: getattr(scores, f) for f in Scores.__dataclass_fields__})
    atomic_write_bytes(Path(run_dir) / name, buf.getvalue())


def load_scores(run_dir: Path, name: str = SCORES) -> Scores | None:
    """The run's scores.npz (or `name`, the same format); None when it is absent (runs from
    before it existed) or unreadable."""
    import numpy as np

    try:
        with np.load(Path(run_dir) / name, allow_pickle=False) as data:
            values = {f: data[f] for f in Scores.__dataclass_fields__}
    except (OSError, ValueError, KeyError, EOFError):
        return None
    try:
        values["epoch"] = int(values["epoch"])
    except (TypeError, ValueError):
        return None
    if len(values["test_scores"]) != len(values["test_labels"]) or len(values["val_scores"]) != len(values["val_labels"]):
        return None
    return Scores(**values)


def read_summary(run_dir: Path) -> RunSummary | None:
    """summary.json as a record; None before the run has ended or when it cannot be read."""
    try:
        return RunSummary.from_json(read_json(Path(run_dir) / SUMMARY))
    except (OSError, ValueError, TypeError):
        return None
