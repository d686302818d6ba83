"""Bad inputs through the real CLI: each must be one `damtui: error:` line, non-zero, nothing lost.

    python benchmarks/bad_inputs.py [--only SUBSTRING] [--json FILE] [--md FILE]

Every case runs `python -m damtui.cli ...` in a subprocess against a scratch runs dir and data
roots made here (a finished synthetic2d pretrain run, a finetune from it, copies with broken
checkpoints, broken .npz files, foreign entries). Faults that cannot be caused from outside on a
CPU box (CUDA out of memory, ENOSPC, EACCES while saving, a NaN in epoch 2) are injected by a short
prelude that patches one function and then calls `damtui.cli.main`; a file-size limit set on the
running process with prlimit(2) gives a real EFBIG while a checkpoint is written.

For each case: exit code != 0 (0 for the one listing case), exactly one stderr line, starting
`damtui: error: ` and containing the expected words, no traceback; every file that existed before
is byte-identical afterwards and new files appear only in the expected number of new run folders
(a failed NaN / OOM / disk-full run keeps its folder, marked failed, with its older checkpoints).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

# ----------------------------------------------------------------------------- fault preludes

MAIN = "\nimport sys, damtui.cli\nsys.exit(damtui.cli.main(sys.argv[1:]))\n"

OOM = """
import torch, damtui.train.models as m
real, calls = m.ResNet18.forward, [0]
def forward(self, x):
    if self.training:
        calls[0] += 1
        if calls[0] > 30:  # epoch 1 (25 batches) finishes, epoch 2 runs out of memory
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
    return real(self, x)
m.ResNet18.forward = forward
"""

NO_MEMORY = """
import damtui.train.engine as engine
def make_model(*a, **k):
    raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 1 TB")
engine.make_model = make_model
"""
NAN_EPOCH_2 = """
import damtui.train.stages as st
real_start, real_loss = st.Stage.start_epoch, st.Stage.loss
def start_epoch(self, epoch):
    self._poison = epoch >= 1
    return real_start(self, epoch)
def loss(self, out, y):
    value = real_loss(self, out, y)
    return value * float("nan") if getattr(self, "_poison", False) else value
st.Stage.start_epoch, st.Stage.loss = start_epoch, loss
"""

# the third checkpoint replace fails: best.pt and last.pt of epoch 1 are on disk, then ENOSPC
ENOSPC = """
import os, damtui.atomic as a
class _OS:
    n = 0
    def __getattr__(self, k):
        return getattr(os, k)
    def replace(self, src, dst):
        if str(dst).endswith(".pt"):
            _OS.n += 1
            if _OS.n > 2:
                raise OSError(28, "No space left on device")
        return os.replace(src, dst)
a.os = _OS()
"""

# after two checkpoints the run folder refuses new files, as a folder made read-only would
EACCES = """
import damtui.atomic as a
real, n = a._create_exclusive, [0]
def guarded(tmp):
    if ".pt." in str(tmp):
        n[0] += 1
    if n[0] > 2:
        raise PermissionError(13, "Permission denied", str(tmp))
    return real(tmp)
