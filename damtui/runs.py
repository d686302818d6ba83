"""The run store: the only module that reads or writes the runs directory.

One folder per run:
  config.json    resolved config + runtime facts (versions, device, source run); written once
  status.json    state, pid, host, heartbeat, epoch; replaced atomically
  metrics.jsonl  one JSON line per finished epoch, appended whole and fsync'd
  best.pt / last.pt   checkpoints, replaced atomically
  summary.json   honest summary, written when the run ends
Every write leaves either the old or the new file after a SIGKILL at any instant; readers skip a
torn last line, so a folder another process is writing can be followed safely.
"""

from __future__ import annotations

import io
import json
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from damtui.atomic import atomic_write_bytes
from damtui.errors import DamtuiError
from damtui.metrics import summarize

CONFIG, STATUS, METRICS, SUMMARY = "config.json", "status.json", "metrics.jsonl", "summary.json"
BEST, LAST, ERROR_LOG = "best.pt", "last.pt", "error.log"
CHECKPOINT_FORMAT = "damtui-checkpoint-v1"
RUNNING, FINISHED, FAILED, CANCELLED, CRASHED = "running", "finished", "failed", "cancelled", "crashed"
DAMAGED = "damaged"  # a file of the run is not what damtui writes: listed with the reason, never resumed
LOCK = ".writer.lock"  # flock'ed by the one process writing the run (see RunLock)
RUN_FILES = (CONFIG, STATUS, METRICS, SUMMARY, BEST, LAST, ERROR_LOG)
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
STALE_HEARTBEAT_S = 600.0  # a run on another host with no heartbeat for this long is crashed
HEARTBEAT_EVERY_S = 10.0


def runs_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """--runs-dir, else DAMTUI_RUNS, else ./runs."""
    return Path(path or os.environ.get("DAMTUI_RUNS") or "runs")


# ----------------------------------------------------------------------------- atomic writes


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, default=_json_default) + "\n").encode())


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """NaN/inf are not JSON: store them as null."""
    if isinstance(obj, float) and (obj != obj or obj in (float("inf"), float("-inf"))):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


