"""The files of a run folder: their names, JSON written atomically, the one-writer lock, the
checks that tell a folder damtui wrote from a damaged or tampered one, checkpoints read as data,
and the sweeps' own files under <runs>/.sweeps/. Used by damtui.store.runs, the run store (which
re-exports what others call); nothing else touches these files."""

from __future__ import annotations

import errno
import json
import math
import os
import socket
import stat
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO

from damtui.atomic import atomic_write_bytes
from damtui.config import MAX_EPOCHS  # metrics.jsonl holds at most this many rows
from damtui.errors import DamtuiError
from damtui.store.progress import Progress
from damtui.records import EpochRow, RunSummary

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


KB, MB = 1024, 1024 * 1024
# the most each file can hold: a bigger one was not written by damtui and is not read
BOUNDS = {CONFIG: 1 * MB, STATUS: 64 * KB, SUMMARY: 4 * MB, PROGRESS: 16 * KB, NOTES: 256 * KB,
          SWEEP_PLAN: 64 * MB, LOCK: 64, SUPERVISOR_LOCK: 256}
ROW_BYTES = 16 * KB  # one metrics.jsonl row (a 14-label row with its per-label lists is ~2 KB)
LOG_TAIL = 1 * MB  # the end of a log.txt or a sweep log that is read and shown


class UnsafeFile(DamtuiError, OSError):
    """A path under the runs folder that damtui does not read or write through: a symbolic link,
    a FIFO, device or folder where a file belongs, a file where a folder belongs, or a file larger
    than what it holds. An OSError, so a reader that skips unreadable files skips it too, and a
    DamtuiError, so a command that meets it ends with its one line."""

    def __init__(self, path: Path | str, what: str, hint: str = "move it away") -> None:
        DamtuiError.__init__(self, f"{path} is {what}; {hint}")
        self.errno, self.strerror, self.filename, self.hint = errno.EINVAL, what, str(path), hint

    def __str__(self) -> str:
        return str(self.args[0])

    def __reduce__(self) -> tuple:  # crosses into Ray and Slurm workers' results whole
        return UnsafeFile, (self.filename, self.strerror, self.hint)


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_text(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / KB:.1f} KB" if n >= KB else f"{n} bytes"


