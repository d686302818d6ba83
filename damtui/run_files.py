"""The files of a run folder: their names, JSON written atomically, the one-writer lock, and the
checks that tell a folder damtui wrote from a damaged or tampered one. Used by damtui.runs, the
run store; nothing else touches these files."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from damtui.atomic import atomic_write_bytes
from damtui.errors import DamtuiError

CONFIG, STATUS, METRICS, SUMMARY = "config.json", "status.json", "metrics.jsonl", "summary.json"
BEST, LAST, ERROR_LOG = "best.pt", "last.pt", "error.log"
CHECKPOINT_FORMAT = "damtui-checkpoint-v1"
RUNNING, FINISHED, FAILED, CANCELLED, CRASHED = "running", "finished", "failed", "cancelled", "crashed"
DAMAGED = "damaged"  # a file of the run is not what damtui writes: listed with the reason, never resumed
LOCK = ".writer.lock"  # flock'ed by the one process writing the run (see RunLock)
STALE_HEARTBEAT_S = 600.0  # a run on another host with no heartbeat for this long is crashed
RUN_FILES = (CONFIG, STATUS, METRICS, SUMMARY, BEST, LAST, ERROR_LOG)
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
        import fcntl

        try:
            fd = os.open(Path(run_dir) / LOCK, os.O_RDWR | os.O_CREAT | NOFOLLOW, 0o644)
        except OSError as err:
            raise DamtuiError(f"cannot lock {run_dir} ({err.strerror}); is it a damtui run folder you may write?") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DamtuiError(f"{Path(run_dir).name} is being written by another damtui process (pid {holder});"
                              " wait for it to end, or follow it in `damtui`") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        return cls(fd)

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


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
        if not isinstance(row, dict) or type(row.get("epoch")) is not int:
            return f"{file} line {n}: not an epoch row (no integer 'epoch')"
        if row["epoch"] != n:
            return f"{file} line {n}: epoch {row['epoch']} where epoch {n} belongs"
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