# ----------------------------------------------------------------------------- writing a run


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _proc_start(pid: int) -> str | None:
    """The process's start time from /proc (Linux), to tell a live run from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[1].split()[19]  # field 22, starttime
    except (OSError, IndexError):
        return None


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


class RunWriter:
    """Writes one run folder, holding its RunLock; used by the engine only."""

    def __init__(self, path: Path, lock: RunLock | None = None) -> None:
        self.path = Path(path)
        self.lock = lock
        self.run_id = self.path.name
        self._status: dict[str, Any] = {}
        self._last_beat = 0.0
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    @classmethod
    def create(cls, root: Path, config: dict[str, Any], runtime: dict[str, Any],
               name: str | None = None) -> RunWriter:
        """Make a new run folder: a readable unique name, or exactly `name` (sweeps use fixed
        names so a retried job finds its run instead of starting a duplicate)."""
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DamtuiError(f"cannot create runs dir {root} ({err.strerror}); choose --runs-dir") from None
        if name is not None:
            check_run_name(name)
            lock = _claim_named(root / name)
        else:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            for _ in range(100):
                name = f"{stamp}-{config['dataset']}-{config['stage']}-{secrets.token_hex(3)}"
                try:
                    (root / name).mkdir()  # exclusive: two processes never share a folder
                    lock = RunLock.acquire(root / name)
                    break
                except FileExistsError:
                    continue
                except OSError as err:
                    raise DamtuiError(f"cannot create a run in {root} ({err.strerror}); choose --runs-dir") from None
        writer = cls(root / name, lock)
        atomic_write_json(writer.path / CONFIG, {"config": config, "runtime": runtime})
        writer.write_status(RUNNING, epoch=0, epochs=config["epochs"])
        return writer

    @classmethod
    def reopen(cls, path: Path, epochs: int, done: int, lock: RunLock | None = None) -> RunWriter:
        """Continue a run folder (resume) under its lock (taken here unless the caller holds it):
        keep metrics of the `done` finished epochs only."""
        lock = lock or RunLock.acquire(path)
        refuse_links(path)
        writer = cls(path, lock)
        for tmp in path.glob(".*.tmp"):  # left by a writer killed mid-write; the folder is ours now
            pid = tmp.name.rsplit(".", 2)[-2]
            if not (pid.isdigit() and _pid_alive(int(pid))):
                try:
                    tmp.unlink()
                except OSError:
                    pass
        rows, _ = read_metrics(path)
        rows = [r for r in rows if r.get("epoch", 0) <= done]
        text = "".join(json.dumps(_clean(r)) + "\n" for r in rows)
        atomic_write_bytes(path / METRICS, text.encode())
        old = {}
        try:
            old = read_json(path / STATUS)
        except (OSError, ValueError):
            pass
        writer._status = {"started": old.get("started", time.time())}
        writer.write_status(RUNNING, epoch=done, epochs=epochs)
        return writer

    def write_status(self, state: str, epoch: int, epochs: int, message: str = "") -> None:
        now = time.time()
        self._status = {
            "state": state,
            "pid": os.getpid(),
            "pid_start": _proc_start(os.getpid()),
            "host": socket.gethostname(),
            "started": self._status.get("started", now),
            "updated": now,
            "epoch": epoch,
            "epochs": epochs,
            "message": message,
        }
        atomic_write_json(self.path / STATUS, self._status)
        self._last_beat = now

    def heartbeat(self) -> None:
        """Refresh `updated` at most every HEARTBEAT_EVERY_S so followers know the run is alive."""
        if time.time() - self._last_beat >= HEARTBEAT_EVERY_S and self._status:
            s = self._status
            self.write_status(s["state"], s["epoch"], s["epochs"], s["message"])

    def append_metrics(self, row: dict[str, Any]) -> None:
        line = (json.dumps(_clean(row)) + "\n").encode()
        try:
            fd = os.open(self.path / METRICS, os.O_WRONLY | os.O_APPEND | os.O_CREAT | NOFOLLOW, 0o644)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as err:
            raise DamtuiError(
                f"could not append to {self.path / METRICS} ({err.strerror}); free disk space,"
                " then `damtui train --resume`"
            ) from None

    def save_checkpoint(self, name: str, payload: dict[str, Any],
                        on_done: Callable[[Path], None] | None = None) -> None:
        """Queue an atomic checkpoint write on a background thread.

        A 3D ResNet-18 checkpoint with PESG state is about 0.5 GB; writing it in the training
        thread would cost as much as a GPU epoch. The payload must already be a CPU copy. At most
        two writes wait; `flush()` waits for all and re-raises a failed write's error.
        """
        if self._queue is None:
            self._queue = queue.Queue(maxsize=2)
            self._thread = threading.Thread(target=self._write_loop, name="damtui-checkpoints", daemon=True)
            self._thread.start()
        self._raise_pending_error()
        self._queue.put((name, payload, on_done))

    def _write_loop(self) -> None:
        import torch

        assert self._queue is not None
        while True:
            item = self._queue.get()
            if item is None:  # flush(): everything is written, the thread ends
                self._queue.task_done()
                return
            name, payload, on_done = item
            try:
                if self._error is None:
                    buf = io.BytesIO()
                    torch.save({"format": CHECKPOINT_FORMAT, **payload}, buf)
                    atomic_write_bytes(self.path / name, buf.getvalue())
                    if on_done is not None:
                        on_done(self.path / name)
            except BaseException as err:  # surfaced in the training thread by flush()
                self._error = err
            finally:
                self._queue.task_done()

    def _raise_pending_error(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def flush(self) -> None:
        """Wait until every queued checkpoint is on disk and let the writer thread end (a later
        save starts a new one), so a long TUI session does not collect idle threads."""
        if self._queue is not None and self._thread is not None:
            self._queue.join()
            self._queue.put(None)
            self._thread.join()
            self._queue, self._thread = None, None
        self._raise_pending_error()

    def close(self) -> None:
        """The run has ended: let another process write it (an extension, a retry)."""
        if self.lock is not None:
            self.lock.release()

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / SUMMARY, _clean(summary))

    def write_error(self, text: str) -> None:
        """Keep the traceback of an unexpected failure beside the run; best effort."""
        try:
            atomic_write_bytes(self.path / ERROR_LOG, text.encode())
        except DamtuiError:
            pass


# ----------------------------------------------------------------------------- reading runs


def check_run_name(name: str) -> None:
    """A run name is one plain, printable folder name (it is typed in shells and shown in lists)."""
    bad = (not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name
           or os.sep in name or not name.isprintable() or len(name) > 200)
    if bad:
        raise DamtuiError(f"run name {name!r} is not a plain folder name: use letters, digits, '-', '_' and '.'")


def _claim_named(path: Path) -> RunLock:
    """Create `path` exclusively and lock it; an empty folder left by a creation that died is
    taken over."""
    try:
        path.mkdir()
        return RunLock.acquire(path)
    except FileExistsError:
        pass
    except OSError as err:
        raise DamtuiError(f"cannot create run {path} ({err.strerror}); choose --runs-dir") from None
    lock = RunLock.acquire(path)
    try:
        _check_takeover(path)
    except DamtuiError:
        lock.release()
        raise
    return lock


def _check_takeover(path: Path) -> None:
    if is_run_dir(path):
        raise DamtuiError(f"run {path.name} already exists in {path.parent}; continue it with --resume {path.name}")
    if any(not p.name.startswith(".") for p in path.iterdir()):
        raise DamtuiError(f"{path} exists and is not a damtui run; choose another name")


def read_metrics(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Rows appended since byte `offset`, and the offset after the last whole line.

    A torn (unterminated or unparsable) last line is left for the next read.
    """
    try:
        with open(Path(path) / METRICS, "rb") as fh:
            fh.seek(offset)
            data = fh.read()
    except FileNotFoundError:
        return [], offset
    rows: list[dict[str, Any]] = []
    consumed = 0
    for line in data.splitlines(keepends=True):
        if not line.endswith(b"\n"):
            break
        try:
            rows.append(json.loads(line))
        except ValueError:
            break
        consumed += len(line)
    return rows, offset + consumed


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


