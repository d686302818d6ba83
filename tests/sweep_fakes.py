"""Run folders written the way `damtui train` writes them, without training: for the sweep tests
that check scheduling, searching and reporting (the real training path has its own tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from damtui.records import EpochRow, RunSummary
from damtui.store import runs
from damtui.sweeps import Job

# 2 seeds x pretrain -> finetune, width 4, 3 + 1 epochs: the sweep every backend test runs
SWEEP = """
name = "{name}"
datasets = ["synthetic2d"]
presets = ["demo"]
seeds = [0, 1]
set = {{ width = 4 }}

[pretrain]
set = {{ epochs = 3 }}

[finetune]
set = {{ epochs = 1 }}
"""


def sweep_file(tmp_path: Path, name: str, text: str | None = None) -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(SWEEP.format(name=name) if text is None else text)
    return path


def write_run(root: Path, job: Job, val: Callable[[Job, int], float], status: str = runs.FINISHED,
              epochs: int | None = None, trained_s: float = 0.0) -> Path:
    """A run folder of `job` with `epochs` rows (default: all) whose val AUC is val(job, epoch);
    test AUC is val AUC - 0.02."""
    writer = runs.RunWriter.create(root, job.config, {"sweep": job.sweep, "sweep_config": job.config_key,
                                                      "from_run": job.depends_on}, name=job.name)
    n = job.config["epochs"] if epochs is None else epochs
    rows = []
    for epoch in range(1, n + 1):
        v = val(job, epoch)
        row = EpochRow.from_json({"epoch": epoch, "val_auc": v, "val_acc": v - 0.1, "test_auc": v - 0.02,
                                  "test_acc": v - 0.12, "test_acc_thr": v - 0.1})
        writer.append_metrics(row)
        rows.append(row)
    writer.write_summary(RunSummary.of(rows, run_id=job.name, status=status, dataset=job.dataset, stage=job.stage,
                                       preset=job.preset))
    writer.write_status(status, n, job.config["epochs"])
    if trained_s:
        import json

        data = json.loads((writer.path / runs.STATUS).read_text())
        data.update(started=data["updated"] - trained_s, resumed=data["updated"] - trained_s, earlier_s=0.0)
        (writer.path / runs.STATUS).write_text(json.dumps(data))
    writer.close()
    return writer.path


def fake_result(job: Job, status: str, action: str = "new") -> dict[str, Any]:
    from damtui.sweeps.execute import _result

    return _result(job, action, status)
