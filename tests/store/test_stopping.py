"""Stopping a run another process trains (issue 26: from the runs list / run page): only the
run's live writer gets Ctrl+C's SIGINT, and the run ends cancelled, resumable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from support import train_elsewhere

from damtui.errors import DamtuiError
from damtui.store import runs
from damtui.store.files import process_start
from damtui.store.stopping import live_writer, stop_writer


def _status(path: Path, **over) -> None:
    import socket

    status = {"state": runs.RUNNING, "pid": os.getpid(), "pid_start": process_start(os.getpid()),
              "host": socket.gethostname(), "started": time.time(), "updated": time.time(), "epoch": 1,
              "epochs": 4, "message": "", **over}
    runs.atomic_write_json(path / runs.STATUS, status)


@pytest.mark.parametrize("status, why", [
    ({"state": runs.CANCELLED}, "is cancelled, not running"),
    ({"host": "elsewhere"}, "trained on host elsewhere"),
    ({"pid": 99_999_999}, "is gone"),
    ({"pid_start": "1"}, "is gone"),  # our pid, another start time: a reused pid is not the run's writer
    ({"pid_start": None}, "does not say when"),
    ({}, "writer lock is held by no process"),  # this process, but it holds no lock on the run
])
def test_nothing_but_the_live_writer_is_signalled(tmp_path, status, why):
    run = tmp_path / "run"
    run.mkdir()
    _status(run, **status)
    with pytest.raises(DamtuiError, match=why):
        live_writer(run)


@pytest.mark.slow
def test_a_run_trained_by_another_process_stops_like_ctrl_c(tmp_path, runs_dir):
    proc = train_elsewhere(runs_dir, "elsewhere", tmp_path)
    run = runs_dir / "elsewhere"
    assert stop_writer(run) == proc.pid
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and b"stopping after this batch" in out
    info = runs.load_run(run).info
    assert (info.status, info.epochs_done) == (runs.CANCELLED, 1)
