"""Sweeps: many runs from one TOML file, each one a `damtui train` process.

  plan.py      the sweep file's strict schema, the plan (jobs, packs, run names), its record
  command.py   TrainCommand: the `damtui train` command line of a job, as data
  execute.py   what a retry does (decide), run_job, the Supervisor of the training processes
  report.py    the dry-run listing, result and totals lines, sweep_groups for the app
  backends.py  where jobs run: a local process pool, Ray core tasks, Slurm via submitit

The sweep's own files (plan.json, logs, discarded runs) are read and written by the run store,
damtui.store.runs. Nothing here imports torch, ray, submitit or textual at module level.
"""

from damtui.store.runs import load_sweep_plans as load_plans
from damtui.sweeps.execute import ERROR, JobContext, decide, skipped
from damtui.sweeps.plan import (FAILED, FINISHED, INTERRUPTED, RUNNING, Job, end_plan, load_plan_file, pack,
                                runs_of, write_plan)
from damtui.sweeps.report import count_line, flat_results, format_plan, sweep_groups, totals_line

__all__ = [  # what the CLI, the app and the tests use
    "ERROR", "FAILED", "FINISHED", "INTERRUPTED", "RUNNING", "Job", "JobContext", "count_line", "decide",
    "end_plan", "flat_results", "format_plan", "load_plan_file", "load_plans", "pack", "runs_of", "skipped",
    "sweep_groups", "totals_line", "write_plan",
]
