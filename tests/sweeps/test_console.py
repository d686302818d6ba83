"""What `damtui sweep` says and records as it runs: whole lines, runs (not jobs) counted, a re-run
that had nothing to do, the sweep's state in plan.json (finished, failed, interrupted), missing
data before anything starts, a time estimate, submitit's local executor held to --max-parallel,
and Ray keeping the SIGTERM handler that cancels runs. Backends are faked where the test is
about the sweep's own code; training has its own tests."""

from __future__ import annotations

import io
import json
import signal
import threading
from pathlib import Path

import pytest

from damtui import cli, sweeps
from damtui.store import runs
from damtui.sweeps import backends, check
from sweep_fakes import fake_result, sweep_file, write_run


class Writes(io.StringIO):
    """stdout that keeps each write() apart."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return super().write(text)


def test_lines_from_several_threads_are_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`...-finetunefinished ...`: print() writes a line and its newline apart, and two backend
    threads' lines ran into each other."""
    def two_threads(jobs, ctx, backend, opts, report):
        threads = [threading.Thread(target=lambda i=i: [report(f"line {i}.{k}") for k in range(50)]) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return [fake_result(j, runs.FINISHED) for j in jobs]
    monkeypatch.setattr(backends, "run", two_threads)
    out = Writes()
    monkeypatch.setattr("sys.stdout", out)
    assert cli.main(["sweep", str(sweep_file(tmp_path, "lines")), "--device", "cpu"]) == 0
    assert all(part.endswith("\n") and part.count("\n") == 1 for part in out.parts), out.parts[:6]
    assert sum(p.startswith("line ") for p in out.parts) == 100


def test_local_counts_runs_and_jobs(tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`local: 4 runs` counted the jobs of a packed sweep."""
    planned = sweeps.load_plan_file(sweep_file(tmp_path, "pk"))[1]
    monkeypatch.setattr(backends, "run_job", lambda job, ctx, gpu, on_start=None: fake_result(job, runs.FINISHED))
    lines: list[str] = []
    backends.run_local(sweeps.pack(planned, 2), sweeps.JobContext(str(runs_dir)), backends.Options(), lines.append)
    assert lines[0] == "local: 4 runs in 2 jobs, 1 at a time on CPU"
    lines.clear()
    backends.run_local(planned, sweeps.JobContext(str(runs_dir)), backends.Options(), lines.append)
    assert lines[0] == "local: 4 runs, 1 at a time on CPU"


def test_totals_tell_finished_now_from_finished_before(tmp_path: Path) -> None:
    """A re-run that skipped everything read `8 runs: 8 finished`."""
    jobs = sweeps.load_plan_file(sweep_file(tmp_path, "t"))[1]
    before = [fake_result(j, runs.FINISHED, "skip") for j in jobs]
    assert sweeps.totals_line("t", before) == "sweep t: 4 runs: all were finished already, nothing to train"
    mixed = [fake_result(jobs[0], runs.FINISHED, "resume"), fake_result(jobs[1], runs.FINISHED, "skip"),
             fake_result(jobs[2], runs.CRASHED), sweeps.skipped(jobs[3], "pretrain x is crashed")]
    assert sweeps.totals_line("t", mixed) == ("sweep t: 4 runs: 1 finished, 1 crashed, 1 not started (their"
                                              " pretrain did not finish), 1 finished already (skipped)")


def _plan(root: Path, name: str) -> dict:
    return json.loads((runs.sweep_dir(root, name) / runs.SWEEP_PLAN).read_text())


@pytest.mark.parametrize("raised, status, rc", [
    (cli.DamtuiError("sbatch: error: invalid partition specified: gpu"), sweeps.FAILED, cli.EXIT_FAILED),
    (KeyboardInterrupt(), sweeps.INTERRUPTED, 130),
])
def test_the_plan_records_how_the_sweep_ended(tmp_path: Path, runs_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                              capsys, raised: BaseException, status: str, rc: int) -> None:
    """A failed Slurm submit left a plan the app showed as `8 waiting`; an interrupted sweep was
    never called interrupted."""
    def refuse(*args, **kw):
        raise raised
    monkeypatch.setattr(backends, "run", refuse)
    assert cli.main(["sweep", str(sweep_file(tmp_path, "end")), "--device", "cpu"]) == rc
    plan = _plan(runs_dir, "end")
    assert plan["state"]["status"] == status and plan["state"]["ended"] >= plan["state"]["started"]
    (group,) = sweeps.sweep_groups([], sweeps.load_plans(runs_dir))
    assert group["state"] == status and group["waiting"] == 0 and group["not_started"] == 4
    if status == sweeps.FAILED:
        assert "invalid partition" in group["message"]


def test_a_sweep_process_that_died_reads_interrupted(tmp_path: Path, runs_dir: Path) -> None:
    sweep, planned = sweeps.load_plan_file(sweep_file(tmp_path, "gone"))
    record = sweeps.write_plan(runs_dir, sweep, planned, tmp_path / "gone.toml")
    assert sweeps.sweep_groups([], sweeps.load_plans(runs_dir))[0]["state"] == sweeps.RUNNING  # this process
    record["state"]["pid"] = 2**22 + 99  # beyond pid_max: never alive
    runs.write_sweep_plan(runs_dir, "gone", record)
    (group,) = sweeps.sweep_groups([], sweeps.load_plans(runs_dir))
    assert group["state"] == sweeps.INTERRUPTED and group["not_started"] == 4 and group["waiting"] == 0
    assert "no longer running" in group["message"]


def test_missing_data_stops_the_sweep_before_anything_starts(tmp_path: Path, runs_dir: Path, capsys,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backends, "run", lambda *a, **k: pytest.fail("a job was started"))
    path = sweep_file(tmp_path, "nodata", 'datasets = ["breastmnist"]\nstages = ["pretrain"]\n')
    assert cli.main(["sweep", str(path), "--device", "cpu"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("damtui: error: sweep nodata: 1 dataset file(s) missing in ") and err.count("\n") == 1
    assert not runs_dir.exists()


def test_dry_run_prices_runs_from_finished_ones(tmp_path: Path, runs_dir: Path, damtui) -> None:
    planned = sweeps.load_plan_file(sweep_file(tmp_path, "est"))[1]
    pre0, pre1, fine0, fine1 = planned
    write_run(runs_dir, pre0, lambda j, e: 0.8, trained_s=30.0)  # 3 epochs: 10 s each
    est = check.estimate(planned, runs_dir)
    assert est.seconds[pre0.name] == 0.0  # finished: nothing to train
    assert est.seconds[pre1.name] == pytest.approx(30.0)  # same config, other seed: 3 x 10 s
    assert est.seconds[fine0.name] is None  # no finished fine-tune to go by
    assert est.line(2) == ("time: about 0:30 of training one after another + 2 run(s) with nothing to go by (1 run(s)"
                           " priced from finished runs of the same config; their device and load, not this one's);"
                           " about 0:15 with 2 side by side (if the machine has room for them)")
    rc, out, _ = damtui("sweep", str(tmp_path / "est.toml"), "--dry-run")
    assert rc == 0 and "time: about 0:30 of training" in out
    for job in (pre1, fine0, fine1):
        write_run(runs_dir, job, lambda j, e: 0.8, trained_s=5.0)
    assert check.estimate(planned, runs_dir).line() == "time: none: every run is finished (a sweep run again skips them)"


class FakeExecutor:
    """submitit's AutoExecutor for the local cluster, which ignores the array cap."""

    most = 0

    def __init__(self, folder, cluster) -> None:
        self.live: list = []

    def update_parameters(self, **params) -> None:
        pass

    def map_array(self, fn, jobs):
        return [self.submit(fn, j) for j in jobs]

    def submit(self, fn, job):
        executor = self

        class Sub:
            job_id = f"1_{job.name}"
            polls = 0

            def done(self) -> bool:
                self.polls += 1
                return self.polls > 2

            def result(self):
                executor.live.remove(self)
                return fake_result(job, runs.FINISHED)
        sub = Sub()
        self.live.append(sub)
        FakeExecutor.most = max(FakeExecutor.most, len(self.live))
        return sub


def test_submitit_local_executor_is_held_to_max_parallel(tmp_path: Path, runs_dir: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`--slurm-cluster local --max-parallel 2` started all 8 at once."""
    submitit = pytest.importorskip("submitit")
    helpers = pytest.importorskip("submitit.helpers")
    monkeypatch.setattr(submitit, "AutoExecutor", FakeExecutor)
    monkeypatch.setattr(helpers.time, "sleep", lambda s: None)
    text = sweep_file(tmp_path, "x").read_text().replace("seeds = [0, 1]", "seeds = [0, 1, 2, 3]")
    jobs = sweeps.load_plan_file(sweep_file(tmp_path, "win", text.replace('"x"', '"win"')))[1]
    lines: list[str] = []
    FakeExecutor.most = 0
    results = backends.run_slurm(jobs, sweeps.JobContext(str(runs_dir)),
                                 backends.Options(slurm_cluster="local", max_parallel=2), lines.append)
    assert [r["status"] for r in results] == [runs.FINISHED] * 8
    assert FakeExecutor.most == 2
    assert lines[0].startswith("slurm (local): 4 runs (pretrain), 2 at a time;")


def test_ray_keeps_the_sigterm_handler_that_cancels_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """ray.init sets the driver's SIGTERM to sys.exit (ray/_private/worker.py, `sigterm_handler`): a
    SIGTERM then killed Ray's workers mid-run (a native stack, runs `crashed`) instead of cancelling
    the runs as on the local backend. Here ray.init does just that, without starting a cluster."""
    import sys

    ray = pytest.importorskip("ray")

    def init_like_ray(**kw):
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(signum))
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init_like_ray)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)  # what `damtui sweep` sets
    try:
        assert backends.start_ray(backends.Options()) is True
        assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_synthetic_set_is_written_once_and_said_before_the_first_run(tmp_path: Path, capsys,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """It was written by whichever run came first, into the user's data root, unannounced."""
    from damtui.data import datasets

    fresh = tmp_path / "fresh-data"
    there = []
    monkeypatch.setattr(backends, "run", lambda jobs, *a: there.append(
        datasets.dataset_path("synthetic2d", fresh).is_file()) or [fake_result(j, runs.FINISHED) for j in jobs])
    assert cli.main(["sweep", str(sweep_file(tmp_path, "syn")), "--data-root", str(fresh)]) == 0
    out = capsys.readouterr().out
    assert there == [True] and out.count("synthetic2d: wrote the generated synthetic set to") == 1
    assert out.index("wrote the generated") < out.index("sweep syn: 4 runs in")


def test_totals_count_runs_the_pruner_stopped_apart(tmp_path: Path) -> None:
    jobs = sweeps.load_plan_file(sweep_file(tmp_path, "p"))[1]
    why = "pruned by the search (trial 3: val AUC 0.6000 at epoch 2)"
    stopped = {**fake_result(jobs[0], runs.CANCELLED), "message": why}
    results = [stopped, fake_result(jobs[1], runs.FINISHED),
               backends._dependency_failed(jobs[2], {jobs[0].name: stopped}), fake_result(jobs[3], runs.FINISHED)]
    assert results[2]["message"] == why
    assert sweeps.totals_line("p", results) == "sweep p: 4 runs: 2 finished, 2 stopped or not started by the search's pruner"
