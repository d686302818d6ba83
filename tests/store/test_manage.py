"""Managing saved runs: delete (to the trash, refusals), rename, notes, tags, the run's log, in
the run store and through `damtui runs ...`, plus notes in listings and exports."""

from __future__ import annotations

import csv
import io
import os
import socket
from pathlib import Path

import pytest

from damtui import cli
from damtui.analysis import compare
from damtui.store import log as run_log, notes as run_notes, runs, trash
from damtui.errors import DamtuiError
from damtui.records import EpochRow


def _row(epoch: int) -> EpochRow:
    return EpochRow.from_json({"epoch": epoch, "train_loss": 0.5, "val_auc": 0.7 + epoch / 100,
                               "test_auc": 0.69, "test_acc": 0.6, "val_acc": 0.6})


def write_run(root: Path, name: str, state: str = runs.FINISHED, stage: str = "pretrain",
              source: Path | None = None, pid: int | None = None, host: str | None = None) -> Path:
    path = root / name
    path.mkdir(parents=True)
    runtime = {"device": "cpu"}
    if source is not None:
        runtime.update(from_run=source.name, from_run_path=str(source.resolve()))
    runs.atomic_write_json(path / runs.CONFIG, {"config": {"dataset": "synthetic2d", "stage": stage,
                                                           "preset": "demo", "epochs": 2, "seed": 0},
                                                "runtime": runtime})
    runs.RunWriter(path).append_metrics(_row(1))
    runs.atomic_write_json(path / runs.STATUS, {
        "state": state, "pid": os.getpid() if pid is None else pid, "host": host or socket.gethostname(),
        "started": 1.0e9, "updated": 1.0e9 + 60, "epoch": 1, "epochs": 2, "message": ""})
    return path


@pytest.fixture
def root(tmp_path) -> Path:
    path = tmp_path / "runs"
    path.mkdir()
    return path


