"""Stopping a run that another process trains (`nohup damtui train`, a sweep's job, an app that was
closed): the way Ctrl+C stops it, so it finishes its batch, saves and is marked cancelled, and
`damtui train --resume` continues it. Only ever the run's live writer gets the signal: the pid in
status.json must be alive, be the same process (its start time), and hold the run's writer lock
with its pid in the lock file."""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from pathlib import Path

from damtui.errors import DamtuiError
from damtui.store.files import LOCK, NOFOLLOW, RUNNING, STATUS, pid_alive, process_start, read_json


def live_writer(run_dir: Path) -> int:
    """The pid of the process writing the run now; DamtuiError saying why there is none to stop."""
    run_dir = Path(run_dir)
    name = run_dir.name
    try:
        status = read_json(run_dir / STATUS)
        pid, state = int(status["pid"]), status["state"]
    except (OSError, ValueError, TypeError, KeyError):
        raise DamtuiError(f"{name} has no readable {STATUS}: no process to stop") from None
    if state != RUNNING:
        raise DamtuiError(f"{name} is {state}, not running: nothing to stop")
    host = status.get("host")
    if host != socket.gethostname():
        raise DamtuiError(f"{name} is trained on host {host}: stop it there (pid {pid})")
    started = status.get("pid_start")
    if not pid_alive(pid) or (started and process_start(pid) != started):
        raise DamtuiError(f"the process that wrote {name} (pid {pid}) is gone: nothing to stop (R resumes it)")
    if not started:
        raise DamtuiError(f"{name}'s {STATUS} does not say when pid {pid} started, so it cannot be told from"
                          " another process with that pid; stop it where it runs")
    holder = _lock_holder(run_dir)
    if holder != pid:
        raise DamtuiError(f"{name}'s writer lock is held by {holder or 'no process'}, not by pid {pid}:"
                          " not stopping anything")
    return pid


def _lock_holder(run_dir: Path) -> int | None:
    """The pid written in the run's lock file while some process holds the lock; None when it is free."""
    try:
        fd = os.open(run_dir / LOCK, os.O_RDONLY | NOFOLLOW)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # held exclusively: by the writer
            text = os.read(fd, 32).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        fcntl.flock(fd, fcntl.LOCK_UN)  # we got it: nobody writes the run
        return None
    finally:
        os.close(fd)


def stop_writer(run_dir: Path) -> int:
    """Send the run's live writer SIGINT (Ctrl+C: stop after the batch, marked cancelled); its pid.
    The process is pinned with a pidfd before the checks, where Linux has them, so the signal cannot
    reach a process that took the pid over between the check and the kill."""
    pidfd, pinned = None, None
    try:
        pinned = int(read_json(Path(run_dir) / STATUS)["pid"])
        pidfd = os.pidfd_open(pinned) if hasattr(os, "pidfd_open") else None
    except (OSError, ValueError, TypeError, KeyError):
        pidfd = None
    try:
        pid = live_writer(run_dir)
        if pinned is not None and pid != pinned:
            raise DamtuiError(f"{Path(run_dir).name} changed writer just now; look again before stopping it")
        try:
            if pidfd is not None and hasattr(signal, "pidfd_send_signal"):
                signal.pidfd_send_signal(pidfd, signal.SIGINT)
            else:
                os.kill(pid, signal.SIGINT)
        except ProcessLookupError:
            raise DamtuiError(f"pid {pid} ended just now: nothing to stop") from None
        except PermissionError:
            raise DamtuiError(f"pid {pid} belongs to another user: stop it as that user") from None
        return pid
    finally:
        if pidfd is not None:
            os.close(pidfd)
