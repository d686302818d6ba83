"""Fault injection: SIGKILL `damtui train` at random moments, check every run folder, resume each.

    python benchmarks/fault_injection.py --kills 20

What it does (synthetic2d, CPU, `--set width=4 --set epochs=6`, fixed seed):
1. One uninterrupted reference run (its timing sets the kill window), then two more runs started at
   the same moment into the same runs dir: they must get their own folders and equal metrics.
2. `--kills` runs killed with SIGKILL: most after a seeded random delay spanning the whole run
   (measured from the moment the run folder appears), about a quarter the instant a checkpoint
   temp file (`.best.pt.PID.tmp` / `.last.pt.PID.tmp`) is created, i.e. during a checkpoint write.
3. Every killed folder is checked: config.json and status.json parse, every metrics line parses
   except at most a torn last line, each checkpoint present loads with runs.load_checkpoint, and
   list_runs shows the run as crashed.
4. Each run is resumed (`damtui train --resume RUN`); some are killed again while resuming and
   resumed once more. The final metrics.jsonl (without timing keys) and the final last.pt (model,
   optimizer, every number) must equal the reference run's. A run killed before its first
   checkpoint has no last.pt: resume must refuse it with one `damtui: error:` line and leave the
   folder as it was (counted separately).
A reader thread lists and reads the runs dir the whole time; it must never fail.

`--load-change` (round 3): the runs train with `--threads 2`, and the resumes are given no thread
count at all (no --threads, no $DAMTUI_THREADS) while a busy process takes a core, so the idle
cores they would pick are fewer: a resume must train with the run's own stored count (and say so
when told another), or it differs from the uninterrupted run from its first resumed epoch on.

Exit status 0 when every check passed. Linux only (inotify, falls back to polling elsewhere).
"""

from __future__ import annotations

import argparse
import ctypes
import hashlib
import json
import os
import random
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TIMING = {"epoch_s", "train_s", "eval_s", "images_per_s"}
CKPT_TMP = (".best.pt.", ".last.pt.")


# ----------------------------------------------------------------------------- watching a folder


class Watch:
    """Creation events in folders: inotify via ctypes, or polling where inotify is missing."""

    IN_CREATE, IN_MOVED_TO, IN_ISDIR = 0x100, 0x80, 0x40000000

    def __init__(self) -> None:
        self.fd = -1
        self.paths: dict[int, Path] = {}
        self.seen: dict[Path, set[str]] = {}
        try:
            self.libc = ctypes.CDLL(None, use_errno=True)
            self.fd = self.libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        except (OSError, AttributeError):
            self.fd = -1

    @property
    def kind(self) -> str:
        return "inotify" if self.fd >= 0 else "polling"

    def add(self, path: Path) -> None:
        path = Path(path)
        if self.fd >= 0:
            wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), self.IN_CREATE | self.IN_MOVED_TO)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
            self.paths[wd] = path
        self.seen[path] = set(os.listdir(path))

    def events(self, timeout: float) -> list[tuple[Path, str, bool]]:
        """(folder, name, is_dir) for entries created since the last call; waits up to timeout."""
        if self.fd < 0:
            time.sleep(min(timeout, 0.002))
            out = []
            for path, seen in self.seen.items():
                try:
                    now = set(os.listdir(path))
                except OSError:
                    continue
                out += [(path, n, (path / n).is_dir()) for n in sorted(now - seen)]
                seen |= now
            return out
        ready, _, _ = select.select([self.fd], [], [], max(timeout, 0.0))
        if not ready:
            return []
        data = os.read(self.fd, 1 << 16)
        out, i = [], 0
        while i + 16 <= len(data):
            wd, mask, _cookie, size = struct.unpack_from("iIII", data, i)
            name = data[i + 16:i + 16 + size].rstrip(b"\0").decode(errors="replace")
            i += 16 + size
            if wd in self.paths:
                out.append((self.paths[wd], name, bool(mask & self.IN_ISDIR)))
        return out

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# ----------------------------------------------------------------------------- running damtui