def open_file(path: Path, flags: int = os.O_RDONLY, mode: int = 0o644) -> int:
    """A descriptor of the regular file at `path`, opened without following a link at it and
    without blocking (a FIFO or device is refused, never waited on); UnsafeFile otherwise."""
    try:
        fd = os.open(path, flags | NOFOLLOW | os.O_NONBLOCK, mode)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UnsafeFile(path, "a symbolic link, not a run file", "remove the link") from None
        if err.errno == errno.EISDIR:
            raise UnsafeFile(path, "a folder where a file belongs") from None
        if err.errno == errno.ENXIO:  # opening a FIFO to write with no reader
            raise UnsafeFile(path, "a FIFO, not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(path, f"{_kind(st.st_mode)}, not a regular file")
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _bound(path: Path, limit: int | None) -> int:
    return BOUNDS.get(Path(path).name, 1 * MB) if limit is None else limit


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The whole regular file at `path`, refused (UnsafeFile) when it is larger than `limit`
    (default: the file's own bound in BOUNDS); FileNotFoundError when absent."""
    limit = _bound(path, limit)
    fd = open_file(path)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise UnsafeFile(path, f"{size_text(size)}, more than a {Path(path).name} can hold"
                                   f" ({size_text(limit)})", "move it away: damtui did not write it")
        return _read(fd, limit)
    finally:
        os.close(fd)


def _read(fd: int, limit: int) -> bytes:
    """At most `limit` bytes from the descriptor's position (a file being appended to stops there)."""
    parts, left = [], limit
    while left > 0:
        chunk = os.read(fd, min(left, 1 * MB))
        if not chunk:
            break
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def read_tail(path: Path, start: int = 0, limit: int = LOG_TAIL) -> tuple[bytes, int, int]:
    """The bytes of the regular file at `path` from `start` to its end, at most its last `limit`,
    with the offset they begin at and how many bytes after `start` were left out (a file now
    shorter than `start` was replaced: it is read from 0). FileNotFoundError when absent,
    UnsafeFile when not a regular file."""
    fd = open_file(path)
    try:
        size = os.fstat(fd).st_size
        base = 0 if size < start else start
        begin = max(base, size - limit)
        os.lseek(fd, begin, os.SEEK_SET)
        return _read(fd, limit), begin, begin - base
    finally:
        os.close(fd)


def open_append(path: Path) -> int:
    """A descriptor appending to the regular file at `path` (created when absent; never a link,
    a FIFO or a device)."""
    return open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)


def real_dir(path: Path, create: bool = False) -> Path:
    """`path`, a folder that is not a link (made when `create` and absent): the sweeps' and the
    trash's folders under the runs folder, which a planted link would send elsewhere."""
    path = Path(path)
    if create:
        try:
            path.mkdir()
        except FileExistsError:
            pass
        except OSError as err:
            raise DamtuiError(f"cannot create {path} ({err.strerror}); choose a writable --runs-dir") from None
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFile(path, "a symbolic link, not a folder damtui made", "remove the link")
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafeFile(path, f"{_kind(st.st_mode)} where a folder belongs")
    return path


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


def read_json(path: Path, limit: int | None = None) -> Any:
    """A run file's JSON, read as read_bytes does (no link, no FIFO, within its bound)."""
    return json.loads(read_bytes(path, limit))


class RunLock:
    """One writer per run folder: an exclusive flock on <run>/.writer.lock, held while a process
    writes the run and released by the kernel when that process dies, SIGKILL included. A second
    writer (two resumes, two `--name X`, the app resuming a run a CLI process trains) is refused
    with one line naming the holder. The file names its holder while the lock is held; a process
    that took the lock only to check the run (and was refused, or deleted it) puts the previous
    holder's pid back, so the lock file of a run it did not write is as it was."""

    def __init__(self, fd: int, previous: bytes | None = None) -> None:
        self.fd: int | None = fd
        self.previous = previous  # the file's content before; None once this process writes the run

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
        another process holds it. A link, FIFO or device in its place is refused (DamtuiError)."""
        import fcntl

        path = Path(path)
        try:
            fd = open_file(path, os.O_RDWR | os.O_CREAT)
        except UnsafeFile as err:
            raise DamtuiError(f"{err}; the folder is damaged (its lock is not a file damtui made)") from None
        except OSError as err:
            raise DamtuiError(f"cannot lock {path.parent} ({err.strerror}); is it a damtui folder you may write?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.read(fd, BOUNDS[path.name]).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise BlockingIOError(text) from None
        previous = os.pread(fd, BOUNDS[path.name], 0)
        cls._write(fd, holder.encode())
        return cls(fd, previous)

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)

    def commit(self) -> None:
        """This process now writes the run: the file keeps its pid after the lock is released."""
        self.previous = None

    def release(self) -> None:
        if self.fd is not None:
            if self.previous is not None:
                try:
                    self._write(self.fd, self.previous)
                except OSError:
                    pass
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def is_run_dir(path: Path) -> bool:
    """A folder (not a link to one) with a config.json file (not a link, FIFO or device)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode) and stat.S_ISREG(os.lstat(Path(path) / CONFIG).st_mode)
    except OSError:
        return False


def run_folder(path: Path) -> Path:
    """`path` when it is a run folder itself, not a link to one (whose files would be outside the
    runs folder); DamtuiError otherwise."""
    try:
        return real_dir(path)
    except FileNotFoundError:
        raise DamtuiError(f"no run folder {path}; `damtui runs` lists runs") from None
    except UnsafeFile as err:
        raise DamtuiError(f"{path} is not a damtui run ({err.strerror})") from None


def folder_state(path: Path) -> str:
    """What stands at a run's path: "absent", "run" (a damtui run), "empty" (dot-files at most: a
    creation that died before its config, to be taken over) or "foreign" (someone else's files)."""
    path = Path(path)
    if not os.path.lexists(path):
        return "absent"
    if not stat.S_ISDIR(os.lstat(path).st_mode):  # a file or a link (to a folder or not)
        return "foreign"
    if is_run_dir(path):
        return "run"
    return "foreign" if any(not p.name.startswith(".") for p in path.iterdir()) else "empty"


