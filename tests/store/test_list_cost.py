"""What listing the runs costs (issue 28, item 4): an ended run lists from status.json and
summary.json alone while the files the summary was computed from are unchanged (files.seal_of);
a running run is read from where the last listing stopped; nothing else changes in what lists."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from damtui import events as E
from damtui.store import files, runs
from support import demo_config, run_stage


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files opened from here on (every run-file read goes through os.open)."""
    names: list[str] = []
    real = os.open

    def spy(path, *args, **kw):
        names.append(Path(path).name)
        return real(path, *args, **kw)

    monkeypatch.setattr(os, "open", spy)
    return names


@pytest.fixture(scope="module")
def ended(tmp_path_factory: pytest.TempPathFactory, data_root: Path, pretrain_run: Path) -> Path:
    """A runs folder of ended runs of every kind: a finished pretrain, a fine-tune from it (with a
    two-stage answer and source_scores.npz) and a pretrain cancelled after its first epoch."""
    import shutil

    root = tmp_path_factory.mktemp("ended")
    pretrain = root / pretrain_run.name
    shutil.copytree(pretrain_run, pretrain)
    run_stage(demo_config("finetune", epochs=1), root, from_run=pretrain, data_root=data_root)
    stop = threading.Event()
    from damtui.train import engine

    engine.train(demo_config(epochs=3, seed=5), lambda e: stop.set() if isinstance(e, E.EpochMetrics) else None,
                 stop, runs_dir=root, device="cpu", data_root=data_root)
    return root


def test_every_ended_run_lists_from_its_summary_as_a_full_read_would(ended: Path, opened: list[str]) -> None:
    paths = sorted(p for p in ended.iterdir() if p.is_dir())
    states = set()
    for path in paths:
        opened.clear()
        row = runs.list_row(path)
        assert runs.METRICS not in opened and runs.SCORES not in opened and runs.SOURCE_SCORES not in opened
        assert row == runs.load_run(path).info  # what a read of every file says
        states.add((row.stage, row.status, row.answer is not None))
    assert states == {("pretrain", runs.FINISHED, False), ("finetune", runs.FINISHED, True),
                      ("pretrain", runs.CANCELLED, False)}


def test_a_run_whose_files_changed_since_its_summary_is_read_in_full(pretrain_copy: Path, opened: list[str]) -> None:
    st = (pretrain_copy / runs.METRICS).stat()
    os.utime(pretrain_copy / runs.METRICS, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # touched, not changed
    runs.list_row(pretrain_copy)
    assert runs.METRICS in opened and runs.SCORES in opened
    lines = (pretrain_copy / runs.METRICS).read_text().splitlines(keepends=True)
    (pretrain_copy / runs.METRICS).write_text("".join([lines[0], "{not json\n", *lines[1:]]))
    row = runs.list_row(pretrain_copy)
    assert row.status == runs.DAMAGED and "metrics.jsonl line 2: not a JSON object" in row.message


def test_a_run_written_before_the_seal_is_read_in_full(pretrain_copy: Path, opened: list[str]) -> None:
    sealed = runs.list_row(pretrain_copy)
    summary = json.loads((pretrain_copy / runs.SUMMARY).read_text())
    assert set(summary.pop(files.SEAL_KEY)) == set(files.SEALED)
    (pretrain_copy / runs.SUMMARY).write_text(json.dumps(summary))
    opened.clear()
    assert runs.list_row(pretrain_copy) == sealed and runs.METRICS in opened


def _running(path: Path, pid: int) -> None:
    status = json.loads((path / runs.STATUS).read_text())
    status.update(state=runs.RUNNING, pid=pid, pid_start=files.process_start(pid))
    (path / runs.STATUS).write_text(json.dumps(status))
    (path / runs.SUMMARY).unlink()


def test_a_running_run_is_read_from_where_the_last_listing_stopped(pretrain_copy, runs_dir, monkeypatch) -> None:
    _running(pretrain_copy, os.getpid())
    parsed: list[int] = []
    real = files._rows_of
    monkeypatch.setattr(files, "_rows_of", lambda data: parsed.append(len(data)) or real(data))
    (info,), _ = runs.list_runs(runs_dir)
    metrics = pretrain_copy / runs.METRICS
    lines = metrics.read_bytes().splitlines(keepends=True)
    assert info.status == runs.RUNNING and info.epochs_done == len(lines) and parsed == [metrics.stat().st_size]
    planned = info.epochs_planned
    status = json.loads((pretrain_copy / runs.STATUS).read_text())
    status.update(epochs=planned + 1, epoch=planned + 1)  # an extension trains one more epoch
    (pretrain_copy / runs.STATUS).write_text(json.dumps(status))
    new = json.dumps({**json.loads(lines[-1]), "epoch": len(lines) + 1, "val_auc": 1.0}).encode() + b"\n"
    with open(metrics, "ab") as fh:
        fh.write(new)
    parsed.clear()
    (info,), _ = runs.list_runs(runs_dir)
    assert parsed == [len(new)] and info.epochs_done == len(lines) + 1 and info.best.epoch == len(lines) + 1
    metrics.write_bytes(b"".join(lines[:1]))  # replaced by a shorter file (a resume's rewrite): read again
    parsed.clear()
    (info,), _ = runs.list_runs(runs_dir)
    assert parsed == [len(lines[0])] and info.epochs_done == 1


def test_a_listed_running_run_is_crashed_once_its_process_is_gone(pretrain_copy, runs_dir) -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _running(pretrain_copy, child.pid)
        (info,), _ = runs.list_runs(runs_dir)
        assert info.status == runs.RUNNING
    finally:
        child.kill()
        child.wait()
    stamp = runs.folder_stamp(pretrain_copy)
    (info,), _ = runs.list_runs(runs_dir)  # no file changed: the process is checked again
    assert info.status == runs.CRASHED and runs.folder_stamp(pretrain_copy) == stamp


def test_a_run_read_again_since_a_record_reads_the_rows_appended(pretrain_copy, monkeypatch) -> None:
    """The run page follows a long run by load_run(since=its last record): each poll parses the
    new rows, and gives what a read from scratch gives."""
    _running(pretrain_copy, os.getpid())
    first = runs.load_run(pretrain_copy)
    metrics = pretrain_copy / runs.METRICS
    size = metrics.stat().st_size
    status = json.loads((pretrain_copy / runs.STATUS).read_text())
    status.update(epochs=first.info.epochs_planned + 1)
    (pretrain_copy / runs.STATUS).write_text(json.dumps(status))
    with open(metrics, "ab") as fh:
        fh.write(json.dumps({**first.metrics[-1].to_json(), "epoch": len(first.metrics) + 1}).encode() + b"\n")
    parsed: list[int] = []
    real = files._rows_of
    monkeypatch.setattr(files, "_rows_of", lambda data: parsed.append(len(data)) or real(data))
    again = runs.load_run(pretrain_copy, since=first)
    assert parsed == [metrics.stat().st_size - size]
    assert again == runs.load_run(pretrain_copy) and len(again.metrics) == len(first.metrics) + 1
    assert "EpochRow" not in repr(again)  # a worker given the record describes it by its repr