def damtui(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


# ----------------------------------------------------------------------------- the run store


def test_delete_moves_the_run_to_the_trash_and_keeps_the_others(root):
    a, b = write_run(root, "a"), write_run(root, "b")
    dest = trash.delete_run(a)
    assert not a.exists() and dest.parent == root / ".trash" and (dest / runs.METRICS).is_file()
    assert [r.run_id for r in runs.list_runs(root)[0]] == ["b"] and (b / runs.METRICS).is_file()
    again = write_run(root, "a")  # the same name deleted twice keeps both copies
    assert trash.delete_run(again) != dest and len(list((root / ".trash").iterdir())) == 2


def test_delete_refuses_a_run_being_written(root):
    path = write_run(root, "live", state=runs.RUNNING)
    lock = runs.RunLock.acquire(path)
    try:
        with pytest.raises(DamtuiError, match="being written"):
            trash.delete_run(path)
    finally:
        lock.release()
    assert path.is_dir()


def test_delete_refuses_a_run_another_host_writes(root):
    path = write_run(root, "remote", state=runs.RUNNING, host="elsewhere")
    status = runs.read_json(path / runs.STATUS)
    runs.atomic_write_json(path / runs.STATUS, {**status, "updated": __import__("time").time()})
    with pytest.raises(DamtuiError, match="is running"):
        trash.delete_run(path)
    assert path.is_dir()


def test_delete_of_a_source_needs_force(root):
    src = write_run(root, "src")
    ft = write_run(root, "ft", stage="finetune", source=src)
    assert trash.fine_tunes_of(src) == ["ft"] and trash.fine_tunes_of(ft) == []
    with pytest.raises(DamtuiError, match="--from source of ft.*--force"):
        trash.delete_run(src)
    assert src.is_dir()
    trash.delete_run(src, force=True)
    assert not src.exists() and ft.is_dir()


def test_notes_tags_and_name_are_stored_typed_and_listed(root):
    path = write_run(root, "r1")
    run_notes.rename_run(path, "  baseline  ")
    run_notes.set_notes(path, "first try\nlr too high")
    run_notes.tag_run(path, ["good", "lr", "good"])
    run_notes.tag_run(path, ["lr"], remove=True)
    notes = run_notes.load_notes(path)
    assert notes == run_notes.RunNotes(name="baseline", text="first try\nlr too high", tags=("good",))
    assert notes.first_line == "first try"
    info = runs.list_runs(root)[0][0]
    assert info.run_id == "r1" and info.notes == notes  # the folder name stays the identity
    with pytest.raises(DamtuiError, match="one word"):
        run_notes.tag_run(path, ["two words"])
    (path / runs.NOTES).write_text("[1, 2]")  # a hand-broken file hides nothing
    assert runs.list_runs(root)[0][0].notes == run_notes.RunNotes()


def test_log_lines_are_read_whole_and_followed(root):
    path = write_run(root, "r1")
    assert run_log.read_log(path) is None
    run_log.append_log(path, "one\ntwo")
    lines, offset = run_log.read_log(path)
    assert [line.split(" ", 1)[1] for line in lines] == ["one", "two"]
    with open(path / runs.LOG, "ab") as fh:
        fh.write(b"half a li")
    assert run_log.read_log(path, offset) == ([], offset)  # the line being written waits
    with open(path / runs.LOG, "ab") as fh:
        fh.write(b"ne\n")
    assert run_log.read_log(path, offset)[0] == ["half a line"]


def test_exports_carry_names_tags_and_notes(root):
    a, b = write_run(root, "a"), write_run(root, "b")
    plain = compare.to_csv([runs.load_run(a), runs.load_run(b)])
    assert "tags" not in plain.splitlines()[0]  # no columns when nobody wrote any
    run_notes.rename_run(a, "baseline")
    run_notes.tag_run(a, ["good", "v1"])
    run_notes.set_notes(b, "a note, with | bars\nand lines")
    records = [runs.load_run(a), runs.load_run(b)]
    rows = list(csv.DictReader(io.StringIO(compare.to_csv(records))))
    assert (rows[0]["name"], rows[0]["tags"], rows[1]["notes"]) == ("baseline", "good v1",
                                                                   "a note, with | bars\nand lines")
    md = compare.to_markdown(records)
    assert "| tags | good v1 |" in md and "a note, with \\| bars and lines" in md


@pytest.mark.slow
def test_the_engine_writes_the_run_log(tmp_path):
    from support import demo_config, run_stage

    summary, _ = run_stage(demo_config(epochs=1), tmp_path / "runs")
    path = tmp_path / "runs" / summary.run_id
    lines, _ = run_log.read_log(path)
    text = "\n".join(lines)
    assert f"run {summary.run_id}" in text and "*best" in text and "finished: best" in text


# ----------------------------------------------------------------------------- the CLI


def test_cli_rename_note_tag_show_and_list(root, capsys):
    write_run(root, "20240601-120000-synthetic2d-pretrain-abc123")
    assert damtui(capsys, "runs", "rename", "abc123", "my run", "--runs-dir", str(root))[0] == 0
    assert damtui(capsys, "runs", "note", "abc123", "works", "well", "--runs-dir", str(root))[0] == 0
    rc, out, _ = damtui(capsys, "runs", "tag", "abc123", "good", "demo", "--runs-dir", str(root))
    assert rc == 0 and "tags good, demo" in out
    rc, out, _ = damtui(capsys, "runs", "tag", "abc123", "demo", "--remove", "--runs-dir", str(root))
    assert rc == 0 and out.strip().endswith("tags good")
    rc, out, _ = damtui(capsys, "runs", "show", "abc123", "--runs-dir", str(root))
    assert "name: my run" in out and "tags: good" in out and "notes: works well" in out
    rc, out, _ = damtui(capsys, "runs", "list", "--runs-dir", str(root))
    assert "name #tags" in out and "my run #good" in out
    rc, out, _ = damtui(capsys, "runs", "show", "my run", "--runs-dir", str(root))  # by its display name
    assert rc == 0 and out.startswith("20240601-120000-synthetic2d-pretrain-abc123")


def test_cli_delete_asks_for_yes_refuses_running_and_sources(root, capsys):
    src = write_run(root, "src")
    write_run(root, "ft", stage="finetune", source=src)
    live = write_run(root, "live", state=runs.RUNNING)
    rc, _, err = damtui(capsys, "runs", "delete", "src", "--yes", "--runs-dir", str(root))
    assert rc == 1 and "--from source of ft" in err and src.is_dir()
    lock = runs.RunLock.acquire(live)
    try:
        rc, _, err = damtui(capsys, "runs", "delete", "live", "--yes", "--runs-dir", str(root))
    finally:
        lock.release()
    assert rc == 1 and "being written" in err and live.is_dir()
    rc, _, err = damtui(capsys, "runs", "delete", "ft", "--runs-dir", str(root))  # stdin is not a TTY
    assert rc == 1 and "add --yes" in err and (root / "ft").is_dir()
    rc, out, _ = damtui(capsys, "runs", "delete", "ft", "--yes", "--runs-dir", str(root))
    assert rc == 0 and "moved to" in out and not (root / "ft").exists()
    rc, out, _ = damtui(capsys, "runs", "delete", "src", "--yes", "--runs-dir", str(root))
    assert rc == 0 and not src.exists()  # no fine-tune names it any more


def test_cli_delete_force_deletes_a_source(root, capsys):
    src = write_run(root, "src")
    write_run(root, "ft", stage="finetune", source=src)
    rc, out, _ = damtui(capsys, "runs", "delete", "src", "--yes", "--force", "--runs-dir", str(root))
    assert rc == 0 and not src.exists() and (root / "ft").is_dir()


def test_cli_log_prints_the_run_log_or_says_there_is_none(root, capsys):
    path = write_run(root, "r1")
    rc, _, err = damtui(capsys, "runs", "log", "r1", "--runs-dir", str(root))
    assert rc == 1 and "no log.txt" in err and "\n" not in err.strip()
    run_log.append_log(path, "epoch line")
    rc, out, _ = damtui(capsys, "runs", "log", "r1", "--runs-dir", str(root))
    assert rc == 0 and out.strip().endswith("epoch line")


def test_cli_bad_input_is_one_line(root, capsys):
    write_run(root, "r1")
    for args in (["runs", "rename", "r1"], ["runs", "tag", "r1"], ["runs", "tag", "r1", "a,b"],
                 ["runs", "delete"], ["runs", "delete", "nope", "--yes"]):
        rc, _, err = damtui(capsys, *args, "--runs-dir", str(root))
        assert rc == 1 and err.startswith("damtui: error: ") and "\n" not in err.strip(), (args, err)


def test_cli_delete_asks_on_a_terminal(root, capsys, monkeypatch):
    write_run(root, "r1")
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    answers = iter(["n", "y"])
    monkeypatch.setattr("builtins.input", lambda prompt: next(answers))
    rc, out, _ = damtui(capsys, "runs", "delete", "r1", "--runs-dir", str(root))
    assert rc == 1 and "not deleted" in out and (root / "r1").is_dir()
    rc, out, _ = damtui(capsys, "runs", "delete", "r1", "--runs-dir", str(root))
    assert rc == 0 and not (root / "r1").exists()


def test_a_deleted_run_is_listed_in_the_trash_and_restored_under_its_name(tmp_path):
    """Issue 26: restoring from the trash (W&B users reached for it)."""
    name = "20240601-120000-synthetic2d-pretrain-aaaaaa"
    write_run(tmp_path, name)
    first = trash.delete_run(tmp_path / name)
    write_run(tmp_path, name)  # a new run of the same name, deleted too
    second = trash.delete_run(tmp_path / name)
    found = trash.trashed_runs(tmp_path)
    assert sorted(t.path for t in found) == sorted([first, second]) and {t.name for t in found} == {name}
    assert runs.list_runs(tmp_path)[0] == []  # the trash is not a run
    back = trash.restore_run(first)
    assert back == tmp_path / name and runs.load_run(back).info.run_id == name
    with pytest.raises(DamtuiError, match="exists; rename or delete it first"):
        trash.restore_run(second)  # its name is taken again: refused, nothing moved
    assert second.is_dir()
    with pytest.raises(DamtuiError, match="not a run in the trash"):
        trash.restore_run(tmp_path / name)