def has_checkpoint(path: Path) -> bool:
    """The run has a last.pt to resume from."""
    try:
        return stat.S_ISREG(os.lstat(Path(path) / LAST).st_mode)
    except OSError:
        return False


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a damtui checkpoint as data only (weights_only=True): a foreign file cannot run code."""
    import pickle
    import warnings

    import torch

    path = Path(path)
    try:
        fd = open_file(path)
    except FileNotFoundError:
        raise DamtuiError(f"{path}: no checkpoint there (the run has not finished an epoch); pick another run") from None
    except UnsafeFile as err:
        raise DamtuiError(f"{path} is not a damtui checkpoint ({err.strerror}); move it away or pick another run") from None
    try:
        with warnings.catch_warnings(), os.fdopen(fd, "rb") as fh:  # a foreign pickle makes torch warn;
            warnings.simplefilter("ignore")  # the error below says it all
            payload = torch.load(fh, map_location="cpu", weights_only=True)
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
    """A run folder whose own files are symbolic links (or FIFOs, devices, folders) was damaged or
    tampered with: damtui never writes through one (it could overwrite a file outside the folder)."""
    run_folder(run_dir)
    for name in (*RUN_FILES, LOCK):
        try:
            mode = os.lstat(Path(run_dir) / name).st_mode
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(mode):
            raise DamtuiError(f"{Path(run_dir) / name} is a symbolic link, not a run file: the folder is damaged;"
                              " start a new run with the same settings")
        if not stat.S_ISREG(mode):
            raise DamtuiError(f"{Path(run_dir) / name} is {_kind(mode)}, not a run file: the folder is damaged;"
                              " start a new run with the same settings")


def check_run_name(name: str) -> None:
    """A run name is one plain, printable folder name (it is typed in shells and shown in lists)."""
    bad = (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
           or os.sep in name or not name.isprintable() or len(name) > 200)
    if bad:
        raise DamtuiError(f"run name {name!r} is not a plain folder name: use letters, digits, '-', '_' and '.'")


_INT, _NUMBER, _TEXT = ((int,), "an integer"), ((int, float), "a number"), ((str,), "a string")
STATUS_FIELDS = {"state": _TEXT, "pid": _INT, "pid_start": _TEXT, "host": _TEXT, "started": _NUMBER,
                 "updated": _NUMBER, "epoch": _INT, "epochs": _INT, "message": _TEXT}
CONFIG_FIELDS = {"seed": _INT, "epochs": _INT}  # the ones a listing reads as numbers


def fields_damage(name: str, obj: dict[str, Any], fields: dict[str, tuple[tuple[type, ...], str]]) -> str:
    """'' when each field present (and not null) has its type, else "NAME: 'key' is X, not a Y"."""
    for key, (types, what) in fields.items():
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, types)
                                  or (isinstance(value, float) and not math.isfinite(value))):
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


def sweep_dir(root: Path, sweep: str, create: bool = False) -> Path:
    """<runs>/.sweeps/<sweep>: the plan, logs/, discarded/ (and submitit/, which submitit writes).
    Neither folder may be a link (the plan and logs would be written where it points)."""
    if create:
        Path(root).mkdir(parents=True, exist_ok=True)  # the runs folder itself is the user's choice
    base = real_dir(Path(root) / SWEEPS_DIR, create) if create or os.path.lexists(Path(root) / SWEEPS_DIR) \
        else Path(root) / SWEEPS_DIR
    path = base / sweep
    return real_dir(path, create) if create or os.path.lexists(path) else path


def write_sweep_plan(root: Path, sweep: str, plan: dict[str, Any]) -> Path:
    """Record a sweep's plan beside the runs (atomically), so the app can count runs not started."""
    path = sweep_dir(root, sweep, create=True) / SWEEP_PLAN
    atomic_write_json(path, plan)
    return path


def lock_sweep(root: Path, sweep: str) -> RunLock:
    """One supervisor per sweep: <sweep>/supervisor.lock, held while a `damtui sweep` runs it. A
    second one is refused with one line naming the first (a lock on the runs' own folders alone let
    both start every run and report the other's runs as their own)."""
    folder = sweep_dir(root, sweep, create=True)
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    try:
        return RunLock.take(folder / SUPERVISOR_LOCK, f"pid {os.getpid()} on {socket.gethostname()} since {started}\n")
    except BlockingIOError as held:
        pid = str(held).split()[1] if str(held).startswith("pid ") else "?"
        raise DamtuiError(f"sweep {sweep} is already run by another `damtui sweep` ({held}); let it finish, or"
                          f" stop it with Ctrl+C there (kill -INT {pid}) and run this again") from None


def load_sweep_plans(root: Path) -> dict[str, dict[str, Any]]:
    """Every recorded sweep plan under the runs dir, by sweep name; unreadable ones (links, FIFOs,
    too large, not a plan) are skipped."""
    out: dict[str, dict[str, Any]] = {}
    try:
        base = real_dir(Path(root) / SWEEPS_DIR)
    except OSError:
        return out
    for folder in sorted(base.iterdir()):
        try:
            data = read_json(real_dir(folder) / SWEEP_PLAN)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("jobs"), list):
            out[str(data.get("sweep") or folder.name)] = data
    return out


