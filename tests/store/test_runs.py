import json
import os

import pytest
import torch

from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.records import EpochRow, RunSummary

CONFIG = {"dataset": "synthetic2d", "stage": "pretrain", "epochs": 3, "preset": "p", "seed": 1}


def test_round_trip(runs_dir):
    w = runs.RunWriter.create(runs_dir, CONFIG, {"device": "cpu"})
    for e in (1, 2):
        w.append_metrics(EpochRow.from_json({"epoch": e, "val_auc": 0.5 + e / 10, "test_auc": 0.6, "test_acc": 0.7,
                                             "nan": float("nan")}))
    w.save_checkpoint(runs.BEST, {"epoch": 2, "model": {"w": torch.ones(3)}})
    w.flush()  # checkpoints are written on a background thread; the engine flushes before it ends
    w.write_summary(RunSummary.of(rec_rows := runs.read_metrics(w.path)[0], run_id=w.run_id, status="finished",
                                  dataset="synthetic2d", stage="pretrain", preset="p"))
    w.write_status(runs.FINISHED, 2, 3)
    rec = runs.load_run(w.path)
    assert rec.config == CONFIG and rec.runtime == {"device": "cpu"}
    assert [r.epoch for r in rec.metrics] == [1, 2] and rec.metrics[0].value("nan") is None
    assert rec.metrics == rec_rows
    assert rec.info.status == runs.FINISHED and rec.info.best.epoch == 2 and rec.info.epochs_done == 2
    assert torch.equal(runs.load_checkpoint(w.path / runs.BEST)["model"]["w"], torch.ones(3))
    assert runs.resolve_run(runs_dir, w.run_id[-6:]) == w.path
    assert runs.resolve_run(runs_dir, str(w.path)) == w.path


def test_unique_folders_even_in_the_same_second(runs_dir):
    paths = {runs.RunWriter.create(runs_dir, CONFIG, {}).path for _ in range(20)}
    assert len(paths) == 20


def test_torn_last_line_is_skipped_then_read_when_complete(runs_dir):
    w = runs.RunWriter.create(runs_dir, CONFIG, {})
    w.append_metrics(EpochRow(1))
    with open(w.path / runs.METRICS, "ab") as fh:
        fh.write(b'{"epoch": 2, "val_')
    rows, offset = runs.read_metrics(w.path)
    assert [r.epoch for r in rows] == [1]
    with open(w.path / runs.METRICS, "ab") as fh:
        fh.write(b'auc": 0.9}\n')
    more, offset2 = runs.read_metrics(w.path, offset)
    assert more == [EpochRow(2, val_auc=0.9)] and offset2 > offset


