"""The run store: the only module that reads or writes the runs directory (with run_files.py,
whose functions it re-exports: checkpoints, folder checks, the sweeps' files under .sweeps/).

One folder per run:
  config.json    resolved config + runtime facts (versions, device, source run); written once
  status.json    state, pid, host, heartbeat, epoch; replaced atomically
  metrics.jsonl  one JSON line per finished epoch, appended whole and fsync'd
  best.pt / last.pt   checkpoints, replaced atomically
  summary.json   honest summary, written when the run ends, sealed with the size and mtime of the
                 files it was computed from (a list trusts it while they match: files.seal_of)
  scores.npz     val/test scores of best.pt's epoch, written right after it (store.scores)
  progress.json  where the writer is inside its epoch (damtui.store.progress), replaced every second
Every write leaves either the old or the new file after a SIGKILL at any instant; readers skip a
torn last line, so a folder another process is writing can be followed safely.
"""

from __future__ import annotations

import io
import json
import os
import queue
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from damtui.atomic import atomic_write_bytes, write_output
from damtui.errors import DamtuiError
from damtui.records import EpochRow, RunSummary, Selected, best_index
from damtui.store.notes import NotesDamage, RunNotes, load_notes, read_notes
from damtui.store.files import (  # noqa: F401  (the run store's API includes these)
    BEST, CANCELLED, CHECKPOINT_FORMAT, CONFIG, CRASHED, DAMAGED, ERROR_LOG, FAILED, FINISHED, LAST, LOCK,
    LOG, MAX_EPOCHS, METRICS, NOFOLLOW, NOTES, RUN_FILES, RUNNING, STALE_HEARTBEAT_S, STATUS, SUMMARY, SWEEP_PLAN,
    SWEEPS_DIR, RunLock, UnsafeFile,
    atomic_write_json, check_run_name, folder_stamp, read_metrics, trained_seconds, discard_run, effective_status,
    folder_state, has_checkpoint, is_run_dir, json_safe, load_checkpoint, load_sweep_plans, open_append,
    open_file, open_sweep_log, pid_alive, process_start, read_json, read_sweep_log, real_dir, refuse_links,
    run_folder, scan_metrics, sweep_dir, write_sweep_plan,
    clear_sweep_stops, request_sweep_stop, sweep_stop_requested, lock_sweep,
    CONFIG_FIELDS, STATUS_FIELDS, fields_damage, PROGRESS, read_progress,
    SCORES, SOURCE_SCORES, read_summary, SEAL_KEY, seal_of, matches_seal, MetricsScan,
)
from damtui.store.launch import LAUNCH_DIR
from damtui.store.scores import Expected, Scores, ScoresDamage, load_scores, write_scores  # noqa: F401
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


def short_id(run_id: str) -> str:
    """The random suffix of a default run name ('...-a1b2c3' -> 'a1b2c3'); other names whole."""
    m = re.match(r"^\d{8}-\d{6}-.*-([0-9a-f]{6})$", run_id)
    return m.group(1) if m else run_id


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
        lock.commit()
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
        lock.commit()
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
        rows, _ = read_metrics(path, epochs=epochs)
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
            fd = open_append(self.path / METRICS)
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
        """summary.json with the seal of the files it was computed from (files.seal_of): call
        after flush(), so the last row and scores are on disk."""
        atomic_write_json(self.path / SUMMARY, json_safe({**summary.to_json(), SEAL_KEY: seal_of(self.path)}))

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
    run_folder(path)  # a link planted at the name would make the run's files land where it points
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
    # status.json as read: a listed running run is checked for life again from it (list_runs)
    status_json: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
    # not in repr: Textual's @work describes a worker by the repr of its arguments, and a record
    # of 9,000 rows took 0.13 s to describe on each read of a followed run (benchmarks/big_runs.py)
    metrics: list[EpochRow] = field(default_factory=list, repr=False)
    metrics_offset: int = 0
    scan: MetricsScan = field(default_factory=MetricsScan, repr=False, compare=False)  # for load_run(since=)


class _Damage(ValueError):
    """A run file of the wrong shape, with the file and the field in the message."""


def _damaged(path: Path, cfg: dict[str, Any], damage: str) -> RunInfo:
    """The list row of a folder whose files are not what damtui writes: damaged, with the reason,
    instead of breaking the listing of every other run."""
    config = cfg.get("config") if isinstance(cfg.get("config"), dict) else {}
    return RunInfo(run_id=path.name, path=path, dataset=str(config.get("dataset", "?")),
                   stage=str(config.get("stage", "?")), preset=str(config.get("preset", "")), status=DAMAGED,
                   epochs_done=0, epochs_planned=0, started=0.0, updated=0.0, message=damage,
                   notes=load_notes(path))