@dataclass
class RunInfo:
    """One row of the runs list; derived from the files, never stored."""

    run_id: str
    path: Path
    dataset: str
    stage: str
    preset: str
    status: str
    epochs_done: int
    epochs_planned: int
    started: float
    updated: float
    best_epoch: int | None = None
    best_val_auc: float | None = None
    test_auc: float | None = None
    test_acc: float | None = None
    test_acc_thr: float | None = None
    seed: int = 0
    from_run: str | None = None
    message: str = ""
    pid: int | None = None
    sweep: str | None = None  # set for runs started by `damtui sweep` (from the runtime)
    sweep_config: str | None = None  # the sweep's configuration key, shared by its seeds

    @property
    def duration_s(self) -> float:
        return max(0.0, self.updated - self.started)


@dataclass
class RunRecord:
    info: RunInfo
    config: dict[str, Any]
    runtime: dict[str, Any]
    metrics: list[dict[str, Any]] = field(default_factory=list)
    metrics_offset: int = 0


def effective_status(status: dict[str, Any]) -> str:
    """The stored state, except a 'running' run whose process is gone is 'crashed'."""
    state = status.get("state", CRASHED)
    if state != RUNNING:
        return state
    if status.get("host") == socket.gethostname():
        pid = int(status.get("pid", -1))  # ValueError for a damaged status: the caller lists it damaged
        if not _pid_alive(pid):
            return CRASHED
        started, now = status.get("pid_start"), _proc_start(pid)
        return CRASHED if started and now and started != now else RUNNING  # a reused pid is not the run
    return RUNNING if time.time() - status.get("updated", 0) < STALE_HEARTBEAT_S else CRASHED


def is_run_dir(path: Path) -> bool:
    return (Path(path) / CONFIG).is_file()


