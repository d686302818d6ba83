"""A run started from the app: its own `damtui train` process, so it outlives the app and the SSH
session. What the app needs to start it and to find it again lives in the run folder's `.launch/`:

  <run>/.launch/<preset>.toml   the config to train, as a preset file that reads back to it exactly
  <run>/.launch/output.txt      the process's stdout and stderr (an error before the run exists)
  <run>/.launch/launch.json     pid, its start time, argv, when: who trains it, for a later app

A folder that holds only `.launch/` is a run being created (its process is loading the data):
listings skip it (files.folder_state says "empty") and `damtui train --name` takes it over.
"""

from __future__ import annotations

import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from damtui.config import Config, to_toml
from damtui.errors import DamtuiError
from damtui.store.files import (
    CONFIG,
    RUNNING,
    STATUS,
    atomic_write_json,
    effective_status,
    process_start,
    read_json,
)

LAUNCH_DIR = ".launch"
OUTPUT, RECORD = "output.txt", "launch.json"


@dataclass(frozen=True)
class Launch:
    """launch.json: the process the app started for the run."""

    run_dir: Path
    pid: int
    pid_start: str | None
    argv: tuple[str, ...]
    started: float  # wall clock


def launch_dir(run_dir: Path) -> Path:
    return Path(run_dir) / LAUNCH_DIR


def prepare(run_dir: Path, config: Config | None) -> tuple[Path | None, BinaryIO, int]:
    """Make <run>/.launch/ (a new run's folder too) and, for a new run, its preset file. Returns the
    preset file (None for a resume), the output file opened to append, and where this start's output
    begins in it."""
    folder = launch_dir(run_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        preset = None
        if config is not None:
            preset = folder / f"{config.preset or 'app'}.toml"
            preset.write_text(to_toml(config), encoding="utf-8")
        out = open(folder / OUTPUT, "ab")
    except OSError as err:
        raise DamtuiError(f"cannot prepare {folder} ({err.strerror}); is the runs dir writable?") from None
    return preset, out, out.tell()


def record(run_dir: Path, pid: int, argv: list[str]) -> None:
    """Say which process trains the run, so an app opened later finds it and follows it."""
    atomic_write_json(launch_dir(run_dir) / RECORD, {"pid": pid, "pid_start": process_start(pid),
                                                    "argv": list(argv), "started": time.time()})


def read(run_dir: Path) -> Launch | None:
    """The run's launch record; None when the app did not start it (or the record is unreadable)."""
    try:
        data = read_json(launch_dir(run_dir) / RECORD)
        return Launch(Path(run_dir), int(data["pid"]), data.get("pid_start"), tuple(data.get("argv") or ()),
                      float(data.get("started", 0.0)))
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


def output_lines(run_dir: Path, start: int = 0) -> list[str]:
    """The process's output from byte `start` (its part of output.txt)."""
    try:
        with open(launch_dir(run_dir) / OUTPUT, "rb") as fh:
            fh.seek(start)
            return fh.read().decode(errors="replace").splitlines()
    except OSError:
        return []


def failure(run_dir: Path, start: int = 0) -> tuple[str, str]:
    """Why a process ended before it wrote its run: the CLI's one `damtui: error:` line (else the
    output's last line), and the output's tail as the detail (a traceback, for a bug)."""
    lines = [ln for ln in output_lines(run_dir, start) if ln.strip()]
    errors = [ln.removeprefix("damtui: error: ") for ln in lines if ln.startswith("damtui: error: ")]
    message = errors[-1] if errors else (lines[-1].strip() if lines else "the training process ended without output")
    return message, "\n".join(lines[-40:]) if not errors else ""


def forget_unstarted(run_dir: Path) -> None:
    """Remove what a start left when its process ended before creating the run (no config.json):
    the folder would otherwise stay behind, holding only `.launch/`."""
    run_dir = Path(run_dir)
    if (run_dir / CONFIG).exists():
        return
    shutil.rmtree(launch_dir(run_dir), ignore_errors=True)
    try:
        run_dir.rmdir()
    except OSError:
        pass  # not empty: something else lives there, leave it


def live(run_dir: Path, status: dict) -> Launch | None:
    """The launch record when the process it names is the run's live writer (status.json running,
    written by that pid, on this host); None otherwise."""
    found = read(run_dir)
    if found is None or not isinstance(status, dict) or status.get("host") != socket.gethostname():
        return None
    try:
        alive = effective_status(status) == RUNNING and int(status.get("pid", -1)) == found.pid
    except (TypeError, ValueError):
        return None
    return found if alive and (found.pid_start is None or found.pid_start == process_start(found.pid)) else None


def running(root: Path) -> list[Launch]:
    """The runs under `root` that an app started and that are still training, newest first: what
    an app opened later shows live."""
    out = []
    try:
        entries = [e for e in Path(root).iterdir() if not e.name.startswith(".")]
    except OSError:
        return []
    for entry in entries:
        if not (launch_dir(entry) / RECORD).is_file():
            continue
        try:
            status = read_json(entry / STATUS)
        except (OSError, ValueError):
            continue
        found = live(entry, status)
        if found is not None:
            out.append(found)
    return sorted(out, key=lambda launch: launch.started, reverse=True)