def _optional_json(path: Path) -> Any:
    """A file the run may not have yet: None when absent or being replaced (a torn read of a
    file written atomically is a reader's race, not damage); _Damage for a link, FIFO, device or
    a file larger than its bound."""
    try:
        return read_json(path)
    except UnsafeFile as err:
        raise _Damage(str(err)) from None
    except (OSError, ValueError):
        return None


def _planned(config: dict[str, Any], status: dict[str, Any]) -> int:
    """The epochs the run is planned for: its config's, or an extension's (status.json)."""
    known = [e for e in (config.get("epochs"), status.get("epochs")) if type(e) is int]
    planned = max(known, default=MAX_EPOCHS)
    if not 1 <= planned <= MAX_EPOCHS:
        raise _Damage(f"epochs {planned} is not in 1..{MAX_EPOCHS}")
    return planned


def _labels(config: dict[str, Any]) -> int | None:
    from damtui.data import datasets

    try:
        return datasets.spec(str(config.get("dataset"))).n_labels
    except DamtuiError:
        return None  # a dataset this version does not know: its rows are not checked against it


def _read(path: Path, cfg: dict[str, Any], since: MetricsScan | None = None,
          sealed: bool = False) -> tuple[RunInfo, MetricsScan]:
    """The run's list row and its metrics as scanned, every file checked (a damaged folder's row
    says why, with no rows). `since`: an earlier scan of a run being written (scan_metrics).
    `sealed`: an ended run whose summary.json still matches its files is not scanned (no rows)."""
    try:
        h = _header(path, cfg)
        raw = _optional_json(path / SUMMARY)  # an ended run's: the intervals and a fine-tune's two-stage answer
        info = _sealed_info(path, h, raw) if sealed else None
        return (info, MetricsScan()) if info is not None else _read_info(path, h, raw, since)
    except _Damage as err:
        damage = f"{path}: {err}" if str(path) not in str(err) else str(err)
    except (TypeError, ValueError, AttributeError, KeyError) as err:
        damage = f"{path}: a file has unexpected contents ({type(err).__name__}: {err})"
    return _damaged(path, cfg, damage), MetricsScan()


@dataclass(frozen=True)
class _Header:
    """config.json and status.json of a run, checked."""

    config: dict[str, Any]
    runtime: dict[str, Any]
    status: dict[str, Any]
    planned: int

    @property
    def stage(self) -> str:
        return str(self.config.get("stage", "?"))


def _header(path: Path, cfg: dict[str, Any]) -> _Header:
    config, runtime = cfg["config"], cfg.get("runtime", {})
    if not isinstance(config, dict) or not isinstance(runtime, dict):
        raise _Damage(f"{CONFIG} must hold objects 'config' and 'runtime'")
    status = _optional_json(path / STATUS)
    status = {} if status is None else status
    if not isinstance(status, dict):
        raise _Damage(f"{STATUS} is not a JSON object")
    wrong = fields_damage(STATUS, status, STATUS_FIELDS) or fields_damage(CONFIG, config, CONFIG_FIELDS)
    if wrong:
        raise _Damage(wrong)
    return _Header(config, runtime, status, _planned(config, status))


def _notes(path: Path) -> RunNotes:
    try:
        return read_notes(path)
    except NotesDamage as err:
        raise _Damage(str(err)) from None


def _read_info(path: Path, h: _Header, raw: Any, since: MetricsScan | None) -> tuple[RunInfo, MetricsScan]:
    scan = scan_metrics(path, h.planned, _labels(h.config), since)
    if scan.damage:
        raise _Damage(scan.damage)
    notes = _notes(path)
    try:
        for name in (SCORES, SOURCE_SCORES):
            load_scores(path, name, Expected.of_run(path, name))
    except ScoresDamage as err:
        raise _Damage(str(err)) from None
    i = best_index(scan.rows)
    best = Selected.of(scan.rows[i], h.stage) if i is not None else None
    try:
        summary = None if raw is None else RunSummary.from_json(raw)
    except (ValueError, TypeError):
        summary = None  # being replaced or damaged: the rows still say the stage's best
    if summary is not None and summary.best is not None and best is not None and summary.best.epoch == best.epoch:
        best = summary.best
    answer = summary.answer if summary is not None and h.stage == "finetune" else None
    return _info(path, h, len(scan.rows), best, answer, notes), scan


