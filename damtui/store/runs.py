"""The run store: the only module that reads or writes the runs directory (with run_files.py,
whose functions it re-exports: checkpoints, folder checks, the sweeps' files under .sweeps/).

One folder per run:
  config.json    resolved config + runtime facts (versions, device, source run); written once
  status.json    state, pid, host, heartbeat, epoch; replaced atomically
  metrics.jsonl  one JSON line per finished epoch, appended whole and fsync'd
  best.pt / last.pt   checkpoints, replaced atomically
  summary.json   honest summary, written when the run ends
  scores.npz     val/test scores of best.pt's epoch, written right after it (run_files.Scores)
  progress.json  where the writer is inside its epoch (damtui.store.progress), replaced every second
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
from damtui.records import EpochRow, RunSummary, Selected, best_index
from damtui.store.notes import RunNotes, load_notes
from damtui.store.files import (  # noqa: F401  (the run store's API includes these)
    BEST, CANCELLED, CHECKPOINT_FORMAT, CONFIG, CRASHED, DAMAGED, ERROR_LOG, FAILED, FINISHED, LAST, LOCK,
    LOG, METRICS, NOFOLLOW, NOTES, RUN_FILES, RUNNING, STALE_HEARTBEAT_S, STATUS, SUMMARY, SWEEP_PLAN, SWEEPS_DIR, RunLock,
    atomic_write_json, check_run_name, folder_stamp, read_metrics, trained_seconds, discard_run, effective_status, folder_state, has_checkpoint, is_run_dir,
    json_safe, load_checkpoint, load_sweep_plans, metrics_damage, open_sweep_log, pid_alive, process_start,
    read_json, read_sweep_log, refuse_links, sweep_dir, write_sweep_plan,
    clear_sweep_stops, request_sweep_stop, sweep_stop_requested, lock_sweep,
    CONFIG_FIELDS, STATUS_FIELDS, fields_damage, PROGRESS, read_progress,
    SCORES, SOURCE_SCORES, Scores, load_scores, read_summary, write_scores,
)
from damtui.store.launch import LAUNCH_DIR
from damtui.store.progress import WRITE_EVERY_S, Progress

HEARTBEAT_EVERY_S = 10.0


def runs_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """--runs-dir, else DAMTUI_RUNS, else ./runs."""
    return Path(path or os.environ.get("DAMTUI_RUNS") or "runs")


def existing_runs_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The runs dir a listing reads: one that is not there is an error, as a missing data root is
    (an empty listing of a mistyped path reads like 'no runs yet')."""
    root = runs_dir(path)
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "does not exist"
        raise DamtuiError(f"runs dir {root} {what}; give the folder your runs are in with --runs-dir"
                          " (or $DAMTUI_RUNS), or start a run: `damtui train synthetic2d`")
    return root