def request_sweep_stop(root: Path, sweep: str, run: str, why: str) -> None:
    """Ask the sweep job that trains `run` to stop it (a pruned trial): <sweep>/stop/<run>, a file
    on the filesystem every node of a Ray or Slurm sweep shares, seen by the job within a second."""
    folder = real_dir(sweep_dir(root, sweep, create=True) / "stop", create=True)
    atomic_write_bytes(folder / run, why.encode())


def sweep_stop_requested(root: Path, sweep: str, run: str) -> str | None:
    """Why `run` was asked to stop, or None (also for a link, FIFO or a file of more than 4 KB)."""
    try:
        path = real_dir(sweep_dir(root, sweep) / "stop") / run
        return read_bytes(path, 4 * KB).decode(errors="replace") or "stop requested"
    except OSError:
        return None


def clear_sweep_stops(root: Path, sweep: str) -> None:
    """A new sweep process starts with no stop requests: an earlier one's are answered."""
    try:
        folder = real_dir(sweep_dir(root, sweep) / "stop")
    except OSError:  # none yet (or a link: never followed)
        return
    for path in folder.iterdir():
        path.unlink(missing_ok=True)  # a link is removed itself, not what it points to


def open_sweep_log(root: Path, sweep: str, run: str) -> BinaryIO:
    """<sweep>/logs/<run>.log opened to append: every attempt at the run adds its part. A link,
    FIFO or device there is refused (UnsafeFile), never written through."""
    logs = real_dir(sweep_dir(root, sweep, create=True) / "logs", create=True)
    return open(logs / f"{run}.log", "ab", opener=lambda path, _flags: open_append(Path(path)))


def read_sweep_log(log: Path, start: int = 0) -> list[str] | None:
    """The lines of a sweep log from byte `start` (one attempt's part; its last LOG_TAIL bytes at
    most); None when unreadable."""
    try:
        data, _, _ = read_tail(log, start)
    except OSError:
        return None
    return data.decode(errors="replace").splitlines()


def discard_run(root: Path, sweep: str, run: str) -> Path:
    """Move a run folder aside to <sweep>/discarded/<run>-<time> (it stopped before its first
    checkpoint, so there is nothing to resume and the sweep starts it again)."""
    folder = real_dir(sweep_dir(root, sweep, create=True) / "discarded", create=True)
    dest = free_name(folder / f"{run}-{time.strftime('%Y%m%d-%H%M%S')}")
    os.replace(run_folder(Path(root) / run), dest)
    return dest


def free_name(dest: Path) -> Path:
    """`dest`, or `dest~2`, `dest~3`...: the first name nothing stands at (a dangling link counts)."""
    base, n = dest.name, 1
    while os.path.lexists(dest):
        n += 1
        dest = dest.with_name(f"{base}~{n}")
    return dest


# ----------------------------------------------------------------------------- reading a run's files


def metrics_bound(epochs: int | None = None) -> int:
    """The most bytes metrics.jsonl of a run planned for `epochs` can hold."""
    return max(1, min(epochs or MAX_EPOCHS, MAX_EPOCHS)) * ROW_BYTES


def _too_big(file: Path, size: int, epochs: int | None) -> UnsafeFile:
    limit = metrics_bound(epochs)
    return UnsafeFile(file, f"{size_text(size)}, more than {epochs or MAX_EPOCHS} epochs' rows can be"
                            f" ({size_text(limit)})", "move it away: damtui did not write it")


def _rows_of(data: bytes) -> tuple[list[EpochRow], int]:
    """The whole epoch rows at the start of `data` and the bytes they take: parsing stops at an
    unterminated line (a writer's torn append) or at a line that is not an epoch row."""
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
    return rows, consumed


def read_metrics(path: Path, offset: int = 0, epochs: int | None = None) -> tuple[list[EpochRow], int]:
    """Rows appended since byte `offset`, and the offset after the last whole line.

    A torn (unterminated or unparsable) last line is left for the next read; reading stops at a
    line that is not an epoch row (scan_metrics names it). A file larger than the rows of
    `epochs` epochs can be (or a link, FIFO, device) is refused with UnsafeFile.
    """
    file = Path(path) / METRICS
    try:
        fd = open_file(file)
    except FileNotFoundError:
        return [], offset
    try:
        size = os.fstat(fd).st_size
        if size - offset > metrics_bound(epochs):
            raise _too_big(file, size, epochs)
        os.lseek(fd, offset, os.SEEK_SET)
        data = _read(fd, metrics_bound(epochs))
    finally:
        os.close(fd)
    rows, consumed = _rows_of(data)
    return rows, offset + consumed