def _sealed_info(path: Path, h: _Header, raw: Any) -> RunInfo | None:
    """The list row of an ended run from config, status, notes and summary.json (`raw`) alone,
    when summary.json's seal says metrics.jsonl and the scores are still what the summary was
    computed from (files.matches_seal); None when they may not be (the caller reads and checks
    them all)."""
    if h.status.get("state") not in (FINISHED, CANCELLED, FAILED):
        return None
    if not isinstance(raw, dict) or not matches_seal(path, raw.get(SEAL_KEY)):
        return None
    try:
        summary = RunSummary.from_json(raw)
        if not 0 <= summary.epochs_done <= h.planned:
            return None
        answer = summary.answer if h.stage == "finetune" else None
        return _info(path, h, summary.epochs_done, summary.best, answer, _notes(path))
    except (_Damage, TypeError, ValueError, AttributeError, KeyError):
        return None  # the full read says what is wrong


def _info(path: Path, h: _Header, done: int, best: Selected | None, answer: Selected | None,
          notes: RunNotes) -> RunInfo:
    config, runtime, status = h.config, h.runtime, h.status
    return RunInfo(
        run_id=path.name,
        path=path,
        dataset=str(config.get("dataset", "?")),
        stage=h.stage,
        preset=str(config.get("preset", "")),
        status=effective_status(status),
        epochs_done=done,
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
        notes=notes,
        config=config,
        status_json=status,
    )


def _config_of(path: Path) -> dict[str, Any]:
    """config.json of a run folder (not a link); DamtuiError when it is not a damtui run."""
    path = run_folder(path)
    try:
        cfg = read_json(path / CONFIG)
    except UnsafeFile as err:
        raise DamtuiError(f"{path} is not a damtui run ({CONFIG} is {err.strerror})") from None
    except (OSError, ValueError):
        raise DamtuiError(f"{path} is not a damtui run (no readable {CONFIG})") from None
    if not isinstance(cfg, dict) or "config" not in cfg:
        raise DamtuiError(f"{path} is not a damtui run ({CONFIG} has no 'config')")
    return cfg


def load_run(path: Path, since: RunRecord | None = None) -> RunRecord:
    """The run, every file checked. `since`: this run as read before; while its metrics file only
    grew, just the rows appended since are read (a page following a long run)."""
    path = Path(path)
    cfg = _config_of(path)
    info, scan = _read(path, cfg, since.scan if since is not None and since.info.path == path else None)
    if info.status == DAMAGED:  # what a damaged folder holds is not trusted further
        config, runtime = cfg["config"], cfg.get("runtime")
        return RunRecord(info, config if isinstance(config, dict) else {},
                         runtime if isinstance(runtime, dict) else {}, [], scan.offset)
    return RunRecord(info, cfg["config"], cfg.get("runtime", {}), list(scan.rows), scan.offset, scan)


@dataclass
class _Listed:
    """What list_runs knows of one run folder between two listings."""

    stamp: tuple  # folder_stamp when it was read
    info: RunInfo
    scan: MetricsScan  # a running run's metrics as scanned: the next read starts where this one stopped


_LISTED: dict[Path, _Listed] = {}


def list_row(path: Path) -> RunInfo:
    """One run's row for a list of runs: an ended run whose summary.json still matches its files
    (files.matches_seal) costs config, status, notes and summary, never its metrics or scores;
    any other run is read and checked in full (load_run). DamtuiError when it is not a run."""
    return _list_row(Path(path), None)[0]


def _list_row(path: Path, since: MetricsScan | None) -> tuple[RunInfo, MetricsScan]:
    return _read(path, _config_of(path), since, sealed=True)


def list_runs(root: Path) -> tuple[list[RunInfo], list[str]]:
    """All runs under `root`, newest first, and the names of entries that are not runs.

    A run is read again only when its files changed (runs.folder_stamp: a stat of each), so an
    app listing the runs every two seconds reads nothing while nothing changes; a running run's
    process is checked for life at each listing, and its metrics are read from where the last
    listing stopped."""
    root = Path(root)
    runs: list[RunInfo] = []
    ignored: list[str] = []
    if not root.is_dir():
        return runs, ignored
    seen = set()
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or _being_created(entry):
            continue
        stamp = folder_stamp(entry)
        known = _LISTED.get(entry)
        seen.add(entry)
        if known is not None and known.stamp == stamp:
            runs.append(_alive(known))
            continue
        try:
            info, scan = _list_row(entry, known.scan if known is not None else None)
        except DamtuiError:
            _LISTED.pop(entry, None)
            ignored.append(entry.name)
            continue
        runs.append(info)
        _LISTED[entry] = _Listed(stamp, info, scan if info.status == RUNNING else MetricsScan())
    for gone in [p for p in _LISTED if p.parent == root and p not in seen]:
        _LISTED.pop(gone, None)
    runs.sort(key=lambda r: (r.started, r.run_id), reverse=True)
    return runs, ignored