def data_root_of(run: Path, given: str | os.PathLike[str] | None) -> str | os.PathLike[str] | None:
    """The data root for working on a saved run: `given` (--data-root), else the folder the run
    was trained from (its runtime's data_root) while it still holds the dataset's file, else None
    (the usual $DAMTUI_DATA / medmnist default)."""
    if given:
        return given
    from damtui.data import datasets

    try:
        saved = read_json(Path(run) / CONFIG)
        recorded, flag = saved["runtime"]["data_root"], saved["config"]["dataset"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if isinstance(recorded, str) and datasets.dataset_path(str(flag), Path(recorded)).is_file():
        return recorded
    return None


# ----------------------------------------------------------------------------- writing a run


def new_run_name(dataset: str, stage: str) -> str:
    """A new run's folder name: time-dataset-stage-random, unique and readable (the app picks one
    before it starts the training process, so it knows the folder to follow)."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{dataset}-{stage}-{secrets.token_hex(3)}"


class RunWriter:
    """Writes one run folder, holding its RunLock; used by the engine only."""

    def __init__(self, path: Path, lock: RunLock | None = None) -> None:
        self.path = Path(path)
        self.lock = lock
        self.run_id = self.path.name
        self._status: dict[str, Any] = {}
        self._last_beat = self._last_progress = 0.0
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
            for _ in range(100):
                name = new_run_name(config["dataset"], config["stage"])
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
    def reopen(cls, path: Path, epochs: int, done: int, lock: RunLock | None = None,
               config: dict[str, Any] | None = None) -> RunWriter:
        """Continue a run folder (resume) under its lock (taken here unless the caller holds it):
        keep metrics of the `done` finished epochs only. `config` is what the run now trains with:
        when it differs from the saved one (an extension: more epochs, the schedule they bring) it
        replaces it in config.json, and the runtime's `extensions` records the change."""
        lock = lock or RunLock.acquire(path)
        refuse_links(path)
        writer = cls(path, lock)
        if config is not None:
            _record_extension(path, config, done)
        for tmp in path.glob(".*.tmp"):  # left by a writer killed mid-write; the folder is ours now
            pid = tmp.name.rsplit(".", 2)[-2]
            if not (pid.isdigit() and pid_alive(int(pid))):
                try:
                    tmp.unlink()
                except OSError:
                    pass
        rows, _ = read_metrics(path)
        rows = [r for r in rows if r.epoch <= done]
        text = "".join(json.dumps(json_safe(r.to_json())) + "\n" for r in rows)
        atomic_write_bytes(path / METRICS, text.encode())
        old = {}
        try:
            old = read_json(path / STATUS)
        except (OSError, ValueError):
            pass
        now = time.time()
        earlier = trained_seconds(old) if isinstance(old, dict) else 0.0
        started = old.get("started", now) if isinstance(old, dict) else now
        writer._status = {"started": started, "resumed": now, "earlier_s": earlier}
        writer.write_status(RUNNING, epoch=done, epochs=epochs)
        return writer

    def write_status(self, state: str, epoch: int, epochs: int, message: str = "") -> None:
        now = time.time()
        self._status = {
            "state": state,
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "host": socket.gethostname(),
            "started": self._status.get("started", now),
            "resumed": self._status.get("resumed", now),  # this writer's start
            "earlier_s": self._status.get("earlier_s", 0.0),  # time trained before it
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

    def write_progress(self, progress: Progress, force: bool = False) -> None:
        """progress.json for followers in other processes, at most every WRITE_EVERY_S unless `force`."""
        if force or time.time() - self._last_progress >= WRITE_EVERY_S:
            self._last_progress = time.time()
            try:
                atomic_write_json(self.path / PROGRESS, progress.to_json())
            except DamtuiError:
                pass  # best effort: a full disk fails the run at its next metrics row, not here

    def append_metrics(self, row: EpochRow) -> None:
        line = (json.dumps(json_safe(row.to_json())) + "\n").encode()
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

    def write_summary(self, summary: RunSummary) -> None:
        atomic_write_json(self.path / SUMMARY, json_safe(summary.to_json()))

    def write_error(self, text: str) -> None:
        """Keep the traceback of an unexpected failure beside the run; best effort."""
        try:
            atomic_write_bytes(self.path / ERROR_LOG, text.encode())
        except DamtuiError:
            pass


def _record_extension(path: Path, config: dict[str, Any], done: int) -> None:
    """config.json with the config a resumed run continues with, and what changed in it."""
    saved = read_json(path / CONFIG)
    old = saved.get("config") or {}
    if old == config:
        return
    changed = {k: [old.get(k), v] for k, v in config.items() if old.get(k) != v}
    runtime = dict(saved.get("runtime") or {})
    runtime["extensions"] = [*(runtime.get("extensions") or []),
                             {"at": time.time(), "after_epoch": done, "changed": changed}]
    atomic_write_json(path / CONFIG, {**saved, "config": config, "runtime": runtime})


# ----------------------------------------------------------------------------- reading runs


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
    state = folder_state(path)
    if state == "run":
        raise DamtuiError(f"run {path.name} already exists in {path.parent}; continue it with --resume {path.name}")
    if state == "foreign":
        raise DamtuiError(f"{path} exists and is not a damtui run; choose another name")


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
    best: Selected | None = None  # this stage's best epoch on validation
    answer: Selected | None = None  # a fine-tune's two-stage answer, from summary.json
    seed: int = 0
    from_run: str | None = None
    message: str = ""
    pid: int | None = None
    sweep: str | None = None  # set for runs started by `damtui sweep` (from the runtime)
    sweep_config: str | None = None  # the sweep's configuration key, shared by its seeds
    trained_s: float | None = None  # time spent training (runs.trained_seconds)
    notes: RunNotes = field(default_factory=RunNotes)  # the user's name, notes and tags (notes.json)
    config: dict[str, Any] = field(default_factory=dict, repr=False)  # the saved config (seed groups)

    @property
    def duration_s(self) -> float:
        if self.trained_s is not None:
            return self.trained_s
        return max(0.0, self.updated - self.started)

    @property
    def result(self) -> Selected | None:
        """What the run reports: the two-stage answer once written, else its own best epoch."""
        return self.answer or self.best


@dataclass
class RunRecord:
    info: RunInfo
    config: dict[str, Any]
    runtime: dict[str, Any]
    metrics: list[EpochRow] = field(default_factory=list)
    metrics_offset: int = 0


class _Damage(ValueError):
    """A run file of the wrong shape, with the file and the field in the message."""


def _info(path: Path, cfg: dict[str, Any], rows: list[EpochRow]) -> RunInfo:
    """The run's list row; a folder whose files are not what damtui writes lists as damaged, with
    the reason, instead of breaking the listing of every other run."""
    damage = metrics_damage(path)
    if not damage:
        try:
            return _read_info(path, cfg, rows)
        except _Damage as err:
            damage = f"{path}: {err}"
        except (TypeError, ValueError, AttributeError, KeyError) as err:
            damage = f"{path}: a file has unexpected contents ({type(err).__name__}: {err})"
    config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    return RunInfo(run_id=path.name, path=path, dataset=str(config.get("dataset", "?")),
                   stage=str(config.get("stage", "?")), preset=str(config.get("preset", "")), status=DAMAGED,
                   epochs_done=0, epochs_planned=0, started=0.0, updated=0.0, message=damage,
                   notes=load_notes(path))


def _read_info(path: Path, cfg: dict[str, Any], rows: list[EpochRow]) -> RunInfo:
    config, runtime = cfg["config"], cfg.get("runtime", {})
    if not isinstance(config, dict) or not isinstance(runtime, dict):
        raise _Damage(f"{CONFIG} must hold objects 'config' and 'runtime'")
    try:
        status = read_json(path / STATUS)
    except (OSError, ValueError):
        status = {}
    if not isinstance(status, dict):
        raise _Damage(f"{STATUS} is not a JSON object")
    wrong = fields_damage(STATUS, status, STATUS_FIELDS) or fields_damage(CONFIG, config, CONFIG_FIELDS)
    if wrong:
        raise _Damage(wrong)
    i = best_index(rows)
    stage = str(config.get("stage", "?"))
    best = Selected.of(rows[i], stage) if i is not None else None
    try:  # an ended run's summary adds the intervals and, for a fine-tune, the two-stage answer
        summary: RunSummary | None = RunSummary.from_json(read_json(path / SUMMARY))
    except (OSError, ValueError):
        summary = None  # not ended yet, being replaced or damaged: the rows still say the stage's best
    if summary is not None and summary.best is not None and best is not None and summary.best.epoch == best.epoch:
        best = summary.best
    answer = summary.answer if summary is not None and stage == "finetune" else None
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
        best=best,
        answer=answer,
        trained_s=trained_seconds(status) if "updated" in status else None,
        seed=int(config.get("seed", 0)),
        from_run=runtime.get("from_run"),
        message=str(status.get("message", "")),
        pid=None if status.get("pid") is None else int(status["pid"]),
        sweep=runtime.get("sweep"),
        sweep_config=runtime.get("sweep_config"),
        notes=load_notes(path),
        config=config,
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
        if entry.name.startswith(".") or _being_created(entry):
            continue
        try:
            runs.append(load_run(entry).info)
        except DamtuiError:
            ignored.append(entry.name)
    runs.sort(key=lambda r: (r.started, r.run_id), reverse=True)
    return runs, ignored


def _being_created(path: Path) -> bool:
    """A run the app started whose process has not written it yet (it is loading the data)."""
    return (path / LAUNCH_DIR).is_dir() and folder_state(path) == "empty"


def summary_of(record: RunRecord) -> RunSummary:
    """A run's summary from its rows (what summary.json holds once the run has ended)."""
    i = record.info
    return RunSummary.of(record.metrics, run_id=i.run_id, status=i.status, dataset=i.dataset, stage=i.stage,
                         preset=i.preset)


LATEST = "latest"


def resolve_run(root: Path, ref: str, dataset: str | None = None, stage: str | None = None,
                finished: bool = False) -> Path:
    """The one resolver of run references, for every command: a path, a folder name, a unique part
    of one (its short id), a display name, or `latest`: the newest run, among those of `dataset`
    and `stage` that are `finished` when the caller needs that (`--from latest`)."""
    root = Path(root)
    if ref == LATEST:
        return _latest(root, dataset, stage, finished)
    direct = Path(ref)
    for cand in (direct, root / ref):
        if cand.is_dir():
            if not is_run_dir(cand):
                raise DamtuiError(f"{cand} is not a damtui run (no {CONFIG}); `damtui runs` lists runs")
            return cand
    names = [p.name for p in root.iterdir() if is_run_dir(p)] if root.is_dir() else []
    hits = [n for n in names if ref in n] or [n for n in names if load_notes(root / n).name == ref]
    if len(hits) == 1:
        return root / hits[0]
    if not hits:
        raise DamtuiError(f"no run {ref!r} in {root}; `damtui runs` lists runs")
    raise DamtuiError(f"{ref!r} matches {len(hits)} runs in {root}; give more of the name")


def _latest(root: Path, dataset: str | None, stage: str | None, finished: bool) -> Path:
    infos, _ = list_runs(root)
    for r in infos:  # newest first
        if (dataset in (None, r.dataset) and stage in (None, r.stage)
                and (not finished or r.status == FINISHED)):
            return r.path
    what = " ".join(w for w in ("finished" if finished else "", dataset or "", stage or "", "run") if w)
    raise DamtuiError(f"'latest': no {what} in {root}; `damtui runs` lists runs")


def write_text_file(path: Path, text: str) -> None:
    """Exports (CSV, Markdown) go through here so every file write lives in this module."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode("utf-8"))
