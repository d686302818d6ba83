"""Reliability, second round (issue 13): one writer per run, no writes through planted links,
a fine-tune's source found in another runs dir, extensions keep their target, and bad inputs
refused up front with one line and no run folder left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from damtui.data import datasets
from damtui.train import engine
from damtui.store import runs
from damtui import events as E
from damtui.train.resume import resume_config
from support import demo_config, run_stage
from support import crash, one_line, tree


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    root = tmp_path_factory.mktemp("round2")
    summary, _ = run_stage(demo_config(epochs=1, width=4), root, data_root=data_root)
    return root / summary.run_id


@pytest.fixture
def crashed(finished: Path, runs_dir: Path) -> Path:
    dest = runs_dir / finished.name
    shutil.copytree(finished, dest)
    return crash(dest)


def test_a_second_writer_is_refused_with_the_holders_pid(damtui, crashed):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from damtui.store import runs; runs.RunLock.acquire(sys.argv[1]);"
         " print('locked', flush=True); sys.stdin.read()", str(crashed)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(crashed)
        rc, _, err = damtui("train", "--resume", crashed.name, "--device", "cpu")
        one_line(rc, err, f"is being written by another damtui process (pid {holder.pid})")
        assert tree(crashed) == before
    finally:
        holder.kill()  # SIGKILL: the kernel drops the lock
        holder.wait()
    rc, _, err = damtui("train", "--resume", crashed.name, "--device", "cpu")
    assert rc == 0, err


def test_the_engine_holds_the_lock_while_it_trains_and_drops_it_at_the_end(runs_dir, crashed):
    seen: list[str] = []

    def emit(ev):
        if isinstance(ev, E.RunStarted):
            with pytest.raises(Exception, match="being written by another damtui process"):
                runs.RunLock.acquire(crashed)
            seen.append("refused")

    summary = engine.train(resume_config(crashed), emit, threading.Event(), runs_dir=runs_dir, device="cpu",
                           resume=crashed)
    assert summary.status == "finished" and seen == ["refused"]
    runs.RunLock.acquire(crashed).release()  # free again


def test_planted_links_are_never_written_through(damtui, runs_dir, crashed, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in runs.RUN_FILES:  # links named like every temp file this process would write
        target = outside / name
        target.write_text("precious")
        (crashed / f".{name}.{os.getpid()}.tmp").symlink_to(target)
    rc, _, err = damtui("train", "--resume", crashed.name, "--epochs", "2", "--device", "cpu")
    assert rc == 0, err
    assert all((outside / name).read_text() == "precious" for name in runs.RUN_FILES)
    assert not any((crashed / name).is_symlink() for name in runs.RUN_FILES)
    assert len(runs.read_metrics(crashed)[0]) == 2


@pytest.mark.parametrize("name", [runs.METRICS, runs.STATUS, runs.LAST])
def test_a_run_file_that_is_a_link_is_damage(damtui, crashed, tmp_path, name):
    target = tmp_path / name
    shutil.copy(crashed / name, target)
    (crashed / name).unlink()
    (crashed / name).symlink_to(target)
    before = target.read_bytes()
    rc, _, err = damtui("train", "--resume", crashed.name, "--epochs", "2", "--device", "cpu")
    one_line(rc, err, "is a symbolic link, not a run file")
    assert target.read_bytes() == before


def test_a_finetune_from_another_runs_dir_resumes_after_dying_before_its_first_checkpoint(
        runs_dir, finished, tmp_path):
    stop = threading.Event()
    config = demo_config("finetune", epochs=1)
    part = engine.train(config, lambda ev: stop.set() if isinstance(ev, E.RunStarted) else None, stop,
                        runs_dir=runs_dir, device="cpu", from_run=finished)  # source: another dir
    path = runs_dir / part.run_id
    assert part.status == "cancelled" and not (path / runs.LAST).exists()
    summary, _ = run_stage(resume_config(path), runs_dir, resume=path)
    assert summary.status == "finished"


@pytest.mark.slow
def test_a_killed_extension_resumes_to_its_target(runs_dir, crashed):
    stop = threading.Event()
    run_stage(resume_config(crashed), runs_dir, resume=crashed)  # finalize: 1 epoch, finished
    engine.train(resume_config(crashed, epochs=3), lambda ev: stop.set() if isinstance(ev, E.EpochMetrics) else None,
                 stop, runs_dir=runs_dir, device="cpu", resume=crashed)
    assert runs.load_run(crashed).info.epochs_planned == 3 and len(runs.read_metrics(crashed)[0]) == 2
    assert resume_config(crashed).epochs == 3  # no --epochs needed again
    summary, _ = run_stage(resume_config(crashed), runs_dir, resume=crashed)
    assert summary.status == "finished" and summary.epochs_done == 3


def _one_image_split(root: Path) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 1), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 28, 28)).astype(np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(n, 1).astype(np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    np.savez(datasets.dataset_path("breastmnist", root), **arrays)
    return root


@pytest.mark.parametrize("args, expect", [
    (["synthetic2d", "--set", "batch_size=1"], "'batch_size'"),
    (["synthetic2d", "--seed", "-5"], "--seed takes a whole number >= 0"),
    (["synthetic2d", "--set", "seed=-5"], "'seed'"),
    (["synthetic2d", "--set", "weight_decay=inf"], "'weight_decay'"),
    (["synthetic2d", "--stage", "finetune", "--set", "decay_factor=inf"], "'decay_factor'"),
    (["synthetic2d", "--set", "lr=nan"], "'lr'"),
    (["synthetic2d", "--name", "two\nlines"], "plain folder name"),
    (["synthetic2d", "--name", "back\\slash"], "plain folder name"),
    (["synthetic2d", "--threads", "0"], "--threads takes"),
])
def test_bad_values_are_refused_before_any_folder(damtui, runs_dir, args, expect):
    rc, _, err = damtui("train", *args, "--device", "cpu")
    one_line(rc, err, expect)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_resume_with_zero_epochs_names_the_flag(damtui, crashed):
    rc, _, err = damtui("train", "--resume", crashed.name, "--epochs", "0", "--device", "cpu")
    one_line(rc, err, "--epochs takes a number of epochs >= 1")


def test_a_split_too_small_for_one_batch_is_one_line(damtui, runs_dir, tmp_path):
    root = _one_image_split(tmp_path / "tiny")
    rc, _, err = damtui("train", "breastmnist", "--data-root", str(root), "--set", "width=2", "--device", "cpu")
    one_line(rc, err, "has 1 training images: no batch of at least 2")
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_model_too_large_for_memory_is_one_line(damtui, runs_dir, monkeypatch):
    from damtui.train import stages

    def no_memory(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(stages, "make_model", no_memory)
    monkeypatch.setattr(engine, "make_model", no_memory)
    rc, _, err = damtui("train", "synthetic2d", "--set", "width=40000", "--device", "cpu")
    one_line(rc, err, "not enough memory to build a width-40000 model")
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


@pytest.mark.slow
def test_a_resumed_finetune_checkpoint_has_the_structure_of_an_uninterrupted_one(runs_dir, finished):
    def keys(obj, prefix=""):
        if isinstance(obj, dict):
            return {k2 for k, v in obj.items() for k2 in keys(v, f"{prefix}{k}.")}
        if isinstance(obj, list):
            return {k2 for i, v in enumerate(obj) for k2 in keys(v, f"{prefix}{i}.")}
        return {prefix}

    config = demo_config("finetune", epochs=2)
    full, _ = run_stage(config, runs_dir, from_run=finished)
    stop = threading.Event()
    part = engine.train(config, lambda ev: stop.set() if isinstance(ev, E.EpochMetrics) else None, stop,
                        runs_dir=runs_dir, device="cpu", from_run=finished)
    path = runs_dir / part.run_id
    run_stage(resume_config(path), runs_dir, resume=path)
    resumed = runs.load_checkpoint(path / runs.LAST)
    assert keys(resumed) == keys(runs.load_checkpoint(runs_dir / full.run_id / runs.LAST))
    assert "nesterov" not in json.dumps(sorted(keys(resumed["stage"])))


def _status(path: Path, **change) -> None:
    status = json.loads((path / runs.STATUS).read_text())
    (path / runs.STATUS).write_text(json.dumps({**status, **change}))


def _config(path: Path, config=None, **change) -> None:
    data = json.loads((path / runs.CONFIG).read_text())
    data["config"] = config if config is not None else {**data["config"], **change}
    (path / runs.CONFIG).write_text(json.dumps(data))


def _metrics(path: Path, edit) -> None:
    lines = (path / runs.METRICS).read_text().splitlines(keepends=True)
    (path / runs.METRICS).write_text("".join(edit(lines)))


DAMAGES = {
    "status pid 'abc'": lambda p: _status(p, state="running", pid="abc"),
    "status is a list": lambda p: (p / runs.STATUS).write_text("[1]"),
    "status epochs 'x'": lambda p: _status(p, epochs="x"),
    "config is a list": lambda p: _config(p, config=[1, 2]),
    "config seed 'x'": lambda p: _config(p, seed="x"),
    "metrics line 42": lambda p: _metrics(p, lambda ls: ["42\n", *ls[1:]]),
    "metrics line [1,2]": lambda p: _metrics(p, lambda ls: [*ls[:1], "[1, 2]\n", *ls[2:]]),
    "epoch 'two'": lambda p: _metrics(p, lambda ls: [ls[0], ls[1].replace('"epoch": 2', '"epoch": "two"')]),
    "bad line in the middle": lambda p: _metrics(p, lambda ls: [ls[0], "{not json\n", *ls[1:]]),
}


@pytest.fixture(scope="module")
def three_epochs(finished: Path, tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> Path:
    """The finished run extended by two epochs (3 rows), trained once for the module."""
    root = tmp_path_factory.mktemp("three")
    a = root / "a-damaged"
    shutil.copytree(finished, a)
    run_stage(resume_config(a, epochs=3), root, resume=a)
    return a


@pytest.fixture
def three_runs(finished: Path, three_epochs: Path, runs_dir: Path) -> list[Path]:
    """A copy of the 3-epoch run (to damage), plus two healthy copies of the finished run."""
    a = runs_dir / "a-damaged"
    shutil.copytree(three_epochs, a)
    for name in ("b-ok", "c-ok"):
        shutil.copytree(finished, runs_dir / name)
    return [a, runs_dir / "b-ok", runs_dir / "c-ok"]


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_run_lists_as_damaged_and_the_others_normally(damtui, runs_dir, three_runs, damage):
    bad = three_runs[0]
    DAMAGES[damage](bad)
    infos, ignored = runs.list_runs(runs_dir)
    by = {i.run_id: i for i in infos}
    assert by["a-damaged"].status == runs.DAMAGED and by["a-damaged"].message and not ignored
    assert by["b-ok"].status == by["c-ok"].status == runs.FINISHED
    rc, out, err = damtui("runs", "list")
    assert rc == 0 and "damaged" in out and "b-ok" in out and "Traceback" not in err, err
    rc, out, err = damtui("runs", "show", "a-damaged")
    assert rc == 0 and "damaged" in out, err
    assert damtui("runs", "compare", "a-damaged", "b-ok")[0] == 0
    before = tree(bad)
    rc, _, err = damtui("train", "--resume", "a-damaged", "--epochs", "5", "--device", "cpu")
    one_line(rc, err, "cannot be resumed")
    assert tree(bad) == before  # never rewritten


def test_a_bad_middle_line_names_file_and_line_and_keeps_the_rows_after_it(damtui, three_runs):
    bad = three_runs[0]
    DAMAGES["bad line in the middle"](bad)
    rc, _, err = damtui("train", "--resume", "a-damaged", "--epochs", "5", "--device", "cpu")
    one_line(rc, err, "metrics.jsonl line 2: not a JSON object")
    assert (bad / runs.METRICS).read_text().count("\n") == 4


def test_a_deleted_metrics_file_with_checkpoints_is_not_resumed(damtui, crashed):
    (crashed / runs.METRICS).unlink()
    rc, _, err = damtui("train", "--resume", crashed.name, "--epochs", "3", "--device", "cpu")
    one_line(rc, err, "has last.pt but no metrics.jsonl")
    assert (crashed / runs.LAST).exists() and not (crashed / runs.METRICS).exists()