def _alive(known: _Listed) -> RunInfo:
    """A listed running run as it is now: crashed once its process is gone (no file changes then)."""
    if known.info.status != RUNNING:
        return known.info
    try:
        state = effective_status(known.info.status_json)
    except (TypeError, ValueError):
        state = CRASHED
    if state != RUNNING:
        known.info = replace(known.info, status=state)
    return known.info


def _being_created(path: Path) -> bool:
    """A run the app started whose process has not written it yet (it is loading the data)."""
    return (path / LAUNCH_DIR).is_dir() and folder_state(path) == "empty"


def summary_of(record: RunRecord) -> RunSummary:
    """A run's summary from its rows (what summary.json holds once the run has ended)."""
    i = record.info
    return RunSummary.of(record.metrics, run_id=i.run_id, status=i.status, dataset=i.dataset, stage=i.stage,
                         preset=i.preset)


def _run_names(root: Path) -> list[str]:
    return sorted(p.name for p in Path(root).iterdir() if is_run_dir(p)) if Path(root).is_dir() else []


LATEST = "latest"


def resolve_run(root: Path, ref: str, dataset: str | None = None, stage: str | None = None,
                finished: bool = False) -> Path:
    """The resolver of run references for reading: a folder name in `root`, a path, a unique part
    of one (its short id), a display name, or `latest`: the newest run, among those of `dataset`
    and `stage` that are `finished` when the caller needs that (`--from latest`). A name in the
    runs folder comes before a same-named folder where the command runs. Commands that change a
    run resolve it with resolve_own_run."""
    root = Path(root)
    if ref == LATEST:
        return _latest(root, dataset, stage, finished)
    for cand in (root / ref, Path(ref)) if "/" not in ref else (Path(ref),):
        if os.path.lexists(cand) and (cand.is_dir() or cand.is_symlink()):
            if not is_run_dir(cand):
                raise DamtuiError(f"{cand} is not a damtui run (no {CONFIG}, or a link); `damtui runs` lists runs")
            return cand
    names = _run_names(root)
    hits = [n for n in names if ref in n] or [n for n in names if load_notes(root / n).name == ref]
    if len(hits) == 1:
        return root / hits[0]
    if not hits:
        raise DamtuiError(f"no run {ref!r} in {root}; `damtui runs` lists runs")
    raise DamtuiError(f"{ref!r} matches {len(hits)} runs in {root}; give more of the name")


def resolve_own_run(root: Path, ref: str) -> Path:
    """A run to change (delete, rename, note, tag, resume), resolved exactly and only inside the
    runs folder: its folder name, its exact short id, an unambiguous start of its name, or its
    display name; a path must point into the runs folder. Never a part of a name, never a folder
    where the command runs. `latest` is the newest run."""
    root = Path(root)
    if ref == LATEST:
        return _latest(root, None, None, False)
    if "/" in ref:
        cand = Path(ref)
        if cand.parent.resolve() != root.resolve():
            raise DamtuiError(f"{ref} is not in the runs folder {root}; give a run there (`damtui runs` lists"
                              " them) or choose --runs-dir")
        ref = cand.name
    names = _run_names(root)
    if ref in names:
        return root / ref
    if os.path.lexists(root / ref):
        raise DamtuiError(f"{root / ref} is not a damtui run (no {CONFIG}, or a link); `damtui runs` lists runs")
    for rule in (lambda n: short_id(n) == ref, lambda n: n.startswith(ref),
                 lambda n: load_notes(root / n).name == ref):
        hits = [n for n in names if rule(n)] if ref else []
        if len(hits) == 1:
            return root / hits[0]
        if len(hits) > 1:
            shown = ", ".join(hits[:3]) + (" ..." if len(hits) > 3 else "")
            raise DamtuiError(f"{ref!r} matches {len(hits)} runs in {root} ({shown}); give the whole name")
    raise DamtuiError(f"no run {ref!r} in {root} (give its whole name, short id or the start of its name);"
                      " `damtui runs` lists runs")


def _latest(root: Path, dataset: str | None, stage: str | None, finished: bool) -> Path:
    infos, _ = list_runs(root)
    for r in infos:  # newest first
        if (dataset in (None, r.dataset) and stage in (None, r.stage)
                and (not finished or r.status == FINISHED)):
            return r.path
    what = " ".join(w for w in ("finished" if finished else "", dataset or "", stage or "", "run") if w)
    raise DamtuiError(f"'latest': no {what} in {root}; `damtui runs` lists runs")


def write_text_file(path: Path, text: str) -> Path:
    """Exports (CSV, Markdown) to a file the user named (damtui.atomic.write_output)."""
    return write_output(path, text.encode("utf-8"))