def _info(path: Path, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> RunInfo:
    """The run's list row; a folder whose files are not what damtui writes lists as damaged, with
    the reason, instead of breaking the listing of every other run."""
    damage = metrics_damage(path)
    if not damage:
        try:
            return _read_info(path, cfg, rows)
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            damage = f"{path}: a file has unexpected contents ({type(err).__name__}: {err})"
    config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    return RunInfo(run_id=path.name, path=path, dataset=str(config.get("dataset", "?")),
                   stage=str(config.get("stage", "?")), preset=str(config.get("preset", "")), status=DAMAGED,
                   epochs_done=0, epochs_planned=0, started=0.0, updated=0.0, message=damage)


def _read_info(path: Path, cfg: dict[str, Any], rows: list[dict[str, Any]]) -> RunInfo:
    config, runtime = cfg["config"], cfg.get("runtime", {})
    if not isinstance(config, dict) or not isinstance(runtime, dict):
        raise TypeError(f"{CONFIG} must hold objects 'config' and 'runtime'")
    try:
        status = read_json(path / STATUS)
    except (OSError, ValueError):
        status = {}
    if not isinstance(status, dict):
        raise TypeError(f"{STATUS} is not a JSON object")
    summary = summarize(rows)
    return RunInfo(
        run_id=path.name,
        path=path,
        dataset=str(config.get("dataset", "?")),
        stage=str(config.get("stage", "?")),
        preset=str(config.get("preset", "")),
        status=effective_status(status),
        epochs_done=len(rows),
        epochs_planned=int(status.get("epochs", config.get("epochs", 0))),
        started=float(status.get("started", 0.0)),
        updated=float(status.get("updated", 0.0)),
        best_epoch=summary.get("best_epoch"),
        best_val_auc=summary.get("best_val_auc"),
        test_auc=summary.get("best_test_auc"),
        test_acc=summary.get("best_test_acc"),
        test_acc_thr=summary.get("best_test_acc_thr"),
        seed=int(config.get("seed", 0)),
        from_run=runtime.get("from_run"),
        message=str(status.get("message", "")),
        pid=None if status.get("pid") is None else int(status["pid"]),
        sweep=runtime.get("sweep"),
        sweep_config=runtime.get("sweep_config"),
    )


def load_run(path: Path) -> RunRecord:
    path = Path(path)
    try:
        cfg = read_json(path / CONFIG)
    except (OSError, ValueError):
        raise DamtuiError(f"{path} is not a damtui run (no readable {CONFIG})") from None
    if not isinstance(cfg, dict) or "config" not in cfg:
        raise DamtuiError(f"{path} is not a damtui run ({CONFIG} has no 'config')")
    rows, offset = read_metrics(path)
    info = _info(path, cfg, rows)
    if info.status == DAMAGED:  # what a damaged folder holds is not trusted further
        config, runtime = cfg["config"], cfg.get("runtime")
        return RunRecord(info, config if isinstance(config, dict) else {},
                         runtime if isinstance(runtime, dict) else {}, [], offset)
    return RunRecord(info, cfg["config"], cfg.get("runtime", {}), rows, offset)


def list_runs(root: Path) -> tuple[list[RunInfo], list[str]]:
    """All runs under `root`, newest first, and the names of entries that are not runs."""
    root = Path(root)
    runs: list[RunInfo] = []
    ignored: list[str] = []
    if not root.is_dir():
        return runs, ignored
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        try:
            runs.append(load_run(entry).info)
        except DamtuiError:
            ignored.append(entry.name)
    runs.sort(key=lambda r: (r.started, r.run_id), reverse=True)
    return runs, ignored


def resolve_run(root: Path, ref: str) -> Path:
    """A run from a path, a folder name, or a unique part of one (its short id)."""
    direct = Path(ref)
    for cand in (direct, Path(root) / ref):
        if cand.is_dir():
            if not is_run_dir(cand):
                raise DamtuiError(f"{cand} is not a damtui run (no {CONFIG}); `damtui runs` lists runs")
            return cand
    names = [p.name for p in Path(root).iterdir() if is_run_dir(p)] if Path(root).is_dir() else []
    hits = [n for n in names if ref in n]
    if len(hits) == 1:
        return Path(root) / hits[0]
    if not hits:
        raise DamtuiError(f"no run {ref!r} in {root}; `damtui runs` lists runs")
    raise DamtuiError(f"{ref!r} matches {len(hits)} runs in {root}; give more of the name")


def latest_run(root: Path, dataset: str, stage: str = "pretrain") -> Path:
    runs, _ = list_runs(root)
    for r in runs:
        if r.dataset == dataset and r.stage == stage and r.status == FINISHED:
            return r.path
    raise DamtuiError(f"no finished {stage} run of {dataset} in {root}; train one first")


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


def write_text_file(path: Path, text: str) -> None:
    """Exports (CSV, Markdown) go through here so every file write lives in this module."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