@dataclass
class Setup:
    work: Path
    epochs: int = 6
    width: int = 4
    seed: int = 0
    threads: int = 1
    load_change: bool = False  # train with --threads 2, resume with no thread count beside a busy core

    @property
    def root(self) -> Path:
        return self.work / "runs"

    @property
    def data(self) -> Path:
        return self.work / "data"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DAMTUI_PRESETS=str(self.work / "no-user-presets"), DAMTUI_RUNS=str(self.root),
                   DAMTUI_DATA=str(self.data))
        if self.load_change:
            env.pop("DAMTUI_THREADS", None)  # the resumes are told nothing: their run's count must hold
        elif self.threads:  # torch's spinning OpenMP threads crawl when the watcher/reader take a core
            env.update(DAMTUI_THREADS=str(self.threads))
        return env

    def train_cmd(self) -> list[str]:
        return [sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--device", "cpu",
                "--set", f"width={self.width}", "--set", f"epochs={self.epochs}", "--seed", str(self.seed),
                "--runs-dir", str(self.root), "--data-root", str(self.data),
                *(["--threads", "2"] if self.load_change else [])]

    def resume_cmd(self, run: Path) -> list[str]:
        return [sys.executable, "-m", "damtui.cli", "train", "--resume", str(run), "--device", "cpu",
                "--runs-dir", str(self.root), "--data-root", str(self.data)]

    def popen(self, cmd: list[str]) -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self.env())

    def prepare(self) -> None:
        from damtui.data import datasets

        self.root.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        datasets.write_synthetic("synthetic2d", datasets.dataset_path("synthetic2d", self.data))


@dataclass
class Launch:
    """One damtui process watched from its start: its run folder and the moments things happened."""

    proc: subprocess.Popen
    t0: float
    folder: Path | None = None
    t_folder: float | None = None
    created: list[tuple[float, str]] = field(default_factory=list)  # (s since folder, name) in folder
    killed: bool = False
    t_kill: float | None = None
    rc: int | None = None
    stderr: str = ""

    def finish(self) -> None:
        _, err = self.proc.communicate()
        self.rc, self.stderr = self.proc.returncode, err or ""


def start_watched(setup: Setup, cmd: list[str], folder: Path | None = None) -> tuple[Launch, Watch]:
    """Start cmd; watch the runs dir for its new folder, or `folder` (a resume) directly."""
    w = Watch()
    w.add(folder if folder is not None else setup.root)
    t0 = time.perf_counter()
    launch = Launch(setup.popen(cmd), t0)
    if folder is not None:
        launch.folder, launch.t_folder = folder, t0
        return launch, w
    while launch.folder is None:
        for parent, name, is_dir in w.events(0.2):
            if is_dir and parent == setup.root and not name.startswith("."):
                launch.folder, launch.t_folder = setup.root / name, time.perf_counter()
                break
        if launch.folder is None and launch.proc.poll() is not None:
            return launch, w  # died before making a folder (a bad start: reported by the caller)
    w.add(launch.folder)
    return launch, w


def drive(launch: Launch, w: Watch, *, at: float | None = None, on_tmp: tuple[str, int] | None = None,
          after_name: str | None = None) -> None:
    """Let the process run and SIGKILL it `at` seconds after its folder appeared (or after the
    first file named `after_name*` appears), or the instant the n-th temp file with prefix
    on_tmp[0] is created. Without a trigger it runs to the end. Records every creation."""
    count, t_ref = 0, launch.t_folder if after_name is None else None
    while launch.proc.poll() is None:
        now = time.perf_counter()
        wait = 0.05 if at is None or t_ref is None else max(0.0, min(0.05, t_ref + at - now))
        for parent, name, _ in w.events(wait):
            stamp = time.perf_counter() - (launch.t_folder or launch.t0)
            launch.created.append((stamp, name))
            if t_ref is None and after_name and name.startswith(after_name):
                t_ref = time.perf_counter()
            if on_tmp and name.startswith(on_tmp[0]) and name.endswith(".tmp"):
                count += 1
                if count == on_tmp[1]:
                    _kill(launch)
                    break
        if launch.killed:
            break
        if at is not None and t_ref is not None and time.perf_counter() >= t_ref + at:
            _kill(launch)
            break
    w.close()
    launch.finish()