a._create_exclusive = guarded
"""

EVIL_MARK = "pwned-by-a-checkpoint"


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (os.system, (f"touch {self.target}",))


# ----------------------------------------------------------------------------- scratch tree


@dataclass
class Env:
    work: Path
    pre: Path = field(init=False)  # a finished synthetic2d pretrain run
    fine: Path = field(init=False)  # a finished finetune from it

    @property
    def runs(self) -> Path:
        return self.work / "runs"

    @property
    def data(self) -> Path:
        return self.work / "data"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(DAMTUI_RUNS=str(self.runs), DAMTUI_DATA=str(self.data),
                   DAMTUI_PRESETS=str(self.work / "no-user-presets"), DAMTUI_THREADS="1")
        return env

    def cmd(self, argv: list[str], prelude: str = "") -> list[str]:
        if prelude:
            return [sys.executable, "-c", prelude + MAIN, *argv]
        return [sys.executable, "-m", "damtui.cli", *argv]

    def run(self, argv: list[str], prelude: str = "", timeout: float = 300) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(self.cmd(argv, prelude), capture_output=True, text=True, env=self.env(),
                                  timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # a read that waits on a FIFO for ever
            return subprocess.CompletedProcess(argv, -9, "", f"timed out after {timeout} s")

    def copy_run(self, name: str, src: Path | None = None) -> Path:
        dest = self.runs / name
        shutil.copytree(src or self.pre, dest)
        return dest


SMALL = ["--device", "cpu", "--set", "width=4"]


def build(work: Path) -> Env:
    """Data roots, two real runs and their damaged copies."""
    import numpy as np
    import torch

    from damtui.data import datasets
    from damtui.store import runs

    e = Env(work)
    e.runs.mkdir(parents=True)
    for flag in ("synthetic2d", "synthetic3d"):
        datasets.write_synthetic(flag, datasets.dataset_path(flag, e.data))
    good = datasets.make_synthetic("synthetic2d")
    roots = {name: work / f"data-{name}" for name in ("missing", "truncated", "foreign", "garbage", "dtype")}
    for root in roots.values():
        root.mkdir()

    def npz(path: Path, arrays: dict) -> None:
        with open(path, "wb") as fh:
            np.savez(fh, **arrays)

    npz(roots["truncated"] / "breastmnist.npz", good)
    blob = (roots["truncated"] / "breastmnist.npz").read_bytes()
    (roots["truncated"] / "breastmnist.npz").write_bytes(blob[: len(blob) // 2])
    npz(roots["foreign"] / "breastmnist.npz", {"x": np.zeros((4, 28, 28), np.uint8)})
    (roots["garbage"] / "breastmnist.npz").write_bytes(b"<html>404 not found</html>")
    npz(roots["dtype"] / "breastmnist.npz", {**good, "train_images": good["train_images"].astype(np.float32)})

    presets = work / "presets"
    presets.mkdir()
    base = ('dataset = "synthetic2d"\nstage = "pretrain"\nsource = "t"\nepochs = 2\nbatch_size = 32\n'
            'lr = 0.001\nloss = "ce"\noptimizer = "adam"\nwidth = 4\n')
    (presets / "unknown-key.toml").write_text(base + "colour = 3\n")
    (presets / "wrong-type.toml").write_text(base.replace("width = 4", 'width = "wide"'))
    (presets / "zero-lr.toml").write_text(base.replace("lr = 0.001", "lr = 0.0"))
    (presets / "zero-epochs.toml").write_text(base.replace("epochs = 2", "epochs = 0"))
    (presets / "broken.toml").write_text("epochs = = 3\n")
    (presets / "code.toml").write_text(base + 'description = "__import__(\'os\').system(\'touch pwned\')"\n'
                                       "[[x]]\ny = 1\n")

    proc = e.run(["train", "synthetic2d", *SMALL, "--set", "epochs=2"])
    assert proc.returncode == 0, proc.stderr
    (e.pre,) = [p for p in e.runs.iterdir()]
    proc = e.run(["train", "synthetic2d", "--stage", "finetune", "--from", str(e.pre), "--device", "cpu",
                  "--set", "epochs=1"])
    assert proc.returncode == 0, proc.stderr
    (e.fine,) = [p for p in e.runs.iterdir() if p != e.pre]

    # damaged copies of the pretrain run
    (e.copy_run("no-best") / runs.BEST).unlink()
    (e.copy_run("best-garbage") / runs.BEST).write_bytes(os.urandom(4096))
    torch.save({"model": {}}, e.copy_run("best-plain") / runs.BEST)
    evil = pickle.dumps({"format": runs.CHECKPOINT_FORMAT, "model": _Evil(str(work / EVIL_MARK))})
    (e.copy_run("best-evil") / runs.BEST).write_bytes(evil)
    ck = runs.load_checkpoint(e.pre / runs.BEST)
    ck["model"] = {k: torch.zeros(1) for k in ck["model"]}
    torch.save(ck, e.copy_run("best-wrong-shapes") / runs.BEST)

    def crashed(name: str) -> Path:
        path = e.copy_run(name)
        status = json.loads((path / runs.STATUS).read_text())
        status.update(state=runs.RUNNING, pid=2**22 + 4321)  # beyond pid_max: a dead writer
        (path / runs.STATUS).write_text(json.dumps(status))
        (path / runs.SUMMARY).unlink()
        return path

    (crashed("last-missing") / runs.LAST).unlink()  # epochs recorded, checkpoint gone: damaged
    linked = crashed("metrics-link")
    outside = e.work / "outside-metrics.jsonl"
    shutil.move(linked / runs.METRICS, outside)
    (linked / runs.METRICS).symlink_to(outside)
    (crashed("last-garbage") / runs.LAST).write_bytes(b"\x80\x04not a checkpoint at all")
    torch.save({"epoch": 1, "model": {}}, crashed("last-plain") / runs.LAST)
    (crashed("last-evil") / runs.LAST).write_bytes(evil)
    other = runs.load_checkpoint(e.pre / runs.LAST)
    other["config"] = {**other["config"], "width": 8}
    other["model"] = {k: torch.zeros(1) for k in other["model"]}
    torch.save(other, crashed("last-from-another-run") / runs.LAST)
    (e.copy_run("config-garbage") / runs.CONFIG).write_text("{not json")

    (e.runs / "notes").mkdir()
    (e.runs / "notes" / "todo.txt").write_text("foreign folder\n")
    (e.runs / "README.txt").write_text("foreign file\n")
    (work / "elsewhere").mkdir()
    build_round3(e)
    e.roots = roots  # type: ignore[attr-defined]
    e.presets = presets  # type: ignore[attr-defined]
    return e


def build_round3(e: Env) -> None:
    """Issue 28's hostile folders: links out of the runs folder, FIFOs and devices where files
    belong, scores.npz and notes.json of impossible contents, names that are markup."""
    import numpy as np

    from damtui.store import runs

    def scores(name: str, **change: Any) -> None:
        path = e.copy_run(name) / runs.SCORES
        with np.load(path) as data:
            arrays = {k: data[k] for k in data.files}
        arrays.update(change)
        with open(path, "wb") as fh:
            (np.savez_compressed if len(arrays["test_scores"]) > 10_000 else np.savez)(fh, **arrays)

    for name, plant in (("log-link", lambda p: p.symlink_to("/etc/passwd")), ("log-fifo", os.mkfifo)):
        log = e.copy_run(name) / runs.LOG
        log.unlink(missing_ok=True)
        plant(log)
    metrics = e.copy_run("metrics-zero") / runs.METRICS
    metrics.unlink()
    metrics.symlink_to("/dev/zero")
    with open(e.copy_run("metrics-100mb") / runs.METRICS, "r+b") as fh:
        fh.truncate(100 * 1024 * 1024)  # sparse
    fifo_config = e.runs / "fifo-config"
    fifo_config.mkdir()
    os.mkfifo(fifo_config / runs.CONFIG)
    path = e.copy_run("scores-truncated") / runs.SCORES
    path.write_bytes(path.read_bytes()[:300])
    scores("scores-labels-7", test_labels=np.full(200, 7, np.int64))
    scores("scores-nan", test_scores=np.full(200, np.nan, np.float32))
    scores("scores-5m-rows", test_scores=np.zeros(5_000_000, np.float32), test_labels=np.zeros(5_000_000, np.int64))
    (e.copy_run("notes-list") / runs.NOTES).write_text('["keep me"]')
    (e.copy_run("notes-truncated") / runs.NOTES).write_text('{"name": "keep me", "tags": ["a"')
    (e.copy_run("notes-folder") / runs.NOTES).mkdir()
    e.copy_run("[@click=app.quit]clickme")
    (e.copy_run("markup-names") / runs.NOTES).write_text(json.dumps(
        {"name": "[link=https://evil.example]x[/link]", "notes": "a\x1b]0;PWNED\x07b", "tags": ["[/]"]}))
    links = e.work / "runs-links"  # a runs folder whose .sweeps and .trash lead out of it
    links.mkdir()
    shutil.copytree(e.pre, links / "victim")
    (e.work / "outside").mkdir()
    (links / ".sweeps").symlink_to(e.work / "outside", target_is_directory=True)
    (links / ".trash").symlink_to(e.work / "outside", target_is_directory=True)
    grid = ", ".join(str(i) for i in range(1, 1001))
    (e.work / "grid-1e6.toml").write_text(f'datasets = ["synthetic2d"]\nstages = ["pretrain"]\n'
                                          f'[grid]\nwidth = [{grid}]\nepochs = [{grid}]\n')
    (e.work / "sweep-one.toml").write_text('datasets = ["synthetic2d"]\nstages = ["pretrain"]\n'
                                           'set = { width = 4, epochs = 1 }\n')


# ----------------------------------------------------------------------------- cases


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str
    new_runs: int = 0  # run folders the case may add (a failed run keeps its folder)
    prelude: str = ""
    ok_exit: bool = False  # a listing that must succeed, not an error
    check: Callable[[Env, list[Path]], str | None] | None = None
    special: str = ""  # "running": resume a live run; "fsize": prlimit a live run


def failed_run(state: str | tuple[str, ...] = "failed", epoch_in_message: str | None = None,
               last_epoch: int | None = None, best: bool = True):
    """Check a new run folder: its status, message, intact older checkpoints, no temp files."""
    states = (state,) if isinstance(state, str) else state

    def check(env: Env, new: list[Path]) -> str | None:
        from damtui.store import runs
        from damtui.errors import DamtuiError

        if len(new) != 1:
            return f"expected one new run folder, got {len(new)}"
        path = new[0]
        info = runs.load_run(path).info
        if info.status not in states:
            return f"status {info.status}, expected {'/'.join(states)}"
        if epoch_in_message and info.status == "failed" and epoch_in_message not in info.message:
            return f"status message {info.message!r} lacks {epoch_in_message!r}"
        tmp = [p.name for p in path.glob(".*.tmp")]
        if tmp:
            return f"temp files left: {tmp}"
        try:
            if last_epoch is not None and runs.load_checkpoint(path / runs.LAST)["epoch"] < last_epoch:
                return "last.pt is older than expected"
            if best:
                runs.load_checkpoint(path / runs.BEST)
        except DamtuiError as err:
            return f"checkpoint not intact: {err}"
        return None

    return check


def no_code_ran(env: Env, new: list[Path]) -> str | None:
    return "the pickle ran code" if (env.work / EVIL_MARK).exists() or Path("pwned").exists() else None


def cases(e: Env) -> list[Case]:
    r, p = e.roots, e.presets  # type: ignore[attr-defined]
    pre, fine = str(e.pre), e.fine.name
    train = ["train", "synthetic2d", *SMALL]
    return [
        # data files
        Case("missing .npz", ["train", "breastmnist", "--device", "cpu", "--data-root", str(r["missing"])],
             "damtui datasets fetch breastmnist"),
        Case("truncated .npz", ["train", "breastmnist", "--device", "cpu", "--data-root", str(r["truncated"])],
             "truncated or foreign"),
        Case("foreign .npz (other keys)", ["train", "breastmnist", "--device", "cpu", "--data-root",
                                           str(r["foreign"])], "missing"),
        Case("not a zip at all", ["train", "breastmnist", "--device", "cpu", "--data-root", str(r["garbage"])],
             "truncated or foreign"),
        Case(".npz with float images", ["train", "breastmnist", "--device", "cpu", "--data-root", str(r["dtype"])],
             "dtype float32"),
        Case("unknown dataset", ["train", "nosuchmnist"], "unknown dataset"),
        Case("multi-class dataset", ["train", "pathmnist"], "multi-class"),
        # presets and overrides
        Case("preset: unknown key", ["train", "synthetic2d", "--preset", str(p / "unknown-key.toml")],
             "key 'colour': unknown key"),
        Case("preset: wrong type", ["train", "synthetic2d", "--preset", str(p / "wrong-type.toml")], "'width'"),
        Case("preset: lr = 0", ["train", "synthetic2d", "--preset", str(p / "zero-lr.toml")], "'lr'"),
        Case("preset: epochs = 0", ["train", "synthetic2d", "--preset", str(p / "zero-epochs.toml")], "'epochs'"),
        Case("preset: not TOML", ["train", "synthetic2d", "--preset", str(p / "broken.toml")], "not valid TOML"),
        Case("preset: code in a string, extra table", ["train", "synthetic2d", "--preset", str(p / "code.toml")],
             "'x'", check=no_code_ran),
        Case("unknown preset name", ["train", "synthetic2d", "--preset", "nope"], "choose one of"),
        Case("--set lr=-1e-3", [*train, "--set", "lr=-1e-3"], "'lr'"),
        Case("--set epochs=0", [*train, "--set", "epochs=0"], "'epochs'"),
        Case("--set epochs=many", [*train, "--set", "epochs=many"], "'epochs'"),
        Case("--set batch_size=1.5", [*train, "--set", "batch_size=1.5"], "'batch_size'"),
        Case("--set without =", [*train, "--set", "lr"], "key=value"),
        # issue 13: refused up front, no run folder left behind
        Case("--set batch_size=1", [*train, "--set", "batch_size=1"], "'batch_size'"),
        Case("--seed -5", [*train, "--seed", "-5"], "--seed takes a whole number >= 0"),
        Case("--set weight_decay=inf", [*train, "--set", "weight_decay=inf"], "'weight_decay'"),
        Case("--set decay_factor=inf", [*train, "--set", "decay_factor=inf"], "'decay_factor'"),
        Case("--name with a newline", [*train, "--name", "two\nlines"], "plain folder name"),
        Case("--name with a backslash", [*train, "--name", "back\\slash"], "plain folder name"),
        Case("--threads 0", [*train, "--threads", "0"], "--threads takes"),
        Case("--resume with --epochs 0", ["train", "--resume", e.pre.name, "--epochs", "0"], "--epochs takes"),
        Case("--resume a run whose metrics.jsonl is a link", ["train", "--resume", "metrics-link",
                                                              "--epochs", "3", "--device", "cpu"],
             "is a symbolic link"),
        Case("model too large for memory (width 40000, injected)", [*train, "--set", "width=40000"],
             "not enough memory", prelude=NO_MEMORY),
        # --from
        Case("--from a run of another dataset", ["train", "synthetic3d", "--stage", "finetune", "--from", pre,
                                                 "--device", "cpu"], "is a synthetic2d run"),
        Case("--from a finetune run", ["train", "synthetic2d", "--stage", "finetune", "--from", fine,
                                       "--device", "cpu"], "is a finetune run"),
        Case("--from a run without best.pt", ["train", "synthetic2d", "--stage", "finetune", "--from", "no-best",
                                              "--device", "cpu"], "no checkpoint"),
        Case("--from: best.pt is random bytes", ["train", "synthetic2d", "--stage", "finetune", "--from",
                                                 "best-garbage", "--device", "cpu"], "not a damtui checkpoint"),
        Case("--from: best.pt is a plain torch.save", ["train", "synthetic2d", "--stage", "finetune", "--from",
                                                       "best-plain", "--device", "cpu"], "marker"),
        Case("--from: best.pt is a code-running pickle", ["train", "synthetic2d", "--stage", "finetune",
                                                          "--from", "best-evil", "--device", "cpu"],
             "not a damtui checkpoint", check=no_code_ran),
        Case("--from: best.pt of another shape", ["train", "synthetic2d", "--stage", "finetune", "--from",
                                                  "best-wrong-shapes", "--device", "cpu"], "do not fit"),
        Case("--from a foreign folder", ["train", "synthetic2d", "--stage", "finetune", "--from", "notes",
                                         "--device", "cpu"], "not a damtui run"),
        Case("--from latest with no finished pretrain", ["train", "synthetic3d", "--stage", "finetune", "--from",
                                                         "latest", "--device", "cpu"], "no finished synthetic3d pretrain run"),
        # --resume
        Case("--resume a running run (pid alive)", ["train", "--resume", "RUNNING", "--device", "cpu"],
             "being written by another damtui process", new_runs=1, special="running"),
        Case("--resume a foreign folder in runs/", ["train", "--resume", "notes"], "not a damtui run"),
        Case("--resume a folder elsewhere", ["train", "--resume", str(e.work / "elsewhere")],
             "is not in the runs folder"),
        Case("--resume a run whose config.json is garbage", ["train", "--resume", "config-garbage"],
             "not a damtui run"),
        Case("--resume a run whose last.pt is gone", ["train", "--resume", "last-missing",
                                                      "--device", "cpu"], "has no last.pt"),
        Case("--resume: last.pt is garbage", ["train", "--resume", "last-garbage", "--device", "cpu"],
             "not a damtui checkpoint"),
        Case("--resume: last.pt is a plain torch.save", ["train", "--resume", "last-plain", "--device", "cpu"],
             "marker"),
        Case("--resume: last.pt is a code-running pickle", ["train", "--resume", "last-evil", "--device", "cpu"],
             "not a damtui checkpoint", check=no_code_ran),
        Case("--resume: last.pt of another run", ["train", "--resume", "last-from-another-run", "--device", "cpu"],
             "does not belong to this run"),
        Case("--resume with --set", ["train", "--resume", e.pre.name, "--set", "lr=0.1"], "only --epochs"),
        Case("--resume a finished run, same epochs", ["train", "--resume", e.pre.name, "--device", "cpu"],
             "already has 2 epochs"),
        Case("--resume with fewer epochs", ["train", "--resume", e.pre.name, "--epochs", "1", "--device", "cpu"],
             "already has 2 epochs"),
        # while training
        Case("loss becomes NaN in epoch 1 (lr=1e30)", [*train, "--set", "lr=1e30", "--set", "epochs=2"],
             "loss became nan in epoch 1", new_runs=1, check=failed_run(epoch_in_message="epoch 1", best=False)),
        Case("loss becomes NaN in epoch 2 (injected)", [*train, "--set", "epochs=3"], "loss became nan in epoch 2",
             new_runs=1, prelude=NAN_EPOCH_2, check=failed_run(epoch_in_message="epoch 2", last_epoch=1)),
        Case("CUDA out of memory (injected)", [*train, "--set", "epochs=3"], "--set batch_size=16", new_runs=1,
             prelude=OOM, check=failed_run(last_epoch=1)),
        Case("disk full writing a checkpoint (ENOSPC, injected)", [*train, "--set", "epochs=3"],
             "No space left on device", new_runs=1, prelude=ENOSPC, check=failed_run(last_epoch=1)),
        Case("file size limit while saving (real EFBIG via prlimit)", [*train, "--set", "epochs=4"],
             "File too large", new_runs=1, special="fsize", check=failed_run(last_epoch=1)),
        Case("run folder not writable while saving (EACCES, injected)", [*train, "--set", "epochs=3"],
             "Permission denied", new_runs=1, prelude=EACCES,
             check=failed_run(state=("failed", "crashed"), last_epoch=1)),
        Case("runs dir cannot be created", [*train, "--runs-dir", str(e.runs / "README.txt" / "runs")],
             "choose --runs-dir"),
        Case("no GPU for --device cuda:7", ["train", "synthetic2d", "--device", "cuda:7"], "cuda"),
        Case("runs show of a foreign folder", ["runs", "show", "notes"], "not a damtui run"),
        Case("runs list with foreign entries", ["runs", "list"], "ignored (not runs): README.txt", ok_exit=True),
        # round 3 (issue 28): nothing from a run folder is markup, code or a way out; bounded reads
        Case("runs log: log.txt links to /etc/passwd", ["runs", "log", "log-link"], "log.txt is a symbolic link"),
        Case("runs log: log.txt is a FIFO", ["runs", "log", "log-fifo"], "log.txt is a FIFO"),
        Case("runs show: metrics.jsonl links to /dev/zero", ["runs", "show", "metrics-zero"],
             "metrics.jsonl is a symbolic link", ok_exit=True),
        Case("runs show: metrics.jsonl of 100 MB", ["runs", "show", "metrics-100mb"], "100.0 MB, more than",
             ok_exit=True),
        Case("runs list: config.json is a FIFO, names are markup", ["runs", "list"], "fifo-config", ok_exit=True),
        Case("runs curves: scores.npz truncated", ["runs", "curves", "scores-truncated"], "not a readable .npz"),
        Case("runs curves: scores.npz labels all 7", ["runs", "curves", "scores-labels-7"], "not all 0 or 1"),
        Case("runs mistakes: scores.npz NaN scores", ["runs", "mistakes", "scores-nan"], "hold NaN or infinite values"),
        Case("runs mistakes: scores.npz of 5,000,000 rows", ["runs", "mistakes", "scores-5m-rows"],
             "has 5000000 rows"),
        Case("runs compare: a run with a damaged scores.npz", ["runs", "compare", pre, "scores-truncated"],
             "damaged", ok_exit=True),
        Case("runs tag: notes.json is a list", ["runs", "tag", "notes-list", "good"], "not a JSON object"),
        Case("runs tag: notes.json is truncated", ["runs", "tag", "notes-truncated", "good"], "not readable JSON"),
        Case("runs tag: notes.json is a folder", ["runs", "tag", "notes-folder", "good"], "notes.json is a folder"),
        Case("runs note with terminal escapes", ["runs", "note", e.pre.name, "a\x1b]0;PWNED\x07\x1b[2Jb"],
             "control character"),
        Case("runs show: markup and ESC in names and notes", ["runs", "show", "markup-names"],
             "name: [link=https://evil.example]x[/link]", ok_exit=True),
        Case("runs export --csv /", ["runs", "export", e.pre.name, "--csv", "/"], "is a folder, not a file name"),
        Case("runs export --csv .", ["runs", "export", e.pre.name, "--csv", "."], "is a folder, not a file name"),
        Case("runs export --md /", ["runs", "export", e.pre.name, "--md", "/"], "is a folder, not a file name"),
        Case("runs export --md /proc/self/status", ["runs", "export", e.pre.name, "--md", "/proc/self/status"],
             "could not write /proc/self/status"),
        Case("runs mistakes --png /", ["runs", "mistakes", e.pre.name, "--png", "/", "--limit", "0"],
             "is a folder, not a file name"),
        Case("runs delete by a part of a name", ["runs", "delete", "est-evi", "--yes"], "no run 'est-evi'"),
        Case("runs delete through a .trash link", ["runs", "delete", "victim", "--yes", "--runs-dir",
                                                   str(e.work / "runs-links")], ".trash is a symbolic link"),
        Case("sweep through a .sweeps link", ["sweep", str(e.work / "sweep-one.toml"), "--device", "cpu",
                                              "--runs-dir", str(e.work / "runs-links")],
             ".sweeps is a symbolic link"),
        Case("sweep of 10^6 runs (--dry-run)", ["sweep", str(e.work / "grid-1e6.toml"), "--dry-run"],
             "more than 10,000"),
        Case("--set epochs=true", [*train, "--set", "epochs=true"], "'epochs'"),
        Case("--set seed=99999999999999999999", [*train, "--set", "seed=99999999999999999999"], "'seed'"),
        Case("--resume refused: the lock file stays as it was", ["train", "--resume", e.pre.name, "--device", "cpu"],
             "already has 2 epochs"),
        Case("--name of an existing run: the lock file stays", [*train, "--name", e.pre.name], "already exists"),
    ]


# ----------------------------------------------------------------------------- running a case


def snapshot(work: Path) -> dict[str, str]:

    out = {}
    for p in sorted(work.rglob("*")):
        if p.is_symlink():
            out[str(p.relative_to(work))] = f"-> {os.readlink(p)}"
        elif p.is_file() and p.stat().st_size > 10 * 1024 * 1024:  # the sparse 100 MB file: not read
            out[str(p.relative_to(work))] = f"{p.stat().st_size} {p.stat().st_mtime_ns}"
        elif p.is_file():  # a refused writer puts the lock file's holder back: it is compared too
            out[str(p.relative_to(work))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _wait_for(pred: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.time() + timeout
    while not pred():
        if proc.poll() is not None or time.time() > end:
            raise RuntimeError(f"helper run ended early: {proc.stderr.read() if proc.stderr else ''}")
        time.sleep(0.02)


def run_case(e: Env, case: Case) -> dict[str, Any]:
    from damtui.store import runs

    before = snapshot(e.work)
    runs_before = set(os.listdir(e.runs))
    t0 = time.perf_counter()
    helper = None
    if case.special == "running":
        helper = subprocess.Popen(e.cmd(["train", "synthetic2d", *SMALL, "--set", "epochs=200"]),
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=e.env())
        _wait_for(lambda: any((e.runs / n / runs.STATUS).exists() for n in set(os.listdir(e.runs)) - runs_before),
                  helper)
        (live,) = set(os.listdir(e.runs)) - runs_before
        argv = [live if a == "RUNNING" else a for a in case.argv]
        proc = e.run(argv)
        helper.send_signal(signal.SIGTERM)  # Ctrl+C for the live run: it ends as cancelled
        helper.communicate(timeout=120)
    elif case.special == "fsize":
        live_proc = subprocess.Popen(e.cmd(case.argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=e.env())
        _wait_for(lambda: any((e.runs / n / runs.LAST).exists() for n in set(os.listdir(e.runs)) - runs_before),
                  live_proc)
        limit = 100_000  # checkpoints are ~0.2-0.6 MB; metrics, status and summary are a few KB
        resource.prlimit(live_proc.pid, resource.RLIMIT_FSIZE, (limit, limit))
        _, err = live_proc.communicate(timeout=300)
        proc = subprocess.CompletedProcess(case.argv, live_proc.returncode, "", err)
    else:
        proc = e.run(case.argv, case.prelude)
    seconds = time.perf_counter() - t0
    after = snapshot(e.work)
    new_runs = sorted(set(os.listdir(e.runs)) - runs_before)
    problems = []
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    if case.ok_exit:
        if proc.returncode != 0:
            problems.append(f"exit {proc.returncode}")
        message = next((ln for ln in proc.stdout.splitlines() if case.expect in ln), "")
        if not message:
            problems.append(f"stdout lacks {case.expect!r}")
        if lines:
            problems.append(f"stderr not empty: {lines[:2]}")
    else:
        message = lines[0] if lines else ""
        if proc.returncode == 0:
            problems.append("exit 0")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        if not message.startswith("damtui: error: "):
            problems.append("no 'damtui: error: ' prefix")
        if "Traceback" in proc.stderr:
            problems.append("traceback")
        if case.expect not in message:
            problems.append(f"message lacks {case.expect!r}")
    changed = sorted(k for k in before if after.get(k) != before[k])
    if changed:
        problems.append(f"changed or removed: {changed[:3]}")
    strays = sorted(k for k in after if k not in before
                    and not any(k.startswith(f"runs/{n}/") for n in new_runs))
    if strays:
        problems.append(f"new files outside new run folders: {strays[:3]}")
    if len(new_runs) > case.new_runs:
        problems.append(f"{len(new_runs)} new run folders, expected at most {case.new_runs}")
    if case.check is not None:
        found = case.check(e, [e.runs / n for n in new_runs]) if case.special != "running" else None
        if found:
            problems.append(found)
    return {"case": case.name, "exit": proc.returncode, "message": message, "ok": not problems,
            "problems": problems, "new_runs": len(new_runs), "seconds": round(seconds, 1)}


def markdown(results: list[dict[str, Any]], work: Path) -> str:
    """The results as a Markdown table; the scratch folder is written as $W."""
    rows = ["| # | input | exit | ok | message (stderr, or stdout for the listing) |", "|---|---|---|---|---|"]
    for i, r in enumerate(results, 1):
        msg = r["message"].replace(str(work), "$W").replace("|", "\\|")
        rows.append(f"| {i} | {r['case']} | {r['exit']} | {'yes' if r['ok'] else 'NO'} | {msg} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="run only the cases whose name contains this")
    ap.add_argument("--workdir", help="keep the scratch tree here (default: a temp folder, removed)")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--md", help="write the results as a Markdown table here")
    args = ap.parse_args()
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="damtui-bad-"))
    t0 = time.perf_counter()
    try:
        env = build(work)
        chosen = [c for c in cases(env) if not args.only or args.only in c.name]
        results = []
        for i, case in enumerate(chosen, 1):
            res = run_case(env, case)
            results.append(res)
            mark = "ok  " if res["ok"] else "FAIL"
            print(f"{i:2d} {mark} {case.name:55s} exit {res['exit']:3d}  {res['message']}", flush=True)
            for prob in res["problems"]:
                print(f"        problem: {prob}", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)
    passed = sum(r["ok"] for r in results)
    print(f"\nbad inputs tried: {len(results)}, passed: {passed}, {time.perf_counter() - t0:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    if args.md:
        Path(args.md).write_text(markdown(results, work))
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
