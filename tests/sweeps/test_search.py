"""Random and TPE search through Optuna: the [search] table, the trial loop, pruning, resuming.

The loop is driven with a fake backend that writes run folders whose validation AUC is a known
function of the trial's values (no training), so what Optuna is told and what plan.json keeps
can be checked exactly; one slow test runs real trials on the local backend.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from damtui import cli, sweeps
from damtui.errors import DamtuiError
from damtui.store import runs
from damtui.sweeps import search
from damtui.sweeps.plan import trial_jobs
from sweep_fakes import fake_result, write_run

SEARCH = """
name = "{name}"
datasets = ["synthetic2d"]
presets = ["demo"]
seeds = [0, 1]
set = {{ width = 4 }}
{stages}
[pretrain]
set = {{ epochs = 3 }}

[search]
method = "{method}"
trials = {trials}
startup_trials = 2
prune = "{prune}"
warmup_epochs = 1

[search.space]
lr = {{ low = 0.001, high = 0.3, log = true }}
batch_size = {{ choices = [32, 64] }}
"""


def search_file(tmp_path: Path, name: str = "tune", method: str = "tpe", trials: int = 6, prune: str = "none",
                stages: str = 'stages = ["pretrain"]', extra: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SEARCH.format(name=name, method=method, trials=trials, prune=prune, stages=stages) + extra)
    return path


def closeness(job: sweeps.Job, epoch: int) -> float:
    """Val AUC peaks at lr = 0.03 (log scale), rising with the epochs; batch 64 a little better."""
    lr, batch = job.config["lr"], job.config["batch_size"]
    return round(0.9 - 0.1 * abs(math.log10(lr / 0.03)) - 0.01 * (3 - epoch) + (0.005 if batch == 64 else 0), 6)


def fake_backend(root: Path, val=closeness, status=runs.FINISHED):
    """A backend that 'trains' each job by writing its finished run folder."""
    ran: list[list[str]] = []

    def run_jobs(jobs: list[sweeps.Job]) -> list[dict]:
        ran.append([j.name for j in jobs])
        out = []
        for job in sweeps.runs_of(jobs):
            if not (root / job.name).exists():
                write_run(root, job, val, status)
            out.append(fake_result(job, runs.load_run(root / job.name).info.status))
        return out
    return run_jobs, ran


def plan_record(root: Path, name: str = "tune") -> dict:
    return json.loads((runs.sweep_dir(root, name) / runs.SWEEP_PLAN).read_text())


def test_search_spends_its_budget_and_names_the_winner(tmp_path: Path, runs_dir: Path) -> None:
    method = "tpe"
    path = search_file(tmp_path, method=method, trials=4)
    sweep, planned = sweeps.load_plan_file(path)
    assert planned == []  # sampled as it goes
    run_jobs, ran = fake_backend(runs_dir)
    lines: list[str] = []
    record, results = search.run_search(sweep, path, runs_dir, run_jobs, lines.append)
    trials = record["trials"]
    assert [t["number"] for t in trials] == list(range(4)) and len(ran) == 4  # one trial per wave
    assert all(t["state"] == "complete" for t in trials)
    for t in trials:  # the value is the mean over the two seeds of each run's val AUC at its result
        assert len(t["final"]) == 2 and len(results) == 8
        infos = [runs.load_run(runs_dir / n).info for n in t["final"]]
        assert [i.config["lr"] for i in infos] == [t["params"]["lr"]] * 2
        assert t["value"] == pytest.approx(sum(i.result.val_auc for i in infos) / 2)
        assert 0.001 <= t["params"]["lr"] <= 0.3 and t["params"]["batch_size"] in (32, 64)
    best = max(trials, key=lambda t: t["value"])
    assert lines[-1].startswith(f"best: trial {best['number']} val AUC {best['value']:.4f}")
    assert "test AUC" in lines[-1]
    assert record["search"]["method"] == method and record["state"]["status"] == "running"
    # the same seed, the same suggestions: Optuna's samplers, seeded from the file
    again = tmp_path / "again"
    record2, _ = search.run_search(sweep, path, again, fake_backend(again)[0], lambda _: None)
    assert [t["params"] for t in record2["trials"]] == [t["params"] for t in trials]


def test_the_method_picks_optunas_sampler_and_the_pruner(tmp_path: Path) -> None:
    import optuna

    for method, prune, sampler, pruner in (("tpe", "median", optuna.samplers.TPESampler, optuna.pruners.MedianPruner),
                                           ("random", "halving", optuna.samplers.RandomSampler,
                                            optuna.pruners.SuccessiveHalvingPruner),
                                           ("tpe", "none", optuna.samplers.TPESampler, optuna.pruners.NopPruner)):
        sweep, _ = sweeps.load_plan_file(search_file(tmp_path, method=method, prune=prune))
        study = search.new_study(sweep.search, 1)
        assert type(study.sampler) is sampler and type(study.pruner) is pruner


def test_a_rerun_keeps_ended_trials_resumes_interrupted_ones_and_goes_on(tmp_path: Path, runs_dir: Path) -> None:
    path = search_file(tmp_path, trials=3)
    sweep, _ = sweeps.load_plan_file(path)
    run_jobs, _ = fake_backend(runs_dir)
    calls = []

    def interrupted_second(jobs):
        calls.append(jobs)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return run_jobs(jobs)
    with pytest.raises(KeyboardInterrupt):
        search.run_search(sweep, path, runs_dir, interrupted_second, lambda _: None)
    first = plan_record(runs_dir)["trials"]
    assert [t["state"] for t in first] == ["complete", "interrupted"]

    lines: list[str] = []
    record, _ = search.run_search(sweep, path, runs_dir, fake_backend(runs_dir)[0], lines.append)
    trials = record["trials"]
    assert [t["state"] for t in trials] == ["complete"] * 3
    assert trials[0] == first[0]  # kept, not run again
    assert trials[1]["params"] == first[1]["params"]  # the interrupted one asked again first, same runs
    assert trials[1]["runs"] == first[1]["runs"]
    assert lines[0].startswith("search: 1 of 3 trials ended earlier")

    more = search_file(tmp_path, trials=4)  # a bigger budget goes on from where it was
    record, _ = search.run_search(sweeps.load_plan_file(more)[0], more, runs_dir, fake_backend(runs_dir)[0],
                                  lambda _: None)
    assert [t["params"] for t in record["trials"][:3]] == [t["params"] for t in trials]
    assert len(record["trials"]) == 4
    other = search_file(tmp_path, trials=4, method="random")  # another search: refused, nothing lost
    with pytest.raises(DamtuiError, match="was another search"):
        search.run_search(sweeps.load_plan_file(other)[0], other, runs_dir, run_jobs, lambda _: None)
    assert len(plan_record(runs_dir)["trials"]) == 4


def test_pruning_reports_per_epoch_values_and_stops_a_bad_trial(tmp_path: Path, runs_dir: Path) -> None:
    """Three trials ended; a fourth, worse at every epoch so far, is pruned: its runs are asked to
    stop through the sweep's stop files, which every backend's job sees."""
    path = search_file(tmp_path, trials=4, prune="median",
                       stages='stages = ["pretrain", "finetune"]\n[finetune]\nset = { epochs = 2 }\n')
    sweep, _ = sweeps.load_plan_file(path)
    s = sweep.search
    study = search.new_study(s, 1)
    space = {k: d.optuna() for k, d in s.flat_space().items()}
    for value in (0.8, 0.85, 0.9):  # three ended trials with values at steps 1..5
        import optuna

        study.add_trial(optuna.trial.create_trial(value=value, params={"lr": 0.01, "batch_size": 32},
                                                  distributions=space,
                                                  intermediate_values={k: value for k in range(1, 6)}))
    trial = study.ask(space)
    rec = search.TrialRecord(3, dict(trial.params))
    jobs = trial_jobs(sweep, path, rec.params)
    rec.runs, rec.final = [j.name for j in jobs], [j.name for j in jobs if j.stage == "finetune"]
    chains = search._chains(jobs)
    assert [[j.stage for j in c] for c in chains] == [["pretrain", "finetune"]] * 2
    lines: list[str] = []
    watcher = search.PruneWatcher(runs_dir, "tune", s, {3: (trial, rec)}, {3: chains}, lines.append)
    pre = [j for j in jobs if j.stage == "pretrain"]
    write_run(runs_dir, pre[0], lambda j, e: 0.5, status=runs.RUNNING, epochs=2)
    write_run(runs_dir, pre[1], lambda j, e: 0.6, status=runs.RUNNING, epochs=1)
    watcher.poll()
    assert rec.steps == {1: pytest.approx(0.55)}  # only the steps every seed has reached
    assert not watcher.pruned  # warm-up: epoch 1 may not be pruned
    with open(runs_dir / pre[1].name / runs.METRICS, "a") as fh:
        fh.write(json.dumps({"epoch": 2, "val_auc": 0.6}) + "\n")
    watcher.poll()
    assert rec.steps == {1: pytest.approx(0.55), 2: pytest.approx(0.55)}
    assert watcher.pruned == {3}
    assert lines == ["pruned    trial 3 at epoch 2: val AUC 0.5500 (lr=%s batch_size=%s)"
                     % (f"{rec.params['lr']:.4g}", rec.params["batch_size"])]
    for name in rec.runs:  # the pretrains and the fine-tunes not started yet
        assert "pruned by the search (trial 3" in runs.sweep_stop_requested(runs_dir, "tune", name)
    # a fine-tune that would start now does not
    from damtui.sweeps.execute import run_job

    fine = next(j for j in jobs if j.stage == "finetune")
    result = run_job(fine, sweeps.JobContext(str(runs_dir)))
    assert result["status"] == "skipped" and result["message"].startswith("pruned by the search")


def test_a_stop_request_stops_the_training_process(tmp_path: Path) -> None:
    import sys
    import time

    from damtui.sweeps.execute import Supervisor

    asked = []
    t0 = time.monotonic()
    with open(tmp_path / "log", "wb") as log:
        rc = Supervisor().run([sys.executable, "-c", "import time; time.sleep(60)"], log, {},
                              should_stop=lambda: asked.append(1) or True)
    assert rc == -15 and len(asked) == 1  # SIGTERM, once: the process ends its batch itself
    assert time.monotonic() - t0 < 30  # a hang guard, not a timing claim


@pytest.mark.parametrize("extra, expect", [
    ("[search]\nmethod = \"grid\"\ntrials = 2\nspace = { lr = { low = 0.1, high = 0.2 } }\n", "key 'search.method'"),
    ("[search]\nmethod = \"tpe\"\ntrials = 0\nspace = { lr = { low = 0.1, high = 0.2 } }\n", "key 'search.trials'"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nmetric = \"test_auc\"\nspace = { lr = { low = 0.1, high = 0.2 } }\n",
     "key 'search.metric'"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { lr = { low = 0.2, high = 0.1 } }\n",
     "key 'search.space.lr': low must be below high"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { lr = { low = 0.0, high = 0.1, log = true } }\n",
     "key 'search.space.lr': log = true needs low > 0"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { lr = { low = 0.1 } }\n", "key 'search.space.lr': give low and high"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { lr = { low = 0.1, high = 0.2, mean = 1 } }\n",
     "key 'search.space.lr.mean': unknown key"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { colour = { choices = [1, 2] } }\n",
     "key 'search.space.colour': unknown preset key"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { seed = { low = 0, high = 3 } }\n",
     "key 'search.space.seed': set it with the top-level key 'seeds'"),
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { momentum = { low = 0.5, high = 1.5 } }\n",
     "key 'momentum': Input should be less than 1"),  # checked against the preset schema at both ends before anything starts
    ("[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { finetune = { margin = { low = 0.5, high = 1.0 } } }\n",
     "key 'search.space.finetune.margin': the sweep's stages do not include finetune"),
    ("grid = { lr = [0.1] }\n[search]\nmethod = \"tpe\"\ntrials = 2\nspace = { width = { choices = [4, 8] } }\n",
     "key 'grid': a search samples [search.space]"),
])
def test_bad_search_table_is_one_line_naming_the_key(tmp_path: Path, capsys, extra: str, expect: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('datasets = ["synthetic2d"]\nstages = ["pretrain"]\n' + extra)
    assert cli.main(["sweep", str(path), "--dry-run"]) == cli.EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"damtui: error: {path}") and "\n" not in err, err
    assert expect in err, err


def test_search_dry_run_says_space_budget_and_what_ended(tmp_path: Path, runs_dir: Path, damtui) -> None:
    path = search_file(tmp_path, trials=3, prune="median")
    rc, out, err = damtui("sweep", str(path), "--dry-run")
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == ("search: tpe (Optuna), 3 trials, scored on val AUC (mean over seeds at each run's result),"
                        " startup 2 trials, pruning median (Optuna), after 1 epoch(s), seed 0")
    assert lines[1:3] == ["space: lr float 0.001..0.3 log", "space: batch_size one of 32, 64"]
    assert lines[3] == "each trial: 2 run(s) (2 seed(s) x pretrain), up to 6 runs"
    assert lines[4].startswith("data: synthetic2d synthetic")
    assert lines[5].startswith("time: unknown")
    assert not runs_dir.exists()
    example = Path(__file__).resolve().parents[2] / "examples" / "search-demo.toml"
    rc, out, err = damtui("sweep", str(example), "--dry-run")
    assert rc == 0 and "space: finetune.margin float 0.5..1.0" in out, err

    sweep, _ = sweeps.load_plan_file(path)
    run_jobs, _ = fake_backend(runs_dir)
    calls = []

    def two_only(jobs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return run_jobs(jobs)
    with pytest.raises(KeyboardInterrupt):
        search.run_search(sweep, path, runs_dir, two_only, lambda _: None)
    rc, out, _ = damtui("sweep", str(path), "--dry-run")
    earlier = next(ln for ln in out.splitlines() if ln.startswith("earlier:"))
    assert earlier.startswith("earlier: 2 of 3 trials ended, 1 to resume; best: trial ")


@pytest.mark.slow
def test_real_trials_on_the_local_backend(tmp_path: Path, runs_dir: Path, data_root: Path, damtui) -> None:
    """A TPE trial of one real `damtui train` run, through `damtui sweep` in-process."""
    path = tmp_path / "real.toml"
    path.write_text('name = "real"\ndatasets = ["synthetic2d"]\nstages = ["pretrain"]\npresets = ["demo"]\n'
                    'set = { width = 4, epochs = 1 }\n[search]\nmethod = "tpe"\ntrials = 1\n'
                    '[search.space]\nlr = { low = 0.01, high = 0.1, log = true }\n')
    rc, out, err = damtui("sweep", str(path), "--device", "cpu", "--runs-dir", str(runs_dir))
    assert rc == 0, err + out
    record = plan_record(runs_dir, "real")
    assert [t["state"] for t in record["trials"]] == ["complete"]
    assert record["state"]["status"] == "finished"
    for t in record["trials"]:
        (name,) = t["final"]
        info = runs.load_run(runs_dir / name).info
        assert info.status == runs.FINISHED and info.config["lr"] == t["params"]["lr"]
        assert t["value"] == pytest.approx(info.result.val_auc)
    assert "best: trial " in out.splitlines()[-2]


def test_a_failing_search_marks_its_own_plan_and_no_one_elses(tmp_path: Path, runs_dir: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from damtui.sweeps import backends

    path = search_file(tmp_path, trials=2)
    monkeypatch.setattr(backends, "run", lambda *a, **k: (_ for _ in ()).throw(DamtuiError("sbatch: error")))
    assert cli.main(["sweep", str(path), "--device", "cpu"]) == cli.EXIT_FAILED
    plan = plan_record(runs_dir)
    assert plan["state"]["status"] == "failed" and plan["state"]["message"] == "sbatch: error"
    plan["state"]["status"] = "finished"  # as if an earlier sweep process had ended well
    plan["state"]["pid"] = 1
    runs.write_sweep_plan(runs_dir, "tune", plan)
    other = search_file(tmp_path, trials=2, method="random")  # refused before it writes anything
    assert cli.main(["sweep", str(other), "--device", "cpu"]) == cli.EXIT_FAILED
    assert "was another search" in capsys.readouterr().err
    assert plan_record(runs_dir)["state"]["status"] == "finished"
