"""Random and TPE search with pruning, through Optuna, on any sweep backend.

Why Optuna: its samplers (RandomSampler, TPESampler) and pruners (MedianPruner,
SuccessiveHalvingPruner = asynchronous successive halving) are well kept and tested; damtui only
turns a trial's values into `damtui train` runs and a run's metrics.jsonl back into the values
Optuna reads. Its ask-and-tell interface drives trials that run anywhere: the trials' runs are
ordinary sweep jobs (run names from their config, retries resume), scheduled by the local pool,
Ray or Slurm exactly as a grid's are, in waves of `--max-parallel` trials (default 1).

Pruning reads each running trial's per-epoch validation metric from its runs' metrics.jsonl every
few seconds (pretrain epochs, then the fine-tune's continue the steps), reports the mean over its
seeds to Optuna and, when the pruner says so, asks the trial's jobs to stop through a file under
<runs>/.sweeps/<sweep>/stop/ that the job sees wherever it runs (docs/SWEEPS.md). A pruned run is
`cancelled` and tagged `pruned`.

plan.json keeps the trials (values, state, intermediate values): a sweep run again restores the
ended trials into the study, resumes the interrupted ones first and continues to the budget.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from damtui.errors import DamtuiError
from damtui.records import METRICS, MeanStd
from damtui.store import notes as run_notes
from damtui.store import runs
from damtui.sweeps.plan import Job, SweepFile, pack, trial_jobs, write_plan
from damtui.sweeps.report import PRUNED_BY, PRUNED_TAG
from damtui.sweeps.space import SearchSection, params_text

POLL_S = 2.0  # how often running trials' metrics are read for the pruner
COMPLETE, PRUNED, FAILED, RUNNING, INTERRUPTED = "complete", "pruned", "failed", "running", "interrupted"

Report = Callable[[str], None]
RunJobs = Callable[[list[Job]], list[dict[str, Any]]]  # a backend's run over a list of jobs


@dataclass
class TrialRecord:
    """One trial as plan.json keeps it."""

    number: int
    params: dict[str, Any]
    state: str = RUNNING
    value: float | None = None
    runs: list[str] = field(default_factory=list)  # every run of the trial, pretrains first
    final: list[str] = field(default_factory=list)  # the runs it is scored on (its last stage)
    steps: dict[int, float] = field(default_factory=dict)  # intermediate values reported to the pruner
    message: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "params": self.params, "state": self.state, "value": self.value,
                "runs": self.runs, "final": self.final, "steps": {str(k): v for k, v in self.steps.items()},
                "message": self.message}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrialRecord:
        return cls(int(data["number"]), dict(data["params"]), str(data.get("state", RUNNING)), data.get("value"),
                   list(data.get("runs", [])), list(data.get("final", [])),
                   {int(k): float(v) for k, v in (data.get("steps") or {}).items()}, str(data.get("message", "")))


def _sampler(search: SearchSection, wave: int) -> Any:
    import optuna

    if search.method == "random":
        return optuna.samplers.RandomSampler(seed=search.seed)
    return optuna.samplers.TPESampler(seed=search.seed, n_startup_trials=search.startup_trials,
                                      constant_liar=wave > 1)


def _pruner(search: SearchSection) -> Any:
    import optuna

    if search.prune == "median":
        # steps are epochs from 1: Optuna prunes at a step >= n_warmup_steps
        return optuna.pruners.MedianPruner(n_startup_trials=search.startup_trials,
                                           n_warmup_steps=search.warmup_epochs + 1)
    if search.prune == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=search.warmup_epochs + 1)
    return optuna.pruners.NopPruner()


def new_study(search: SearchSection, wave: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # damtui prints its own lines
    return optuna.create_study(direction="maximize", sampler=_sampler(search, wave), pruner=_pruner(search))


def restore(study: Any, search: SearchSection, trials: list[TrialRecord]) -> list[TrialRecord]:
    """Put the ended trials of an earlier sweep process into `study`; the interrupted ones are
    queued to be asked again first (their runs resume). Returns those queued."""
    from optuna.trial import TrialState, create_trial

    space = {k: d.optuna() for k, d in search.flat_space().items()}
    again = []
    for t in trials:
        if t.state in (COMPLETE, PRUNED, FAILED):
            state = {COMPLETE: TrialState.COMPLETE, PRUNED: TrialState.PRUNED, FAILED: TrialState.FAIL}[t.state]
            study.add_trial(create_trial(state=state, value=t.value if t.state == COMPLETE else None,
                                         params=t.params, distributions=space, intermediate_values=t.steps,
                                         user_attrs={"number": t.number}))
        else:
            study.enqueue_trial(t.params, user_attrs={"number": t.number})
            again.append(t)
    return again


class PruneWatcher:
    """Reads the running trials' metrics, reports them to Optuna and stops the trials it prunes."""

    def __init__(self, root: Path, sweep: str, search: SearchSection, live: dict[int, tuple[Any, TrialRecord]],
                 chains: dict[int, list[list[Job]]], report: Report) -> None:
        self.root, self.sweep, self.search, self.report = root, sweep, search, report
        self.live = live  # trial number -> (optuna trial, record)
        self.chains = chains  # trial number -> per seed, its jobs in stage order
        self.pruned: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.search.prune != "none":
            self._thread = threading.Thread(target=self._loop, name="damtui-prune", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # the last epochs, so the record holds every step

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def steps(self, number: int) -> dict[int, float]:
        """Step -> mean over the trial's seeds of the metric at that epoch, for the steps every seed
        has reached; a fine-tune's epochs continue after its pretrain's planned epochs."""
        per_seed: list[dict[int, float]] = []
        for chain in self.chains[number]:
            seen: dict[int, float] = {}
            offset = 0
            for job in chain:
                rows, _ = runs.read_metrics(self.root / job.name)
                for row in rows:
                    value = row.value(self.search.metric)
                    if value is not None:
                        seen[offset + row.epoch] = float(value)
                offset += int(job.config.get("epochs", 0))
            per_seed.append(seen)
        common = set.intersection(*(set(s) for s in per_seed)) if per_seed else set()
        return {step: statistics.fmean(s[step] for s in per_seed) for step in sorted(common)}

    def poll(self) -> None:
        for number, (trial, record) in list(self.live.items()):
            if number in self.pruned:
                continue
            for step, value in self.steps(number).items():
                if step not in record.steps:
                    record.steps[step] = value
                    trial.report(value, step)
            last = max((sum(int(j.config.get("epochs", 0)) for j in c) for c in self.chains[number]), default=0)
            if record.steps and max(record.steps) < last and self.search.prune != "none" and trial.should_prune():
                self._prune(number, record)  # (at its last epoch there is nothing left to save)

    def _prune(self, number: int, record: TrialRecord) -> None:
        self.pruned.add(number)
        step = max(record.steps)
        others = {n for k, (_, r) in self.live.items() if k != number and k not in self.pruned for n in r.runs}
        label = METRICS[self.search.metric].label
        why = f"{PRUNED_BY} (trial {number}: {label} {record.steps[step]:.4f} at epoch {step})"
        for name in record.runs:
            if name not in others:  # a pretrain another live trial shares goes on
                runs.request_sweep_stop(self.root, self.sweep, name, why)
        self.report(f"pruned    trial {number} at epoch {step}: {label} {record.steps[step]:.4f}"
                    f" ({params_text(record.params)})")


def _score(root: Path, record: TrialRecord, metric: str) -> tuple[float | None, str]:
    """A finished trial's value: the mean over its seeds of `metric` at each final run's result."""
    values = []
    for name in record.final:
        try:
            info = runs.load_run(root / name).info
        except DamtuiError as err:
            return None, str(err)
        if info.status != runs.FINISHED:
            return None, f"{name} is {info.status}"
        value = info.result.value(metric) if info.result else None
        if value is None:
            return None, f"{name} has no {metric}"
        values.append(float(value))
    return (statistics.fmean(values), "") if values else (None, "no runs")


def best_line(trials: list[TrialRecord], metric: str, root: Path) -> str:
    """The winner so far: its value, hyper-parameters and honest test AUC over its seeds."""
    done = [t for t in trials if t.state == COMPLETE and t.value is not None]
    if not done:
        return "best: none yet (no trial finished)"
    best = max(done, key=lambda t: (t.value, -t.number))
    infos = []
    for name in best.final:
        try:
            infos.append(runs.load_run(root / name).info)
        except DamtuiError:
            pass
    test = MeanStd.of(i.result.value("test_auc") if i.result else None for i in infos)
    return (f"best: trial {best.number} {METRICS[metric].label} {best.value:.4f} ({params_text(best.params)});"
            f" test AUC {test.format(4)} at the same epochs; runs {', '.join(best.final)}")


def _final_runs(jobs: list[Job]) -> list[str]:
    last = "finetune" if any(j.stage == "finetune" for j in jobs) else "pretrain"
    return [j.name for j in jobs if j.stage == last]


def _chains(jobs: list[Job]) -> list[list[Job]]:
    by_name = {j.name: j for j in jobs}
    chains = []
    for job in (j for j in jobs if j.name in _final_runs(jobs)):
        chain = [job]
        while chain[0].depends_on:
            chain.insert(0, by_name[chain[0].depends_on])
        chains.append(chain)
    return chains


def check_same_search(earlier: dict[str, Any], search: SearchSection, name: str, root: Path) -> None:
    """A sweep run again must be the same search; only its budget (trials) may change."""
    def but_budget(d: Any) -> Any:
        return {k: v for k, v in d.items() if k != "trials"} if isinstance(d, dict) else d
    recorded = earlier.get("search")
    if recorded is not None and but_budget(recorded) != but_budget(search.describe()):
        raise DamtuiError(f"sweep {name} in {root} was another search (its [search] differs in more than"
                          f" trials); rename the sweep (name = ...) or move its runs and"
                          f" {runs.sweep_dir(root, name)} away")


def run_search(sweep: SweepFile, path: Path, root: Path, run_jobs: RunJobs, report: Report,
               wave: int = 1, pack_size: int = 1) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ask, run and tell trials until the budget is spent; returns the plan record and every run's
    result. `run_jobs` runs a list of jobs on the chosen backend and returns their results."""
    search = sweep.search
    assert search is not None and sweep.name is not None
    earlier = runs.load_sweep_plans(root).get(sweep.name, {})
    check_same_search(earlier, search, sweep.name, root)
    trials = [TrialRecord.from_json(t) for t in earlier.get("trials", [])]
    study = new_study(search, wave)
    queued = {t.number: t for t in restore(study, search, trials)}
    runs.clear_sweep_stops(root, sweep.name)
    jobs: dict[str, Job] = {}
    for t in trials:
        for job in trial_jobs(sweep, path, t.params):
            jobs.setdefault(job.name, job)

    def save(state: str = "running") -> dict[str, Any]:
        return write_plan(root, sweep, list(jobs.values()), path, search=search.describe(),
                          trials=[t.to_json() for t in sorted(trials, key=lambda t: t.number)])

    record = save()
    results: list[dict[str, Any]] = []
    ended = sum(t.state in (COMPLETE, PRUNED, FAILED) for t in trials)
    if ended:
        report(f"search: {ended} of {search.trials} trials ended earlier; {best_line(trials, search.metric, root)}")
    while ended < search.trials:
        live: dict[int, tuple[Any, TrialRecord]] = {}
        chains: dict[int, list[list[Job]]] = {}
        wave_jobs: dict[str, Job] = {}
        for _ in range(min(wave, search.trials - ended)):
            trial = study.ask({k: d.optuna() for k, d in search.flat_space().items()})
            number = trial.user_attrs.get("number")
            if number in queued:
                rec = queued.pop(number)
                rec.state, rec.message = RUNNING, ""
            else:
                rec = TrialRecord(len(trials), dict(trial.params))
                trials.append(rec)
            mine = trial_jobs(sweep, path, rec.params)
            rec.runs, rec.final = [j.name for j in mine], _final_runs(mine)
            live[rec.number], chains[rec.number] = (trial, rec), _chains(mine)
            for job in mine:
                jobs.setdefault(job.name, job)
                wave_jobs.setdefault(job.name, job)
            report(f"trial {rec.number}: {params_text(rec.params)} ({len(mine)} run{'s' * (len(mine) != 1)})")
        record = save()
        watcher = PruneWatcher(root, sweep.name, search, live, chains, report)
        watcher.start()
        try:
            results += run_jobs(pack(list(wave_jobs.values()), pack_size))
        except KeyboardInterrupt:
            watcher.stop()
            for _, rec in live.values():
                rec.state, rec.message = INTERRUPTED, "the sweep was interrupted; run it again to resume"
            save()
            raise
        watcher.stop()
        for number, (trial, rec) in live.items():
            _tell(study, trial, rec, number in watcher.pruned, root, search.metric)
            ended += 1
            value = f"{METRICS[search.metric].label} {rec.value:.4f}" if rec.value is not None else rec.message
            report(f"trial {rec.number} {rec.state}: {value}; {best_line(trials, search.metric, root)}")
        record = save()
    report(best_line(trials, search.metric, root))
    return record, results


def _tell(study: Any, trial: Any, rec: TrialRecord, pruned: bool, root: Path, metric: str) -> None:
    from optuna.trial import TrialState

    value, why = _score(root, rec, metric)
    if pruned and value is None:  # pruned in time: its runs stopped early
        rec.state = PRUNED
        rec.message = f"pruned at epoch {max(rec.steps)}" if rec.steps else "pruned"
        for name in rec.runs:
            if (root / name).is_dir() and runs.load_run(root / name).info.status == runs.CANCELLED:
                run_notes.tag_run(root / name, [PRUNED_TAG])
        study.tell(trial, state=TrialState.PRUNED)
        return
    if value is None:
        rec.state, rec.message = FAILED, why
        study.tell(trial, state=TrialState.FAIL)
    else:
        rec.state, rec.value = COMPLETE, value
        study.tell(trial, value)