def _kill(launch: Launch) -> None:
    try:
        os.kill(launch.proc.pid, signal.SIGKILL)
        launch.killed = True
        launch.t_kill = time.perf_counter() - (launch.t_folder or launch.t0)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------------------------- checking folders


def strip(rows: list[Any]) -> list[dict[str, Any]]:  # runs.read_metrics rows (EpochRow)
    return [{k: v for k, v in r.to_json().items() if k not in TIMING} for r in rows]


def payload_equal(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and torch.equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(payload_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(payload_equal(x, y) for x, y in zip(a, b))
    return a == b


def tree_hash(path: Path) -> str:
    from damtui.store import runs

    h = hashlib.sha256()
    for p in sorted(Path(path).rglob("*")):
        if p.name == runs.LOCK:  # records its last holder's pid, not the run's state
            continue
        h.update(str(p.relative_to(path)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def check_folder(root: Path, folder: Path) -> dict[str, Any]:
    """Everything a reader needs must parse after a SIGKILL; returns findings, `problems` empty if ok."""
    from damtui.store import runs
    from damtui.errors import DamtuiError

    out: dict[str, Any] = {"problems": [], "torn_last_line": False, "rows": 0, "last_epoch": None,
                           "tmp_left": sorted(p.name for p in folder.glob(".*.tmp")), "empty": False}
    if not (folder / runs.CONFIG).exists():
        # killed between mkdir and the atomic config.json: an empty folder, listed as "ignored"
        out["empty"] = not [p for p in folder.iterdir() if not p.name.endswith(".tmp")]
        if not out["empty"]:
            out["problems"].append("no config.json but other files")
        return out
    try:
        cfg = json.loads((folder / runs.CONFIG).read_text())
        assert isinstance(cfg, dict) and "config" in cfg
    except (ValueError, AssertionError) as err:
        out["problems"].append(f"config.json: {err!r}")
    if (folder / runs.STATUS).exists():
        try:
            json.loads((folder / runs.STATUS).read_text())
        except ValueError as err:
            out["problems"].append(f"status.json: {err!r}")
    lines = (folder / runs.METRICS).read_bytes().split(b"\n") if (folder / runs.METRICS).exists() else [b""]
    *whole, tail = lines  # tail: bytes after the last newline (a torn line, or b"")
    for i, line in enumerate(whole):
        try:
            json.loads(line)
        except ValueError:
            out["problems"].append(f"metrics line {i + 1} does not parse")
    out["rows"] = len(whole)
    out["torn_last_line"] = bool(tail)
    rows, _ = runs.read_metrics(folder)
    if len(rows) != len(whole):
        out["problems"].append("read_metrics disagrees with the file")
    for name in (runs.LAST, runs.BEST):
        if (folder / name).exists():
            try:
                ck = runs.load_checkpoint(folder / name)
                if name == runs.LAST:
                    out["last_epoch"] = int(ck["epoch"])
                if int(ck["epoch"]) > len(whole):
                    out["problems"].append(f"{name} is ahead of metrics.jsonl")
            except DamtuiError as err:
                out["problems"].append(f"{name}: {err}")
    infos, _ = runs.list_runs(root)
    status = next((i.status for i in infos if i.path.name == folder.name), None)
    out["status"] = status
    complete = status == runs.FINISHED and (folder / runs.SUMMARY).exists()  # killed while exiting
    if status != runs.CRASHED and not complete:
        out["problems"].append(f"list_runs shows {status}, not crashed")
    return out


class Reader(threading.Thread):
    """A follower reading the runs dir all the time, as `damtui` does: it must never fail."""

    def __init__(self, root: Path) -> None:
        super().__init__(daemon=True)
        self.root, self.stop, self.passes, self.errors = root, threading.Event(), 0, []

    def run(self) -> None:
        from damtui.store import runs

        while not self.stop.is_set():
            try:
                infos, _ = runs.list_runs(self.root)
                for info in infos:
                    rows, _ = runs.read_metrics(info.path)
                    assert all(isinstance(r.epoch, int) for r in rows)  # typed EpochRows
                self.passes += 1
            except Exception as err:  # noqa: BLE001 - any failure is a finding
                self.errors.append(repr(err))
            self.stop.wait(0.05)


# ----------------------------------------------------------------------------- the benchmark


def one_line_error(stderr: str) -> bool:
    err = stderr.strip()
    return err.startswith("damtui: error: ") and "\n" not in err and "Traceback" not in err


def plan_kills(n: int, rng: random.Random, ckpt_events: list[str], span: float,
               ckpt_share: float = 0.25) -> list[dict[str, Any]]:
    """Kill specs: ('timed', seconds after the folder appears) or ('ckpt', prefix, occurrence)."""
    n_ckpt = min(n, max(1, round(n * ckpt_share))) if ckpt_events else 0
    ckpt_at = {round(i * n / n_ckpt) + n // (2 * n_ckpt) for i in range(n_ckpt)} if n_ckpt else set()
    plan = []
    for i in range(n):
        if i in ckpt_at:
            at = rng.randrange(len(ckpt_events))  # one checkpoint write of the reference run, e.g. the 3rd last.pt
            name = ckpt_events[at]
            prefix = next(p for p in CKPT_TMP if name.startswith(p))
            k = ckpt_events[: at + 1].count(name)
            plan.append({"mode": "ckpt", "prefix": prefix, "nth": k})
        else:
            plan.append({"mode": "timed", "at": rng.uniform(0.0, span)})
    return plan


class Busy:
    """A process spinning on one core while it runs (the load that changed between start and resume)."""

    def __enter__(self) -> Busy:
        self.proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.kill()
        self.proc.wait()


def run_benchmark(kills: int = 20, seed: int = 0, epochs: int = 6, width: int = 4, work: Path | None = None,
                  concurrent: bool = True, double_every: int = 5, plan: list[dict[str, Any]] | None = None,
                  threads: int = 1, load_change: bool = False, log=print) -> dict[str, Any]:
    """The whole check; returns counts (and `ok`). `plan` overrides the random kill plan."""
    from damtui.store import runs

    work = Path(work or tempfile.mkdtemp(prefix="damtui-faults-"))
    setup = Setup(work, epochs=epochs, width=width, seed=seed, threads=threads, load_change=load_change)
    setup.prepare()
    rng = random.Random(seed)
    res: dict[str, Any] = {"kills_planned": kills, "problems": []}
    reader = Reader(setup.root)
    reader.start()
    t_start = time.perf_counter()

    # 1. reference run and its timing; the checkpoint writes it made
    ref, w = start_watched(setup, setup.train_cmd())
    watch_kind = w.kind
    drive(ref, w)
    if ref.rc != 0 or ref.folder is None:
        raise SystemExit(f"reference run failed (rc {ref.rc}): {ref.stderr.strip()}")
    # kill window: from the folder's creation to the summary write (the run is complete after it;
    # what follows is interpreter exit, which would only add kills of a finished run)
    span = next((t for t, name in ref.created if name.startswith(".summary.json.")), None)
    span = span + 0.1 if span is not None else time.perf_counter() - ref.t_folder
    ref_rows = strip(runs.read_metrics(ref.folder)[0])
    ref_last = runs.load_checkpoint(ref.folder / runs.LAST)
    ckpt_events = [n.split(".tmp")[0].rsplit(".", 1)[0] + "." for _, n in ref.created
                   if n.startswith(CKPT_TMP) and n.endswith(".tmp")]
    res.update(reference_s=round(time.perf_counter() - ref.t0, 2), folder_after_s=round(ref.t_folder - ref.t0, 2),
               run_span_s=round(span, 2), ckpt_writes_in_reference=len(ckpt_events), watch=watch_kind)
    log(f"reference: {res['reference_s']} s (folder after {res['folder_after_s']} s), {len(ref_rows)} epochs,"
        f" {len(ckpt_events)} checkpoint writes seen via {watch_kind}")

    # 2. two runs at once into the same runs dir, while the reader reads
    if concurrent:
        before = set(os.listdir(setup.root))
        procs = [setup.popen(setup.train_cmd()) for _ in range(2)]
        rcs = [p.wait() for p in procs]
        new = sorted(set(os.listdir(setup.root)) - before)
        same = [strip(runs.read_metrics(setup.root / n)[0]) == ref_rows for n in new]
        res.update(concurrent_runs=len(procs), concurrent_folders=len(new), concurrent_equal=sum(same),
                   concurrent_ok=rcs == [0, 0] and len(new) == 2 and all(same))
        log(f"concurrent: 2 runs -> {len(new)} folders, exit {rcs}, metrics equal to reference {sum(same)}/2")
        if not res["concurrent_ok"]:
            res["problems"].append("concurrent runs")

    # 3. kills
    plan = [dict(p) for p in plan] if plan else plan_kills(kills, rng, ckpt_events, span)
    killed: list[dict[str, Any]] = []
    for i, spec in enumerate(plan):
        launch, w = start_watched(setup, setup.train_cmd())
        if spec["mode"] == "timed":
            spec.setdefault("at", spec.get("frac", 0.5) * span)
            drive(launch, w, at=spec["at"])
        else:
            drive(launch, w, on_tmp=(spec["prefix"], spec["nth"]))
        entry = {"i": i, **spec, "killed": launch.killed, "t_kill": launch.t_kill, "folder": launch.folder}
        if launch.folder is None:
            entry["check"] = {"problems": [] if launch.killed else [f"no folder, rc {launch.rc}"], "empty": True}
        else:
            entry["check"] = check_folder(setup.root, launch.folder) if launch.killed else {"problems": []}
        entry["mid_write"] = any(n.startswith(CKPT_TMP) for n in entry["check"].get("tmp_left", []))
        killed.append(entry)
        c = entry["check"]
        what = (f"{spec['prefix']}tmp #{spec['nth']}" if spec["mode"] == "ckpt" else f"t+{spec['at']:.2f}s")
        log(f"kill {i + 1:2d} {what:18s} -> " + (
            f"killed at {launch.t_kill:.2f}s: {c.get('rows', 0)} metrics rows, last.pt epoch "
            f"{c.get('last_epoch')}, tmp left {len(c.get('tmp_left', []))}, "
            f"{'ok' if not c['problems'] else c['problems']}" if launch.killed else f"finished first (rc {launch.rc})"))

    # 4. resume each (some killed once more while resuming); with --load-change beside a busy core
    n_resumed = n_equal = n_wequal = n_refused = n_double = n_complete = n_restarted = 0
    busy = Busy() if load_change else None
    if busy is not None:
        busy.__enter__()
    for entry in killed:
        folder = entry["folder"]
        if not entry["killed"] or folder is None or entry["check"].get("empty"):
            continue
        if entry["check"].get("status") == runs.FINISHED:  # killed after it had finished: nothing to resume
            n_complete += 1
            if strip(runs.read_metrics(folder)[0]) != ref_rows:
                res["problems"].append(f"{folder.name} finished before its kill with other metrics")
            continue
        if entry["check"].get("last_epoch") is None and entry["check"].get("rows", 0) <= 1:
            n_restarted += 1  # killed before its first checkpoint: --resume starts it over
        elif entry["check"].get("last_epoch") is None:
            before = tree_hash(folder)
            proc = subprocess.run(setup.resume_cmd(folder), capture_output=True, text=True, env=setup.env(),
                                  check=False)
            ok = proc.returncode != 0 and one_line_error(proc.stderr) and tree_hash(folder) == before
            entry["refused"] = proc.stderr.strip()
            n_refused += ok
            if not ok:
                res["problems"].append(f"resume of {folder.name} without last.pt: rc {proc.returncode} {proc.stderr!r}")
            continue
        proc = None
        if double_every and entry["i"] % double_every == double_every - 1:
            launch, w = start_watched(setup, setup.resume_cmd(folder), folder=folder)
            done = (entry["check"].get("last_epoch") or 0) / epochs  # the resumed part is shorter
            drive(launch, w, at=rng.uniform(0.0, span * (1 - done)), after_name=".metrics.jsonl.")
            c = check_folder(setup.root, folder) if launch.killed else {"status": runs.FINISHED}
            if c["status"] == runs.FINISHED:  # it finished before its kill moment: judge that resume
                proc = subprocess.CompletedProcess(launch.proc.args, 0 if launch.killed else launch.rc, "",
                                                   launch.stderr)
            else:
                n_double += 1
                if c["problems"]:
                    res["problems"].append(f"{folder.name} after a kill during resume: {c['problems']}")
        if proc is None:
            proc = subprocess.run(setup.resume_cmd(folder), capture_output=True, text=True, env=setup.env(),
                                  check=False)
        n_resumed += 1
        rows = strip(runs.read_metrics(folder)[0])
        equal = proc.returncode == 0 and rows == ref_rows
        wequal = proc.returncode == 0 and payload_equal(runs.load_checkpoint(folder / runs.LAST), ref_last)
        infos, _ = runs.list_runs(setup.root)
        status = next(i.status for i in infos if i.path.name == folder.name)
        tmp_left = list(folder.glob(".*.tmp"))
        n_equal += equal
        n_wequal += wequal
        if not (equal and wequal and status == runs.FINISHED and not tmp_left):
            res["problems"].append(f"resume of {folder.name}: rc {proc.returncode}, metrics equal {equal},"
                                   f" last.pt equal {wequal}, status {status}, tmp {tmp_left}, {proc.stderr.strip()!r}")
    if busy is not None:
        busy.__exit__()
    reader.stop.set()
    reader.join()

    n_killed = sum(e["killed"] for e in killed)
    intact = [e for e in killed if e["killed"] and not e["check"]["problems"]]
    res.update(
        runs_killed=n_killed,
        finished_before_kill=sum(not e["killed"] for e in killed),
        killed_during_checkpoint_write=sum(e["mode"] == "ckpt" and e["killed"] for e in killed),
        killed_with_checkpoint_tmp_on_disk=sum(e["mid_write"] for e in killed),
        folders_intact=len(intact),
        torn_last_lines=sum(bool(e["check"].get("torn_last_line")) for e in killed),
        empty_folders=sum(bool(e["check"].get("empty")) for e in killed if e["killed"]),
        shown_crashed=sum(e["check"].get("status") == runs.CRASHED for e in killed),
        killed_after_finishing=n_complete,
        no_last_pt=sum(e["killed"] and e["check"].get("last_epoch") is None and not e["check"].get("empty")
                       for e in killed),
        no_last_pt_refused_one_line=n_refused,
        no_last_pt_started_over=n_restarted,
        resumed=n_resumed, resumes_equal=n_equal, resumes_last_pt_equal=n_wequal,
        killed_again_while_resuming=n_double,
        reader_passes=reader.passes, reader_errors=len(reader.errors),
        total_s=round(time.perf_counter() - t_start, 1),
        refusal_example=next((e["refused"] for e in killed if e.get("refused")), None),
    )
    for e in killed:
        if e["killed"] and e["check"]["problems"]:
            res["problems"].append(f"kill {e['i'] + 1}: {e['check']['problems']}")
    res["problems"] += [f"reader: {e}" for e in reader.errors[:5]]
    res["ok"] = (not res["problems"] and n_resumed == n_equal == n_wequal
                 and res["no_last_pt"] == n_refused + n_restarted and len(intact) == n_killed)
    return res


def double_resumes(trials: int, work: Path, epochs: int = 4, width: int = 4, threads: int = 1) -> dict[str, Any]:
    """Issue 13's race: two `--resume` of one crashed run started together. With one writer per
    run exactly one may train; the other must exit with one line naming the holder, and the
    run's metrics must hold each epoch once."""
    import json as _json

    from damtui.store import runs

    setup = Setup(work, epochs=epochs, width=width, threads=threads)
    setup.prepare()
    base = setup.popen(setup.train_cmd())
    base.wait()
    (src,) = [p for p in setup.root.iterdir() if p.is_dir()]
    both, refused_ok, clean = 0, 0, 0
    for t in range(trials):
        run = setup.root / f"race-{t}"
        shutil.copytree(src, run)
        status = _json.loads((run / runs.STATUS).read_text())
        status.update(state=runs.RUNNING, pid=2**22 + 4321, epoch=1)  # killed after epoch 1
        (run / runs.STATUS).write_text(_json.dumps(status))
        lines = (run / runs.METRICS).read_text().splitlines(keepends=True)
        (run / runs.METRICS).write_text("".join(lines[:1]))
        last = runs.load_checkpoint(run / runs.LAST)
        import torch

        torch.save({**last, "epoch": 1, "best_epoch": 1}, run / runs.LAST)
        procs = [setup.popen(setup.resume_cmd(run)) for _ in range(2)]
        rcs = [p.wait() for p in procs]
        errs = [p.stderr.read() if p.stderr else "" for p in procs]
        both += rcs == [0, 0]
        refused_ok += sorted(rcs) == [0, 1] and any("being written by another damtui process" in e for e in errs)
        epochs_seen = [r.epoch for r in runs.read_metrics(run)[0]]
        clean += epochs_seen == list(range(1, epochs + 1))
    return {"double_resume_trials": trials, "both_ran": both, "one_refused_with_the_holder": refused_ok,
            "metrics_each_epoch_once": clean}


def summary(res: dict[str, Any]) -> str:
    lines = [
        (f"runs killed:                      {res['runs_killed']} of {res['kills_planned']}"
         f" ({res['finished_before_kill']} finished before their kill moment)"),
        (f"  at a checkpoint write (inotify): {res['killed_during_checkpoint_write']};"
         f" a checkpoint temp file was left on disk in {res['killed_with_checkpoint_tmp_on_disk']}"),
        (f"folders intact:                   {res['folders_intact']}/{res['runs_killed']}"
         f" (torn last metrics lines: {res['torn_last_lines']}, empty folders: {res['empty_folders']},"
         f" shown as crashed: {res['shown_crashed']}, already finished: {res['killed_after_finishing']})"),
        (f"killed before the first last.pt:  {res['no_last_pt']}; started over by --resume (and counted in the"
         f" resumes below): {res['no_last_pt_started_over']}; refused with one line:"
         f" {res['no_last_pt_refused_one_line']}"),
        (f"resumes equal to the uninterrupted run: {res['resumes_equal']}/{res['resumed']} (metrics.jsonl),"
         f" {res['resumes_last_pt_equal']}/{res['resumed']} (final last.pt, every tensor);"
         f" {res['killed_again_while_resuming']} of them killed again while resuming"),
    ]
    if "concurrent_runs" in res:
        lines.append(f"concurrent runs: {res['concurrent_folders']} folders for {res['concurrent_runs']} runs,"
                     f" metrics equal {res['concurrent_equal']}/{res['concurrent_runs']}")
    lines.append(f"reader: {res['reader_passes']} passes over the runs dir, {res['reader_errors']} errors")
    lines.append(f"total {res['total_s']} s; {'OK' if res['ok'] else 'FAILED'}")
    lines += [f"problem: {p}" for p in res["problems"]]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill moments and the training")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--width", type=int, default=4)
    ap.add_argument("--double-every", type=int, default=5, help="kill every n-th resume once more (0: never)")
    ap.add_argument("--threads", type=int, default=1, help="DAMTUI_THREADS of each damtui (0: leave alone)")
    ap.add_argument("--no-concurrent", action="store_true", help="skip the two-runs-at-once check")
    ap.add_argument("--load-change", action="store_true",
                    help="train with --threads 2, resume with no thread count while a busy process takes a core")
    ap.add_argument("--workdir", help="keep everything here (default: a temp folder, removed)")
    ap.add_argument("--json", help="also write the counts here")
    ap.add_argument("--double-resumes", type=int, metavar="N",
                    help="instead: N trials of two --resume of one crashed run started together")
    args = ap.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="damtui-faults-"))
    if args.double_resumes:
        try:
            res = double_resumes(args.double_resumes, work, threads=args.threads)
        finally:
            if not args.workdir:
                shutil.rmtree(work, ignore_errors=True)
        print(json.dumps(res))
        return 0 if res["both_ran"] == 0 and res["metrics_each_epoch_once"] == args.double_resumes else 1
    try:
        res = run_benchmark(args.kills, args.seed, args.epochs, args.width, work,
                            concurrent=not args.no_concurrent, double_every=args.double_every,
                            threads=args.threads, load_change=args.load_change)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    print(summary(res))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2, default=str) + "\n")
    return 0 if res["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
