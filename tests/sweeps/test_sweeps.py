"""Sweeps: the plan, strict sweep files, the three backends and retry safety.

Every backend test runs the same 4-run synthetic sweep (2 seeds x pretrain -> finetune, width 4,
3 + 1 epochs) on CPU and checks that each run's metrics (minus timings) equal the same runs trained
one by one with `damtui train`. One thread per process (DAMTUI_THREADS=1, set in conftest): the same numerics in
every process, and no oversubscription on a 2-core runner.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from damtui.records import Selected
from damtui import config as cfg
from damtui import cli, sweeps
from damtui.data import datasets
from damtui.store import runs
from damtui.sweeps import backends as sweep_backends
from support import one_line
from sweep_fakes import SWEEP, sweep_file

ROOT = Path(__file__).resolve().parents[2]
TIMING = {"epoch_s", "train_s", "eval_s", "images_per_s"}
def damtui_process(*args: str, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "damtui.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def rows_of(path: Path) -> list[dict]:
    return [{k: v for k, v in r.to_json().items() if k not in TIMING} for r in runs.load_run(path).metrics]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, data_root: Path) -> dict[tuple[str, int], list[dict]]:
    """The 4 runs trained one by one with `damtui train` (the two seeds side by side)."""
    root = tmp_path_factory.mktemp("reference-runs")
    env = {**os.environ, "DAMTUI_DATA": str(data_root), "DAMTUI_RUNS": str(root)}
    base = [sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--preset", "demo", "--set", "width=4",
            "--device", "cpu"]

    def both(extra) -> None:
        procs = [subprocess.Popen(base + extra(seed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for seed in (0, 1)]
        for p in procs:
            _, err = p.communicate(timeout=180)
            assert p.returncode == 0, err

    both(lambda s: ["--set", "epochs=3", "--seed", str(s), "--name", f"pre{s}"])
    both(lambda s: ["--stage", "finetune", "--from", f"pre{s}", "--set", "epochs=1", "--seed", str(s),
                    "--name", f"fine{s}"])
    out = {}
    for seed in (0, 1):
        out["pretrain", seed] = rows_of(root / f"pre{seed}")
        out["finetune", seed] = rows_of(root / f"fine{seed}")
    assert len(out["pretrain", 0]) == 3 and len(out["finetune", 1]) == 1
    return out


def plan_of(path: Path) -> list[sweeps.Job]:
    return sweeps.load_plan_file(path)[1]


def assert_same_as_reference(runs_dir: Path, jobs: list[sweeps.Job], reference) -> None:
    infos, ignored = runs.list_runs(runs_dir)
    assert not ignored
    assert sorted(i.run_id for i in infos) == sorted(j.name for j in jobs)  # one folder per planned run
    by_name = {j.name: j for j in jobs}
    for info in infos:
        job = by_name[info.run_id]
        assert info.status == runs.FINISHED, info
        assert (info.sweep, info.sweep_config) == (job.sweep, job.config_key)
        assert info.from_run == job.depends_on
        assert rows_of(info.path) == reference[job.stage, job.seed], job.name


def wait_for(cond, timeout: float = 120, what: str = "") -> None:
    t = time.time()
    while not cond():
        assert time.time() - t < timeout, f"timed out waiting for {what}"
        time.sleep(0.02)


def has_checkpoint(path: Path) -> bool:
    return (path / runs.LAST).is_file() and bool(runs.read_metrics(path)[0])


def assert_same_epochs(path: Path, alone: list[dict], job: sweeps.Job) -> None:
    """The run has the planned config and the same epochs, with every metric, as its run alone."""
    rec = runs.load_run(path)
    assert cfg.hyperparameters(rec.config, ["epochs"]) == cfg.hyperparameters(job.config, ["epochs"])
    mine = rows_of(path)
    assert [r["epoch"] for r in mine] == [r["epoch"] for r in alone], job.name
    assert [r.keys() for r in mine] == [r.keys() for r in alone], job.name


def sweep_killed_mid_run(path: Path, folders: list[Path], *extra: str) -> tuple[int, str, str, list[int]]:
    """`damtui sweep FILE --device cpu` whose training process is SIGKILLed once every folder has a
    checkpoint; returns (exit code, stdout, stderr, the pids the folders' status named)."""
    proc = subprocess.Popen([sys.executable, "-m", "damtui.cli", "sweep", str(path), "--device", "cpu", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: all(has_checkpoint(f) for f in folders) or proc.poll() is not None, what="checkpoints")
        pids = [json.loads((f / runs.STATUS).read_text())["pid"] for f in folders]
        os.kill(pids[0], signal.SIGKILL)  # the training process, mid-run
        out, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err, pids


# ----------------------------------------------------------------------------- plan and files


def test_plan_names_chain_and_dry_run(tmp_path: Path, runs_dir: Path, damtui) -> None:
    path = sweep_file(tmp_path, "plan")
    jobs = plan_of(path)
    assert [j.stage for j in jobs] == ["pretrain", "pretrain", "finetune", "finetune"]
    pre = {j.seed: j for j in jobs if j.stage == "pretrain"}
    for j in jobs:
        assert j.name == f"plan-synthetic2d-{j.config_key.split('-')[1]}-s{j.seed}-{j.stage}"
        if j.stage == "finetune":
            assert j.depends_on == pre[j.seed].name
            assert j.overrides == {"width": 4, "epochs": 1}
    assert len({j.config_key for j in jobs}) == 2  # one configuration per stage, two seeds each
    assert plan_of(path) == jobs  # deterministic names
    assert plan_of(sweep_file(tmp_path, "plan2", SWEEP.format(name="plan").replace("width = 4", "width = 8")))[0].name != jobs[0].name

    rc, out, err = damtui("sweep", str(path), "--dry-run")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].split() == ["name", "dataset", "stage", "preset", "overrides", "depends-on", "now"]
    assert lines[-1] == "4 runs (2 pretrain, 2 finetune)"
    fine0 = next(ln for ln in lines if ln.startswith(jobs[2].name))
    assert fine0.split() == [jobs[2].name, "synthetic2d", "finetune", "demo", "width=4", "epochs=1",
                             jobs[0].name, "new"]
    assert not runs_dir.exists()  # a dry run starts nothing


def test_report_sweep_is_42_runs(damtui, tmp_path: Path) -> None:
    """The dry run checks each dataset's file once: missing ones are one error for the sweep (the
    listing says `no data` for their runs), before anything starts."""
    rc, out, err = damtui("sweep", str(ROOT / "examples" / "sweep-report.toml"), "--dry-run")
    lines = out.strip().splitlines()
    assert lines[-1] == "42 runs (21 pretrain, 21 finetune)"
    assert len(lines) == 1 + 42 + 7 + 1 + 1  # header, runs, one data line per dataset, time, count
    assert all(ln.endswith("no data") for ln in lines[1:43])
    assert [ln.split()[:3] for ln in lines[43:50]] == [["data:", f, "MISSING:"] for f in datasets.REPORT_FLAGS]
    assert rc == cli.EXIT_FAILED and err.count("\n") == 1
    assert err.startswith("damtui: error: sweep report: 7 dataset file(s) missing in ")
    assert f"`damtui datasets fetch {' '.join(datasets.REPORT_FLAGS)} --data-root " in err
    there = tmp_path / "data"
    there.mkdir()
    for flag in datasets.REPORT_FLAGS:  # present (but not medmnist's bytes: the MD5 is reported)
        datasets.dataset_path(flag, there).write_bytes(b"x")
    rc, out, err = damtui("sweep", str(ROOT / "examples" / "sweep-report.toml"), "--dry-run", "--data-root", str(there))
    assert rc == 0, err
    assert "MD5 differs from medmnist's" in out and "no data" not in out
    assert damtui("sweep", str(ROOT / "examples" / "sweep-demo.toml"), "--dry-run")[0] == 0


def test_stage_grid_shares_pretrains(tmp_path: Path) -> None:
    text = SWEEP.format(name="g") + "grid = { lr = [0.1, 0.05], margin = [1.0, 0.5] }\n"
    jobs = plan_of(sweep_file(tmp_path, "g", text))
    assert sum(j.stage == "pretrain" for j in jobs) == 2 and sum(j.stage == "finetune" for j in jobs) == 8
    assert len({j.config_key for j in jobs if j.stage == "finetune"}) == 4


def test_a_plan_over_max_runs_is_refused_before_it_is_expanded(tmp_path: Path, damtui,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A 10^6 grid planned for minutes at gigabytes with no output (issue 28): it is counted from
    the file's lists and refused in one line before one job is built, unless --force."""
    plan_module = sys.modules["damtui.sweeps.plan"]  # `sweeps.plan` is also the function's name

    def built(*args, **kw):
        raise AssertionError("a job was built: the plan was expanded before it was counted")

    values = ", ".join(str(n) for n in range(1, 1001))
    text = SWEEP.format(name="huge") + f"grid = {{ batch_size = [{values}], epochs = [{values}] }}\n"
    with monkeypatch.context() as m:
        m.setattr(plan_module, "_job", built)
        rc, out, err = damtui("sweep", str(sweep_file(tmp_path, "huge", text)), "--dry-run")
    one_line(rc, err, "the sweep makes 2,000,002 runs, more than 10,000; give the grid fewer values, or add --force")
    assert out == ""
    monkeypatch.setattr(plan_module, "MAX_RUNS", 3)  # --force plans past the cap: a 4-run sweep over a cap of 3
    path = sweep_file(tmp_path, "four")
    one_line(*damtui("sweep", str(path), "--dry-run")[::2], "the sweep makes 4 runs, more than 3")
    rc, out, err = damtui("sweep", str(path), "--dry-run", "--force")
    assert rc == 0 and out.strip().splitlines()[-1] == "4 runs (2 pretrain, 2 finetune)", err


@pytest.mark.parametrize("text, expect", [
    ('datasets = ["synthetic2d"]\ncolour = "red"\n', "key 'colour': unknown key"),
    ('datasets = ["synthetic2d"]\nseeds = "0"\n', "key 'seeds'"),
    ('datasets = ["synthetic2d"]\nseeds = [0, 0]\n', "seeds repeat"),
    ('datasets = "synthetic2d"\n', "key 'datasets'"),
    ("seeds = [0]\n", "key 'datasets': missing key"),
    ('datasets = ["synthetic2d", "nosuchmnist"]\n', "key 'datasets.1': unknown dataset 'nosuchmnist'"),
    ('datasets = ["synthetic2d"]\nset = { colour = "red" }\n', "key 'set.colour': unknown preset key"),
    ('datasets = ["synthetic2d"]\n[finetune]\ngrid = { colour = [1] }\n', "key 'finetune.grid.colour'"),
    ('datasets = ["synthetic2d"]\nset = { seed = 3 }\n', "key 'set.seed': set it with the top-level key 'seeds'"),
    ('datasets = ["synthetic2d"]\ngrid = { lr = [0.1, -1.0] }\n', "key 'lr': Input should be greater than 0"),
    ('datasets = ["synthetic2d"]\nset = { epochs = "many" }\n', "key 'epochs'"),
    ('datasets = ["synthetic2d"]\ngrid = { lr = [] }\n', "key 'grid.lr': give at least one value"),
    ('datasets = ["synthetic2d"]\npresets = ["nope"]\n', "key 'presets': no preset 'nope'"),
    ('datasets = ["synthetic2d"]\nstages = ["finetune"]\n', "key 'stages'"),
    ('datasets = ["synthetic2d"]\nstages = ["pretrain"]\n[finetune]\nset = { lr = 0.1 }\n', "key 'finetune'"),
    ('datasets = ["synthetic2d"]\n[pretrain]\nepochs = 2\n', "key 'pretrain.epochs': unknown key"),
    ('datasets = ["synthetic2d"\n', "not valid TOML"),
    ('name = "../x"\ndatasets = ["synthetic2d"]\n', "key 'name'"),
])
def test_bad_sweep_file_is_one_line_naming_file_and_key(tmp_path: Path, capsys, text: str, expect: str) -> None:
    path = sweep_file(tmp_path, "bad", text)
    assert cli.main(["sweep", str(path), "--dry-run"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"damtui: error: {path}") and "\n" not in err, err
    assert expect in err, err


def test_missing_file_and_missing_extras(tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli.main(["sweep", str(tmp_path / "none.toml")]) == cli.EXIT_FAILED
    assert "no such sweep file" in capsys.readouterr().err
    path = sweep_file(tmp_path, "x")
    for backend, module, extra in (("ray", "ray", "ray"), ("slurm", "submitit", "slurm")):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
        assert cli.main(["sweep", str(path), "--backend", backend]) == cli.EXIT_FAILED
        err = capsys.readouterr().err.strip()
        assert err == f"damtui: error: the {backend} backend needs `pip install 'damtui[{extra}]'`"
    assert not (tmp_path / "runs").exists()


def test_unreachable_ray_address_fails_fast(tmp_path: Path, capsys) -> None:
    pytest.importorskip("ray")
    assert cli.main(["sweep", str(sweep_file(tmp_path, "r")), "--backend", "ray", "--address", "127.0.0.1:1"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("damtui: error: cannot reach the Ray cluster at 127.0.0.1:1") and "\n" not in err


@pytest.mark.slow
def test_help_and_planning_import_neither_torch_nor_ray() -> None:
    demo, report = (str(ROOT / "examples" / f) for f in ("sweep-demo.toml", "sweep-report.toml"))
    code = ("import sys, pathlib; from damtui import cli, sweeps; from damtui.sweeps import backends\n"
            "cli.build_parser().format_help()\n"
            f"sweeps.load_plan_file(pathlib.Path({demo!r}))\n"
            "bad = [m for m in ('torch', 'ray', 'submitit', 'textual') if m in sys.modules]; assert not bad, bad\n"
            f"sweeps.load_plan_file(pathlib.Path({report!r}))  # medmnist's dataset list brings torch\n"
            "bad = [m for m in ('ray', 'submitit', 'textual') if m in sys.modules]; assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_decide_what_a_retry_does(tmp_path: Path, runs_dir: Path) -> None:
    job = plan_of(sweep_file(tmp_path, "d"))[0]
    assert sweeps.decide(job, runs_dir) == ("new", "")
    other = {**job.config, "lr": 0.5}
    writer = runs.RunWriter.create(runs_dir, other, {}, name=job.name)
    action, why = sweeps.decide(job, runs_dir)
    assert action == sweeps.ERROR and "different config" in why
    (runs_dir / job.name / runs.CONFIG).write_text(json.dumps({"config": job.config, "runtime": {}}))
    writer.write_status(runs.CANCELLED, 0, job.config["epochs"])
    assert sweeps.decide(job, runs_dir)[0] == "new"  # nothing to resume: started again
    writer.write_status(runs.FINISHED, 3, 3)
    assert sweeps.decide(job, runs_dir)[0] == "skip"


def test_sweep_groups_counts_and_mean_std(tmp_path: Path) -> None:
    def info(name, key, status, seed, auc):
        return runs.RunInfo(run_id=name, path=tmp_path / name, dataset="synthetic2d", stage="finetune",
                            preset="demo", status=status, epochs_done=1, epochs_planned=1, started=0.0,
                            updated=0.0, best=Selected("finetune", 1, test_auc=auc, test_acc=0.5, test_acc_thr=0.75),
                            seed=seed,
                            sweep="s", sweep_config=key)
    infos = [info("a0", "k1", runs.FINISHED, 0, 0.8), info("a1", "k1", runs.FINISHED, 1, 0.9),
             info("a2", "k1", runs.CRASHED, 2, None), info("b0", "k2", runs.RUNNING, 0, None),
             runs.RunInfo("other", tmp_path, "synthetic2d", "pretrain", "demo", runs.FINISHED, 1, 1, 0.0, 0.0)]
    plan = {"s": {"jobs": [{"name": n, "config_key": k, "label": f"label {k}"}
                           for n, k in [("a0", "k1"), ("a1", "k1"), ("a2", "k1"), ("b0", "k2"), ("b1", "k2")]]}}
    (group,) = sweeps.sweep_groups(infos, plan)
    assert {k: group[k] for k in ("sweep", "done", "running", "failed", "waiting", "planned")} == {
        "sweep": "s", "done": 2, "running": 1, "failed": 1, "waiting": 1, "planned": 5}
    k1, k2 = group["configs"]
    assert (k1["config"], k1["label"], k1["n"], k1["seeds"]) == ("k1", "label k1", 2, [0, 1])
    assert k1["test_auc"].mean == pytest.approx(0.85) and k1["test_auc"].std == pytest.approx(0.0707107, rel=1e-5)
    assert k1["test_acc"].std == 0 and k1["test_acc_thr"].mean == 0.75
    assert k1["test_auc"].format() == "0.8500 ± 0.0707"
    assert (k2["n"], k2["running"], k2["waiting"], k2["test_auc"].mean) == (0, 1, 1, None)
    assert sweeps.sweep_groups(infos)[0]["configs"][0].get("waiting") is None  # no plan: no waiting count


# ----------------------------------------------------------------------------- backends


@pytest.mark.slow
def test_local_sweep_sigkilled_run_resumes_on_retry(tmp_path: Path, runs_dir: Path, data_root: Path,
                                                    reference) -> None:
    path = sweep_file(tmp_path, "loc")
    jobs = plan_of(path)
    first = runs_dir / jobs[0].name
    rc, out, err, _ = sweep_killed_mid_run(path, [first])
    assert rc == cli.EXIT_FAILED, err
    assert f"crashed   {jobs[0].name}" in out and f"skipped   {jobs[2].name}" in out, out
    assert runs.load_run(first).info.status == runs.CRASHED
    assert not (runs_dir / jobs[2].name).exists()

    # retry (the same engine as `damtui sweep` again), with two fake GPUs: one job per GPU
    lines: list[str] = []
    ctx = sweeps.JobContext(str(runs_dir), str(data_root), "cpu")
    results = sweep_backends.run_local(jobs, ctx, sweep_backends.Options(), lines.append, gpu_ids=["0", "1"])
    by = {r["name"]: r for r in results}
    assert [by[j.name]["action"] for j in jobs] == ["resume", "skip", "new", "skip"], lines
    assert by[jobs[0].name]["cuda_visible_devices"] in ("0", "1")
    new = by[jobs[2].name]
    assert runs.load_run(runs_dir / jobs[2].name).runtime["cuda_visible_devices"] == new["cuda_visible_devices"]
    log = (runs_dir / ".sweeps" / "loc" / "logs" / f"{jobs[0].name}.log").read_text()
    assert sum(ln.startswith("# ") for ln in log.splitlines()) == 4  # two attempts, one folder
    assert "resume (crashed at epoch" in log
    assert_same_as_reference(runs_dir, jobs, reference)

    (g,) = sweeps.sweep_groups(runs.list_runs(runs_dir)[0], sweeps.load_plans(runs_dir))
    assert (g["sweep"], g["done"], g["waiting"], [c["n"] for c in g["configs"]]) == ("loc", 4, 0, [2, 2])
    assert g["configs"][1]["label"] == "demo width=4 epochs=1 (from demo width=4 epochs=3)"


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local ray cluster at a time
def test_ray_sweep_one_gpu_per_job(tmp_path: Path, runs_dir: Path, data_root: Path, reference) -> None:
    ray = pytest.importorskip("ray")
    jobs = plan_of(sweep_file(tmp_path, "ray"))
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)  # 2 fake GPUs
    try:
        ctx = sweeps.JobContext(str(runs_dir), str(data_root), "cpu")  # trains on CPU all the same
        results = sweep_backends.run_ray(jobs, ctx, sweep_backends.Options(gpus_per_job=1), print)
    finally:
        ray.shutdown()
    assert [r["status"] for r in results] == [runs.FINISHED] * 4, results
    for r in results:
        assert r["cuda_visible_devices"] in ("0", "1")
        assert runs.load_run(runs_dir / r["name"]).runtime["cuda_visible_devices"] == r["cuda_visible_devices"]
    assert {r["cuda_visible_devices"] for r in results[:2]} == {"0", "1"}  # the two pretrains ran side by side
    assert_same_as_reference(runs_dir, jobs, reference)


@pytest.mark.slow
@pytest.mark.xdist_group("ray")  # one local ray cluster at a time
def test_ray_runs_each_pack_as_one_task_on_one_gpu(tmp_path: Path, runs_dir: Path, data_root: Path,
                                                   reference) -> None:
    ray = pytest.importorskip("ray")
    planned = plan_of(sweep_file(tmp_path, "rpk"))
    ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ctx = sweeps.JobContext(str(runs_dir), str(data_root), "cpu")
        packed = sweep_backends.run_ray(sweeps.pack(planned, 2), ctx, sweep_backends.Options(gpus_per_job=1), print)
    finally:
        ray.shutdown()
    assert [len(r["members"]) for r in packed] == [2, 2]
    results = sweeps.flat_results(packed)
    assert [(r["name"], r["status"], r["action"]) for r in results] == [
        (j.name, runs.FINISHED, "new (packed)") for j in planned]
    for pack in packed:  # one task, one GPU: both members saw the same CUDA_VISIBLE_DEVICES
        assert len({m["cuda_visible_devices"] for m in pack["members"]}) == 1
    for job in planned:  # packed == alone numerically: tests/test_packing.py, in float64
        assert_same_epochs(runs_dir / job.name, reference[job.stage, job.seed], job)


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the job process through /proc")
def test_submitit_sweep_requeues_a_preempted_job(tmp_path: Path, runs_dir: Path, data_root: Path,
                                                 reference) -> None:
    pytest.importorskip("submitit")
    jobs = plan_of(sweep_file(tmp_path, "slurm"))
    ctx = sweeps.JobContext(str(runs_dir), str(data_root), "cpu")
    opts = sweep_backends.Options(slurm_cluster="local", gpus_per_job=0, time_min=30)
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(r=sweep_backends.run_slurm(jobs, ctx, opts, print)))
    thread.start()
    first = runs_dir / jobs[0].name
    try:
        wait_for(lambda: has_checkpoint(first) or not thread.is_alive(), what="a checkpoint")
        train_pid = json.loads((first / runs.STATUS).read_text())["pid"]
        os.kill(_parent(train_pid), signal.SIGUSR2)  # what Slurm sends before preempting the job
    finally:
        thread.join(timeout=240)
    assert not thread.is_alive()
    assert [r["status"] for r in out["r"]] == [runs.FINISHED] * 4, out
    log = (runs_dir / ".sweeps" / "slurm" / "logs" / f"{jobs[0].name}.log").read_text()
    assert "resume (cancelled at epoch" in log, log  # requeued by checkpoint(), resumed from last.pt
    assert_same_as_reference(runs_dir, jobs, reference)


@pytest.mark.slow
def test_killed_packed_sweep_resumes_run_by_run(
        tmp_path: Path, runs_dir: Path, data_root: Path, reference) -> None:
    path = sweep_file(tmp_path, "pk")
    planned = plan_of(path)
    jobs = sweeps.pack(planned, 2)
    assert [len(j.members) for j in jobs] == [2, 2] and jobs[1].depends_on == jobs[0].name
    assert jobs[0].name == planned[0].name.replace("-s0-", "-s0+1-")
    assert sweeps.runs_of(jobs) == planned
    dry = damtui_process("sweep", str(path), "--pack", "2", "--dry-run")
    assert "packed: 2 jobs (2 packs of up to 2 seeds)" in dry.stdout, dry.stderr

    rc, out, err, pids = sweep_killed_mid_run(path, [runs_dir / j.name for j in planned[:2]], "--pack", "2")
    assert rc == cli.EXIT_FAILED, err
    assert len(set(pids)) == 1  # both members in one process
    assert f"crashed   {planned[0].name}" in out and f"skipped   {planned[2].name}" in out, out

    lines: list[str] = []
    ctx = sweeps.JobContext(str(runs_dir), str(data_root), "cpu")
    results = sweeps.flat_results(sweep_backends.run_local(jobs, ctx, sweep_backends.Options(), lines.append))
    by = {r["name"]: r for r in results}
    assert [by[j.name]["action"] for j in planned] == ["resume", "resume", "new (packed)", "new (packed)"], lines
    infos, _ = runs.list_runs(runs_dir)
    assert sorted(i.run_id for i in infos) == sorted(j.name for j in planned)
    for job in planned:
        info = runs.load_run(runs_dir / job.name).info
        assert info.status == runs.FINISHED and (info.sweep, info.from_run) == (job.sweep, job.depends_on)
        # packed == alone numerically: tests/test_packing.py, in float64; here a float32 pack resumed
        # member by member is only rounding-close to the runs alone, which is no test of the sweep
        assert_same_epochs(runs_dir / job.name, reference[job.stage, job.seed], job)


def test_a_second_supervisor_of_a_sweep_is_refused_naming_the_first(tmp_path: Path, runs_dir: Path, damtui) -> None:
    path = sweep_file(tmp_path, "twice")
    held = runs.lock_sweep(runs_dir.resolve(), "twice")  # a `damtui sweep` running it
    try:
        rc, out, err = damtui("sweep", str(path), "--device", "cpu")
    finally:
        held.release()
    assert rc == 1 and out == ""
    assert err.strip().splitlines() == [err.strip()]  # one line
    assert f"sweep twice is already run by another `damtui sweep` (pid {os.getpid()} on " in err
    assert not (runs_dir / "twice-synthetic2d").exists() and not list(runs_dir.glob("twice-*"))  # nothing started


def test_a_job_reports_only_what_its_own_process_trained(tmp_path: Path, runs_dir: Path) -> None:
    """Two supervisors on one sweep used to print `finished` for the same run: the second's process was
    refused by the run's lock, and the folder (finished by the first) was read as its result."""
    from damtui.sweeps import execute

    job = plan_of(sweep_file(tmp_path, "claim"))[0]
    writer = runs.RunWriter.create(runs_dir, job.config, {}, name=job.name)
    writer.write_status(runs.FINISHED, 3, 3)  # trained to its end by the other supervisor's process
    log = tmp_path / "attempt.log"
    log.write_bytes(f"damtui: error: {job.name} is being written by another damtui process (pid 4242)\n".encode())
    other = execute._Ended(rc=1, pid=os.getpid() + 1, log=log, start=0, env={}, seconds=1.0)
    result = execute._finished(job, "new", runs_dir, other)
    assert result["status"] == sweeps.ERROR and "being written by another damtui process" in result["message"]
    mine = execute._Ended(rc=0, pid=os.getpid(), log=log, start=0, env={}, seconds=1.0)
    assert execute._finished(job, "new", runs_dir, mine)["status"] == runs.FINISHED