def test_failed_write_keeps_old_file_and_removes_temp(runs_dir, monkeypatch):
    w = runs.RunWriter.create(runs_dir, CONFIG, {})
    first = RunSummary("r", "finished", "d", "pretrain", "p", 1)
    w.write_summary(first)

    def full_disk(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(DamtuiError, match="No space left on device.*previous version is intact"):
        w.write_summary(RunSummary("r", "finished", "d", "pretrain", "p", 2))
    assert RunSummary.from_json(json.loads((w.path / runs.SUMMARY).read_text())) == first
    assert not [p for p in w.path.iterdir() if p.name.endswith(".tmp")]


def test_foreign_entries_are_listed_as_ignored(runs_dir):
    runs.RunWriter.create(runs_dir, CONFIG, {})
    (runs_dir / "notes.txt").write_text("hi")
    (runs_dir / "other-folder").mkdir()
    (runs_dir / "bad-run").mkdir()
    (runs_dir / "bad-run" / runs.CONFIG).write_text("{not json")
    infos, ignored = runs.list_runs(runs_dir)
    assert len(infos) == 1 and sorted(ignored) == ["bad-run", "notes.txt", "other-folder"]
    with pytest.raises(DamtuiError, match="not a damtui run"):
        runs.resolve_run(runs_dir, "other-folder")


def test_dead_process_shows_as_crashed(runs_dir):
    w = runs.RunWriter.create(runs_dir, CONFIG, {})
    status = json.loads((w.path / runs.STATUS).read_text())
    assert runs.effective_status(status) == runs.RUNNING  # our own pid is alive
    assert status["pid_start"]  # Linux: the writer's start time is recorded
    assert runs.effective_status({**status, "pid_start": "1"}) == runs.CRASHED  # pid reused by another process
    status["pid"] = 2**22 + 12345  # beyond pid_max: never alive
    assert runs.effective_status(status) == runs.CRASHED
    status.update(host="elsewhere", updated=0)
    assert runs.effective_status(status) == runs.CRASHED


def test_foreign_checkpoints_are_refused_without_running_code(tmp_path):
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": runs.CHECKPOINT_FORMAT, "x": Evil()}))
    with pytest.raises(DamtuiError, match="not a damtui checkpoint"):
        runs.load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()
    torch.save({"model": {}}, tmp_path / "plain.pt")
    with pytest.raises(DamtuiError, match="no 'damtui-checkpoint-v1' marker"):
        runs.load_checkpoint(tmp_path / "plain.pt")


def test_named_runs_are_exclusive_and_take_over_an_empty_folder(runs_dir):
    w = runs.RunWriter.create(runs_dir, CONFIG, {}, name="sweep-a-seed0-pretrain")
    assert w.path.name == "sweep-a-seed0-pretrain"
    with pytest.raises(DamtuiError, match=f"being written by another damtui process \\(pid {os.getpid()}\\)"):
        runs.RunWriter.create(runs_dir, CONFIG, {}, name="sweep-a-seed0-pretrain")
    w.close()
    with pytest.raises(DamtuiError, match="already exists.*--resume sweep-a-seed0-pretrain"):
        runs.RunWriter.create(runs_dir, CONFIG, {}, name="sweep-a-seed0-pretrain")
    (runs_dir / "half-made").mkdir()  # a creation killed between mkdir and config.json
    assert runs.RunWriter.create(runs_dir, CONFIG, {}, name="half-made").path.name == "half-made"
    (runs_dir / "foreign").mkdir()
    (runs_dir / "foreign" / "data.txt").write_text("mine")
    with pytest.raises(DamtuiError, match="not a damtui run"):
        runs.RunWriter.create(runs_dir, CONFIG, {}, name="foreign")
    for bad in ("../escape", "new\nline", "back\\slash", "..", ".hidden", "tab\there"):
        with pytest.raises(DamtuiError, match="plain folder name"):
            runs.RunWriter.create(runs_dir, CONFIG, {}, name=bad)
    assert sorted(p.name for p in runs_dir.iterdir()) == ["foreign", "half-made", "sweep-a-seed0-pretrain"]


def test_checkpoint_thread_ends_after_flush(runs_dir):
    import threading

    w = runs.RunWriter.create(runs_dir, CONFIG, {})
    before = threading.active_count()
    w.save_checkpoint(runs.LAST, {"epoch": 1})
    w.flush()
    assert threading.active_count() == before
    w.save_checkpoint(runs.LAST, {"epoch": 2})  # a later save starts a new writer
    w.flush()
    assert runs.load_checkpoint(w.path / runs.LAST)["epoch"] == 2


def test_time_trained_leaves_out_the_hours_a_run_sat_cancelled(runs_dir, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(runs.time, "time", lambda: clock[0])
    w = runs.RunWriter.create(runs_dir, CONFIG, {"device": "cpu"})
    clock[0] += 120
    w.write_status(runs.CANCELLED, 2, 3, "cancelled by user")
    w.close()
    assert runs.load_run(w.path).info.duration_s == 120
    clock[0] += 5 * 3600  # five hours later: `damtui train --resume`
    w = runs.RunWriter.reopen(w.path, 3, 2)
    clock[0] += 60
    w.write_status(runs.FINISHED, 3, 3)
    w.close()
    info = runs.load_run(w.path).info
    assert info.duration_s == 180 and info.started == 1_000_000.0
    clock[0] += 3600  # and again: the extension counts both earlier sessions
    w = runs.RunWriter.reopen(w.path, 4, 3)
    clock[0] += 30
    w.write_status(runs.FINISHED, 4, 4)
    w.close()
    assert runs.load_run(w.path).info.duration_s == 210


def test_time_of_a_status_written_before_the_resume_fields(runs_dir):
    assert runs.trained_seconds({"started": 100.0, "updated": 160.0}) == 60.0
    assert runs.trained_seconds({}) == 0.0
