"""The headless CLI as a user runs it: exit codes and one-line errors, in-process through
`cli.main` (the `damtui` fixture) and, where a process's life matters, as real subprocesses."""

import json
import os
import signal
import subprocess
import sys

import pytest

from damtui.store import runs
from support import REAL_DATA


def damtui_process(*args, env=None, timeout=300):
    """A real `python -m damtui.cli` process (timeout: a hang guard only)."""
    return subprocess.run([sys.executable, "-m", "damtui.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def _one_line(rc: int, err: str) -> str:
    assert rc != 0
    err = err.strip()
    assert err.startswith("damtui: error: ") and "\n" not in err and "Traceback" not in err, err
    return err


def _one_line_error(proc: subprocess.CompletedProcess) -> str:
    return _one_line(proc.returncode, proc.stderr)


def test_help_answers_without_importing_torch_or_textual():
    """What keeps `damtui --help` instant (its time is measured in benchmarks, not here)."""
    code = ("import sys; from damtui import cli\n"
            "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'textual', 'medmnist', 'libauc') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "train" in proc.stdout, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.slow
def test_a_bad_input_in_a_real_process_is_one_line():
    err = _one_line_error(damtui_process("train", "synthetic2d", "--set", "lr=0"))
    assert "'lr'" in err


@pytest.mark.slow
def test_demo_pretrain_then_finetune_from_latest(runs_dir):
    proc = damtui_process("train", "synthetic2d", "--stage", "pretrain", "--preset", "demo", "--device", "cpu",
                          "--set", "epochs=2")  # the README command, two of its five epochs
    assert proc.returncode == 0, proc.stderr
    assert "finished: best val AUC" in proc.stdout
    proc = damtui_process("train", "synthetic2d", "--stage", "finetune", "--from", "latest", "--device", "cpu",
                          "--set", "epochs=1")
    assert proc.returncode == 0, proc.stderr
    infos, _ = runs.list_runs(runs_dir)
    assert [i.stage for i in infos] == ["finetune", "pretrain"]
    assert infos[0].from_run == infos[1].run_id
    listing = damtui_process("runs")
    assert infos[0].run_id in listing.stdout
    show = damtui_process("runs", "show", infos[1].run_id[-6:])
    assert "best val AUC" in show.stdout
    out = runs_dir.parent / "cmp.csv"
    exp = damtui_process("runs", "export", infos[0].run_id, infos[1].run_id, "--csv", str(out), "--md", str(out.with_suffix(".md")))
    assert exp.returncode == 0, exp.stderr
    assert out.read_text().count("\n") >= 3 and out.with_suffix(".md").exists()


@pytest.mark.parametrize("args, expect", [
    (["train", "nosuchmnist"], "unknown dataset"),
    (["train", "pathmnist"], "multi-class"),
    (["train", "breastmnist", "--device", "cpu"], "damtui datasets fetch breastmnist"),
    (["train", "synthetic2d", "--set", "lr=0"], "'lr'"),
    (["train", "synthetic2d", "--set", "epochs=-1"], "'epochs'"),
    (["train", "synthetic2d", "--set", "colour=red"], "unknown key"),
    (["train", "synthetic2d", "--preset", "nope"], "choose one of"),
    (["train", "synthetic2d", "--stage", "finetune"], "add --from RUN"),
    (["train", "synthetic2d", "--stage", "finetune", "--from", "nothing-like-this"], "no run"),
    (["train", "--resume", "nothing-like-this"], "no run"),
    (["train", "synthetic2d", "--device", "cuda:7"], "cuda"),
    (["runs", "show"], "needs at least one RUN"),
    (["presets", "show", "nope"], "no preset"),
    (["presets", "validate", "/nonexistent.toml"], "no such preset file"),
])
def test_bad_input_is_one_line(damtui, runs_dir, args, expect):
    rc, _, err = damtui(*args)
    assert expect in _one_line(rc, err)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())  # no run folder left behind


def test_app_with_a_data_root_that_does_not_exist_is_one_line(damtui, tmp_path, monkeypatch):
    """`damtui --data-root /does/not/exist` opened the app with every dataset 'missing'."""
    from damtui.tui import app

    monkeypatch.setattr(app, "run_app", lambda **kw: pytest.fail("the app was started"))
    missing = tmp_path / "does" / "not" / "exist"
    rc, _, err = damtui("--data-root", str(missing))
    assert f"--data-root {missing} does not exist" in _one_line(rc, err)
    assert f"damtui datasets fetch FLAG --data-root {missing}" in err
    (tmp_path / "file").write_text("x")
    rc, _, err = damtui("--data-root", str(tmp_path / "file"))
    assert "is not a folder" in _one_line(rc, err)
    rc, out, _ = damtui("--data-root", str(missing), "datasets", "list")
    assert rc == 0 and f"data root: {missing} (no such folder)" in out


def test_runs_dir_not_writable(damtui, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = damtui("train", "synthetic2d", "--runs-dir", str(blocker / "runs"), "--device", "cpu")
    assert "choose --runs-dir" in _one_line(rc, err)


def test_presets_and_datasets_commands(damtui):
    rc, out, _ = damtui("presets", "validate")
    assert rc == 0 and out.count("ok ") >= 24
    rc, out, _ = damtui("presets", "list", "--dataset", "breastmnist", "--stage", "finetune")
    assert "breastmnist-finetune-report-nodropout" in out and "adrenal" not in out
    rc, out, _ = damtui("datasets")
    assert rc == 0
    lines = {l.split()[0]: l for l in out.splitlines()[2:] if l.strip()}
    assert "synthetic" in lines["synthetic2d"] and "missing" in lines["chestmnist"]
    assert "multi-label" in lines["chestmnist"] and "3D" in lines["vesselmnist3d"]


@pytest.mark.slow
def test_sigkill_leaves_a_readable_crashed_run(runs_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--device", "cpu", "--set", "epochs=50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while len([l for l in lines if l.strip().split(" ")[0].isdigit()]) < 2:
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    (info,), ignored = runs.list_runs(runs_dir)
    assert info.status == runs.CRASHED and info.epochs_done >= 2 and not ignored
    rec = runs.load_run(info.path)
    assert all(r.val_auc is not None for r in rec.metrics)
    # last.pt is written in the background, so it may be one epoch behind the printed lines;
    # resume redoes that epoch exactly (docs/RELIABILITY.md)
    assert runs.load_checkpoint(info.path / runs.LAST)["epoch"] >= info.epochs_done - 1
    json.loads((info.path / runs.STATUS).read_text())
    resumed = damtui_process("train", "--resume", info.run_id, "--epochs", str(info.epochs_done + 1), "--device", "cpu")
    assert resumed.returncode == 0, resumed.stderr
    assert runs.load_run(info.path).info.status == runs.FINISHED


@pytest.mark.slow
def test_ctrl_c_marks_the_run_cancelled(runs_dir):
    proc = subprocess.Popen(
        [sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--device", "cpu", "--set", "epochs=50"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while True:
        line = proc.stdout.readline()
        assert line
        if line.strip().split(" ")[0].isdigit():
            break
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    (info,), _ = runs.list_runs(runs_dir)
    assert info.status == runs.CANCELLED


# The console script's start, with a Ctrl+C at one moment: when the import system looks for
# damtui.cli, after the package damtui has run and before any line of damtui.cli has (a handler
# installed by damtui.cli itself came too late for it).
CTRL_C_WHILE_STARTING = """
import os, signal, sys
sys.argv[0] = {argv0!r}

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "damtui.cli":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
from damtui.cli import main
sys.exit(main(["--version"]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("argv0, program", [("/usr/local/bin/damtui", True), ("-m", True), ("-c", False)],
                         ids=["console-script", "python-m", "library-import"])
def test_ctrl_c_while_starting_is_one_quiet_line(argv0, program):
    """A program (the `damtui` script, `python -m damtui.cli`) ends quietly with 130; a library
    import (a test, a notebook) keeps Python's own KeyboardInterrupt."""
    proc = subprocess.run([sys.executable, "-c", CTRL_C_WHILE_STARTING.format(argv0=argv0)],
                          capture_output=True, text=True, timeout=60)
    if program:
        assert (proc.returncode, proc.stdout, proc.stderr) == (130, "", "damtui: interrupted\n")
    else:
        assert proc.returncode == -signal.SIGINT and proc.stderr.rstrip().endswith("KeyboardInterrupt"), proc.stderr


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_DATA / "breastmnist.npz").exists(),
                    reason="real MedMNIST files not here")
def test_real_breastmnist_trains_one_epoch(runs_dir):
    root = REAL_DATA
    proc = damtui_process("train", "breastmnist", "--preset", "report", "--epochs", "1", "--set", "width=4",
                          "--data-root", str(root), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    (info,), _ = runs.list_runs(runs_dir)
    assert info.status == runs.FINISHED and runs.load_run(info.path).runtime["data_md5"] == "750601b1f35ba3300ea97c75c52ff8f6"


def test_global_options_before_the_command_are_honoured(damtui, tmp_path, pretrain_run):
    """`damtui --runs-dir X runs list` used to list $DAMTUI_RUNS: the subcommand's default won."""
    import shutil

    other = tmp_path / "elsewhere"
    shutil.copytree(pretrain_run, other / pretrain_run.name)
    rc, out, _ = damtui("--runs-dir", str(other), "runs", "list")
    assert rc == 0 and pretrain_run.name in out and str(other) in out
    rc, out, _ = damtui("runs", "list", "--runs-dir", str(other))
    assert rc == 0 and pretrain_run.name in out
    rc, out, _ = damtui("--data-root", str(tmp_path / "data-x"), "datasets", "list")
    assert rc == 0 and f"data root: {tmp_path / 'data-x'}" in out


def test_rich_progress_eta_restarts_with_each_epoch():
    """The bar's task is reset for a new epoch: a finished task reads ETA 0:00:00 for ever."""
    from damtui import events
    from damtui.cli.printers import RichPrinter

    printer = RichPrinter()
    now = [0.0]
    printer.progress.get_time = lambda: now[0]  # the task takes its clock when it is added
    try:
        remaining = {}
        for epoch in (1, 2, 3):
            for batch in range(1, 11):
                now[0] += 1.0  # one batch a second
                printer(events.BatchProgress(epoch, batch, 10, 0.5, 100.0, 10.0 - batch))
                if batch == 5:
                    task = printer.progress.tasks[0]
                    remaining[epoch] = (task.fields["epoch"], task.finished, task.time_remaining)
            now[0] += 3.0  # evaluation between epochs
        assert remaining[1] == (1, False, 5)
        assert remaining[2] == (2, False, 5) and remaining[3] == (3, False, 5)
    finally:
        printer.close()