@dataclass(frozen=True)
class MetricsScan:
    """metrics.jsonl as scan_metrics found it: its rows, the offset after them, the first problem
    ('' for none) and the file's inode, so a later scan of a growing file reads only what was
    appended."""

    rows: tuple[EpochRow, ...] = ()
    offset: int = 0
    damage: str = ""
    inode: int | None = None


def scan_metrics(path: Path, epochs: int, labels: int | None = None, since: MetricsScan | None = None) -> MetricsScan:
    """metrics.jsonl checked: damage is '' when the file is what damtui writes for a run planned
    for `epochs` epochs (whole JSON objects with epochs 1, 2, ... one a line, at most `epochs` of
    them, thresholds of at most `labels` values; only the last line may be torn by a crash), else
    the first problem with its line number.

    With `since` (an earlier scan without damage of the same file, which has not shrunk), only
    the bytes after its offset are read and checked: a run being written is followed at the cost
    of its new rows, not of its whole history."""
    file = Path(path) / METRICS
    try:
        fd = open_file(file)
    except FileNotFoundError:
        return MetricsScan()
    except OSError as err:
        return MetricsScan(damage=str(err) if isinstance(err, UnsafeFile) else f"{file}: unreadable ({err.strerror})")
    try:
        st = os.fstat(fd)
        grown = since is not None and not since.damage and since.inode == st.st_ino and st.st_size >= since.offset
        known, start = (since.rows, since.offset) if grown and since is not None else ((), 0)
        if st.st_size - start > metrics_bound(epochs):
            return MetricsScan(damage=str(_too_big(file, st.st_size, epochs)))
        os.lseek(fd, start, os.SEEK_SET)
        data = _read(fd, metrics_bound(epochs))
    finally:
        os.close(fd)
    new, consumed = _rows_of(data)
    rows, offset = known + tuple(new), start + consumed
    scan = MetricsScan(rows, offset, "", st.st_ino)
    rest = data[consumed:]
    if rest:  # where the rows stopped: only a torn last line may be there
        line, n = rest.splitlines(keepends=True)[0], len(rows) + 1
        if line.endswith(b"\n") or len(line) < len(rest):
            try:
                obj = json.loads(line)
            except ValueError:
                return replace(scan, damage=f"{file} line {n}: not a JSON object")
            try:
                EpochRow.from_json(obj)
            except ValueError as err:
                return replace(scan, damage=f"{file} line {n}: {err}")
            return replace(scan, damage=f"{file} line {n}: not a whole line")
    for i, row in enumerate(new, len(known) + 1):
        if row.epoch != i:
            return replace(scan, damage=f"{file} line {i}: epoch {row.epoch} where epoch {i} belongs")
        if labels is not None and len(row.threshold) > max(1, labels):
            return replace(scan, damage=f"{file} line {i}: {len(row.threshold)} thresholds for {labels} labels")
    if len(rows) > epochs:
        return replace(scan, damage=f"{file} has {len(rows)} epoch rows, more than the {epochs} the run planned")
    return scan


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
    for name in (CONFIG, STATUS, METRICS, SUMMARY, NOTES, SCORES):
        try:
            st = os.lstat(Path(path) / name)
            stamp.append((st.st_size, st.st_mtime_ns, st.st_ino))
        except OSError:
            stamp.append(None)
    return tuple(stamp)


SEALED = (METRICS, SCORES, SOURCE_SCORES)  # what an ended run's summary.json was computed from
SEAL_KEY = "sealed"  # summary.json's record of them: {name: [size, mtime_ns] or null when absent}


def seal_of(path: Path) -> dict[str, list[int] | None]:
    """The size and modification time of each file summary.json is computed from, taken when the
    writer writes it (after its last row and scores). While they still match, the summary says what
    a full read of those files would: a list of the runs reads status and summary alone (the way
    make and git trust a file's stat until it changes)."""
    out: dict[str, list[int] | None] = {}
    for name in SEALED:
        try:
            st = os.lstat(Path(path) / name)
        except FileNotFoundError:
            out[name] = None
            continue
        out[name] = [st.st_size, st.st_mtime_ns] if stat.S_ISREG(st.st_mode) else [-1, -1]
    return out


def matches_seal(path: Path, seal: Any) -> bool:
    """True when each sealed file is still a regular file of the recorded size and mtime (or still
    absent); a copy that kept no mtimes, an edit or a resume's append all read False."""
    return isinstance(seal, dict) and set(seal) == set(SEALED) and seal_of(path) == seal


def read_summary(run_dir: Path) -> RunSummary | None:
    """summary.json as a record; None before the run has ended or when it cannot be read."""
    try:
        return RunSummary.from_json(read_json(Path(run_dir) / SUMMARY))
    except (OSError, ValueError, TypeError):
        return None
