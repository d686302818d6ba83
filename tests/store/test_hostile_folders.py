"""Reliability, round 3 (issue 28): nothing in a run folder is followed out of it, waited on, read
without bound or trusted without a check; every such file is one line, and the other runs list.

The fast subset of the new cases in benchmarks/bad_inputs.py and benchmarks/fault_injection.py.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import threading
from pathlib import Path

import numpy as np
import pytest

from damtui.errors import DamtuiError
from damtui.store import files, log as run_log, notes as run_notes, runs, trash
from support import one_line


def _in_time(fn, seconds: float = 20.0):
    """fn() in a thread: its result, or a failure when it blocks (a FIFO read would hang for ever)."""
    out: dict = {}

    def call() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the test
            out["error"] = err

    t = threading.Thread(target=call, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "blocked: a read waited on a FIFO or device"
    if "error" in out:
        raise out["error"]
    return out["value"]


# ----------------------------------------------------------------------------- links, FIFOs, devices


def test_a_planted_sweep_log_link_is_never_written_through(tmp_path):
    root, outside = tmp_path / "runs", tmp_path / "outside.txt"
    outside.write_text("precious\n")
    logs = root / runs.SWEEPS_DIR / "s1" / "logs"
    logs.mkdir(parents=True)
    (logs / "r1.log").symlink_to(outside)
    with pytest.raises(DamtuiError, match="r1.log is a symbolic link"):
        runs.open_sweep_log(root, "s1", "r1")
    os.mkfifo(logs / "r2.log")  # a FIFO with no reader: opening it to write must not wait
    with pytest.raises(DamtuiError, match="r2.log is a FIFO"):
        _in_time(lambda: runs.open_sweep_log(root, "s1", "r2"))
    assert outside.read_text() == "precious\n"


def test_a_sweeps_or_trash_folder_that_is_a_link_is_refused(tmp_path, pretrain_copy, runs_dir):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (runs_dir / runs.SWEEPS_DIR).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DamtuiError, match=r"\.sweeps is a symbolic link"):
        runs.write_sweep_plan(runs_dir, "s1", {"sweep": "s1", "jobs": []})
    with pytest.raises(DamtuiError, match=r"\.sweeps is a symbolic link"):
        runs.open_sweep_log(runs_dir, "s1", "r1")
    assert runs.load_sweep_plans(runs_dir) == {}
    (runs_dir / trash.TRASH_DIR).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DamtuiError, match=r"\.trash is a symbolic link"):
        trash.delete_run(pretrain_copy)
    assert list(elsewhere.iterdir()) == [] and runs.is_run_dir(pretrain_copy)


def test_a_dangling_link_at_the_trash_destination_is_stepped_over(tmp_path):
    dest = tmp_path / "run-20261204-120000"
    dest.symlink_to(tmp_path / "nowhere")
    assert files.free_name(dest) == tmp_path / "run-20261204-120000~2"


def test_a_run_folder_that_is_a_link_is_not_a_run(tmp_path, pretrain_run, runs_dir):
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "linked").symlink_to(pretrain_run, target_is_directory=True)
    infos, ignored = runs.list_runs(runs_dir)
    assert infos == [] and ignored == ["linked"]
    with pytest.raises(DamtuiError, match="not a damtui run"):
        runs.load_run(runs_dir / "linked")


@pytest.mark.parametrize("name", [runs.LOG, runs.METRICS, runs.NOTES, runs.CONFIG, runs.SCORES])
def test_fifos_and_device_links_are_refused_without_waiting(pretrain_copy, runs_dir, name):
    path = pretrain_copy / name
    if path.exists():
        path.unlink()
    os.mkfifo(path)
    if name == runs.LOG:
        with pytest.raises(DamtuiError, match="log.txt is a FIFO"):
            _in_time(lambda: run_log.read_log(pretrain_copy))
    else:
        infos, ignored = _in_time(lambda: runs.list_runs(runs_dir))
        if name == runs.CONFIG:
            assert ignored == [pretrain_copy.name]
        else:
            (info,) = infos
            assert info.status == runs.DAMAGED and f"{name} is a FIFO" in info.message
    path.unlink()
    path.symlink_to("/dev/zero")  # read without bound, this was a MemoryError
    if name == runs.LOG:
        with pytest.raises(DamtuiError, match="log.txt is a symbolic link"):
            run_log.read_log(pretrain_copy)
    elif name != runs.CONFIG:
        (info,) = runs.list_runs(runs_dir)[0]
        assert info.status == runs.DAMAGED and f"{name} is a symbolic link" in info.message


@pytest.mark.parametrize("kind", ["FIFO", "symbolic link"])
@pytest.mark.parametrize("name", [runs.LAST, runs.BEST])
def test_a_checkpoint_that_is_a_fifo_or_a_link_is_refused_without_waiting(damtui, pretrain_copy, tmp_path, name, kind):
    """last.pt (what --resume loads) and best.pt (what --from loads) as a FIFO are never waited
    on, and as a link to a valid checkpoint outside the folder are never followed."""
    path, real = pretrain_copy / name, tmp_path / name
    shutil.move(path, real)
    before = real.read_bytes()
    if kind == "FIFO":
        os.mkfifo(path)
    else:
        path.symlink_to(real)
    with pytest.raises(DamtuiError, match=f"{name} is not a damtui checkpoint \\(a {kind}"):
        _in_time(lambda: runs.load_checkpoint(path))
    if name == runs.LAST:
        argv = ["train", "--resume", pretrain_copy.name, "--epochs", "9"]
    else:
        argv = ["train", "synthetic2d", "--stage", "finetune", "--preset", "demo", "--from", pretrain_copy.name]
    assert kind in one_line(*damtui(*argv, "--device", "cpu")[::2], f"{name} is ")
    assert real.read_bytes() == before


def test_log_txt_linked_to_a_system_file_is_not_shown(damtui, pretrain_copy):
    (pretrain_copy / runs.LOG).unlink(missing_ok=True)
    (pretrain_copy / runs.LOG).symlink_to("/etc/passwd")
    one_line(*damtui("runs", "log", pretrain_copy.name)[::2], "log.txt is a symbolic link")


# ----------------------------------------------------------------------------- bounds


def test_a_huge_metrics_file_is_damage_found_without_reading_it(pretrain_copy, monkeypatch):
    with open(pretrain_copy / runs.METRICS, "r+b") as fh:
        fh.truncate(100 * files.MB)  # sparse: 100 MB on paper, nothing on disk
    read, real = [], files._read
    monkeypatch.setattr(files, "_read", lambda fd, limit: read.append(os.readlink(f"/proc/self/fd/{fd}"))
                        or real(fd, limit))
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and "100.0 MB, more than" in info.message
    assert read and str(pretrain_copy / runs.METRICS) not in read


def test_more_rows_than_the_run_planned_is_damage(pretrain_copy):
    rows = (pretrain_copy / runs.METRICS).read_bytes().splitlines(keepends=True)
    planned = runs.load_run(pretrain_copy).info.epochs_planned
    extra = [json.dumps({**json.loads(rows[-1]), "epoch": n}).encode() + b"\n"
             for n in range(len(rows) + 1, planned + 3)]
    (pretrain_copy / runs.METRICS).write_bytes(b"".join(rows + extra))
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and f"more than the {planned} the run planned" in info.message


def test_a_row_with_more_thresholds_than_the_dataset_has_labels_is_damage(pretrain_copy):
    """A synthetic2d run has one label, so one threshold per row: a second one is not its row."""
    rows = (pretrain_copy / runs.METRICS).read_text().splitlines(keepends=True)
    first = json.loads(rows[0])
    assert len(first["threshold"]) == 1
    rows[0] = json.dumps({**first, "threshold": [0.5, 0.5]}) + "\n"
    (pretrain_copy / runs.METRICS).write_text("".join(rows))
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and "metrics.jsonl line 1: 2 thresholds for 1 labels" in info.message


@pytest.mark.parametrize("key, value, shown", [("updated", float("nan"), "NaN"), ("started", float("inf"), "Infinity"),
                                               ("updated", float("-inf"), "-Infinity")])
def test_a_status_number_that_is_nan_or_infinite_is_damage(pretrain_copy, key, value, shown):
    status = json.loads((pretrain_copy / runs.STATUS).read_text())
    (pretrain_copy / runs.STATUS).write_text(json.dumps({**status, key: value}))  # NaN, Infinity as JSON
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and f"status.json: '{key}' is {shown}, not a number" in info.message


def test_the_log_view_reads_a_bounded_tail(pretrain_copy, monkeypatch):
    monkeypatch.setattr(files, "LOG_TAIL", 4096)
    monkeypatch.setattr(run_log, "read_tail", lambda p, s: files.read_tail(p, s, 4096))
    (pretrain_copy / runs.LOG).write_text("".join(f"line {i}\n" for i in range(5000)))
    lines, offset = run_log.read_log(pretrain_copy)
    assert lines[0].startswith("[") and "of earlier log not shown" in lines[0] and lines[-1] == "line 4999"
    assert len(lines) < 600 and offset == (pretrain_copy / runs.LOG).stat().st_size


def test_an_unchanged_runs_folder_is_not_read_again(pretrain_copy, runs_dir, monkeypatch):
    """The app lists the runs every two seconds: while nothing changes it must read nothing."""
    first, _ = runs.list_runs(runs_dir)
    calls = []
    real = runs._list_row
    monkeypatch.setattr(runs, "_list_row", lambda p, since: calls.append(p) or real(p, since))
    assert runs.list_runs(runs_dir)[0] == first and calls == []
    run_notes.rename_run(pretrain_copy, "changed")  # a change is read at once
    (info,), _ = runs.list_runs(runs_dir)
    assert info.notes.name == "changed" and calls == [pretrain_copy]


# ----------------------------------------------------------------------------- scores.npz


def _rewrite(path: Path, **change) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays.update(change)
    for k in [k for k, v in change.items() if v is None]:
        arrays.pop(k)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _big(path: Path) -> None:
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["test_scores"] = np.zeros(5_000_000, np.float32)
    arrays["test_labels"] = np.zeros(5_000_000, np.int64)
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)  # a few kB that declare 5,000,000 rows for a 200-image test set


SCORE_DAMAGE = [
    ("truncated", lambda p: p.write_bytes(p.read_bytes()[:300]), "not a readable .npz"),
    ("0-d scores", lambda p: _rewrite(p, test_scores=np.float32(0.5)), "test_scores has shape ()"),
    ("string dtype", lambda p: _rewrite(p, val_scores=np.array(["a", "b"])), "val_scores holds <U1"),
    ("threshold shape", lambda p: _rewrite(p, val_threshold=np.zeros(3)), "val_threshold has shape (3,)"),
    ("labels (N, 2)", lambda p: _rewrite(p, test_labels=np.zeros((200, 2), np.int64)), "test_labels has shape (200, 2)"),
    ("NaN scores", lambda p: _rewrite(p, test_scores=np.full(200, np.nan, np.float32)), "hold NaN or infinite values"),
    ("empty", lambda p: _rewrite(p, val_scores=np.zeros(0, np.float32), val_labels=np.zeros(0, np.int64)),
     "val_scores has 0 rows"),
    ("labels all 7", lambda p: _rewrite(p, test_labels=np.full(200, 7, np.int64)), "not all 0 or 1 (found [7])"),
    ("5,000,000 rows", _big, "test_scores has 5000000 rows; the test split has 200"),
    ("epoch 99", lambda p: _rewrite(p, epoch=np.int64(99)), "epoch 99 is not one of the run's epochs"),
    ("missing array", lambda p: _rewrite(p, val_labels=None), "no array 'val_labels'"),
    ("object array", lambda p: _rewrite(p, test_scores=np.array([{"x": 1}] * 200, dtype=object)),
     "test_scores holds object"),
]


@pytest.mark.parametrize("damage, expect", [c[1:] for c in SCORE_DAMAGE], ids=[c[0] for c in SCORE_DAMAGE])
def test_damaged_scores_are_one_line_and_the_run_lists_damaged(damtui, pretrain_copy, damage, expect):
    damage(pretrain_copy / runs.SCORES)
    with pytest.raises(runs.ScoresDamage, match=expect.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        runs.load_scores(pretrain_copy)
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and expect in info.message
    for cmd in (["runs", "curves"], ["runs", "mistakes"]):
        one_line(*damtui(*cmd, pretrain_copy.name)[::2], expect)
    rc, out, err = damtui("runs", "compare", pretrain_copy.name, pretrain_copy.name)
    assert rc == 0 and "damaged" in out and "Traceback" not in err


# ----------------------------------------------------------------------------- progress.json


@pytest.mark.parametrize("field, value", [
    ("train_elapsed_s", float("inf")), ("train_elapsed_s", 1e300), ("images_per_s", float("nan")),
    ("train_elapsed_s", -5.0), ("batch", 99), ("epoch", 0),
])
def test_a_progress_record_out_of_range_is_not_shown(pretrain_copy, field, value):
    from damtui.store.progress import Progress, TRAIN

    good = Progress(1, 2, 3, 10, TRAIN, 100.0, 12.0, 400, 1.0).to_json()
    (pretrain_copy / runs.PROGRESS).write_text(json.dumps(good))
    assert runs.read_progress(pretrain_copy) is not None
    (pretrain_copy / runs.PROGRESS).write_text(json.dumps({**good, field: value}))  # Infinity, NaN as JSON
    assert runs.read_progress(pretrain_copy) is None


def test_time_formats_never_overflow():
    from damtui.tui.format import duration, eta

    assert eta(float("inf")) == duration(float("inf")) == eta(float("nan")) == "-"


# ----------------------------------------------------------------------------- notes.json


@pytest.mark.parametrize("write, expect", [
    (lambda p: p.write_text('{"name": "keep me", "tags": ["a"'), "notes.json: not readable JSON"),
    (lambda p: p.write_text('["keep me"]'), "notes.json: not a JSON object"),
    (lambda p: p.write_text('{"tags": "a b"}'), "'tags' is not a list of words"),
    (lambda p: p.mkdir(), "notes.json is a folder, not a regular file"),
])
def test_a_damaged_notes_file_is_reported_and_never_replaced(damtui, pretrain_copy, write, expect):
    path = pretrain_copy / runs.NOTES
    write(path)
    before = path.read_bytes() if path.is_file() else None
    info = runs.load_run(pretrain_copy).info
    assert info.status == runs.DAMAGED and expect in info.message
    one_line(*damtui("runs", "tag", pretrain_copy.name, "good")[::2], expect)
    assert "free disk space" not in damtui("runs", "tag", pretrain_copy.name, "good")[2]
    assert (path.read_bytes() if path.is_file() else None) == before


def test_notes_with_terminal_escapes_are_refused(damtui, pretrain_copy):
    one_line(*damtui("runs", "note", pretrain_copy.name, "x\x1b]0;PWNED\x07\x1b[2Jy")[::2],
             "remove the control character '\\x1b'")
    assert not (pretrain_copy / runs.NOTES).exists()


# ----------------------------------------------------------------------------- the writer's lock


def test_a_refused_writer_leaves_the_lock_file_as_it_was(damtui, pretrain_copy, runs_dir):
    lock = pretrain_copy / runs.LOCK
    lock.write_text("4242\n")  # the pid of the process that wrote the run
    one_line(*damtui("train", "--resume", pretrain_copy.name, "--device", "cpu")[::2], "already has")
    one_line(*damtui("train", "synthetic2d", "--name", pretrain_copy.name, "--device", "cpu")[::2],
             "already exists")
    trash.check_deletable(pretrain_copy)  # takes the lock to check, writes nothing
    assert lock.read_text() == "4242\n"


# ----------------------------------------------------------------------------- exact resolution


def test_delete_resolves_exactly_in_the_runs_folder(damtui, pretrain_run, runs_dir, tmp_path, monkeypatch):
    for name in ("alpha", "beta"):
        shutil.copytree(pretrain_run, runs_dir / name)
    cwd = tmp_path / "cwd"
    shutil.copytree(pretrain_run, cwd / "alpha")  # a same-named folder where the command runs
    monkeypatch.chdir(cwd)
    one_line(*damtui("runs", "delete", "et", "--yes", "--runs-dir", str(runs_dir))[::2], "no run 'et'")
    one_line(*damtui("runs", "delete", str(cwd / "alpha"), "--yes", "--runs-dir", str(runs_dir))[::2],
             "is not in the runs folder")
    rc, out, err = damtui("runs", "delete", "alpha", "--yes", "--runs-dir", str(runs_dir))
    assert rc == 0, err
    assert runs.is_run_dir(cwd / "alpha") and not (runs_dir / "alpha").exists()
    assert runs.is_run_dir(runs_dir / "beta")
    rc, _, err = damtui("runs", "delete", "be", "--yes", "--runs-dir", str(runs_dir))  # an unambiguous start
    assert rc == 0, err and not (runs_dir / "beta").exists()


# ----------------------------------------------------------------------------- files the user names


@pytest.mark.parametrize("target, expect", [
    ("/", "is a folder, not a file name"), (".", "is a folder, not a file name"),
    ("DIR", "is a folder: name a file in it"), ("/proc/self/status", "could not write"),
])
def test_an_export_to_a_folder_or_a_system_file_is_one_line(damtui, pretrain_copy, tmp_path, target, expect):
    target = str(tmp_path) if target == "DIR" else target
    for flag in ("--csv", "--md"):
        rc, _, err = damtui("runs", "export", pretrain_copy.name, flag, target)
        one_line(rc, err, expect)
        assert "free disk space" not in err
    one_line(*damtui("runs", "mistakes", pretrain_copy.name, "--png", target, "--limit", "0")[::2], expect)


def test_an_export_keeps_the_file_mode_and_makes_its_folder(damtui, pretrain_copy, tmp_path):
    out = tmp_path / "private.csv"
    out.write_text("old\n")
    out.chmod(0o600)
    rc, _, err = damtui("runs", "export", pretrain_copy.name, "--csv", str(out), "--md",
                        str(tmp_path / "new" / "folder" / "r.md"))
    assert rc == 0, err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and out.read_text() != "old\n"
    assert (tmp_path / "new" / "folder" / "r.md").is_file()


# ----------------------------------------------------------------------------- checks of values


@pytest.mark.parametrize("argv, expect", [
    (["--set", "epochs=true"], "'epochs': Input should be a valid integer"),
    (["--set", "seed=99999999999999999999"], "'seed': Input should be less than or equal to 2147483647"),
    (["--set", "epochs=1000000"], "'epochs': Input should be less than or equal to 10000"),
    (["--seed", "99999999999999999999"], "--seed takes a whole number >= 0 and at most 2147483647"),
    (["--seeds", "0,99999999999999999999"], "'seed': Input should be less than or equal to 2147483647"),
])
def test_impossible_numbers_are_refused_before_a_folder_is_made(damtui, runs_dir, argv, expect):
    one_line(*damtui("train", "synthetic2d", "--device", "cpu", *argv)[::2], expect)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
