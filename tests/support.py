"""Helpers the engine-side tests import by name (tests/tui has its own conftest, so test modules
import from here rather than from `conftest`, whose module name the two folders share)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from damtui import config as cfg

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "medmnist"
DEAD_PID = 2**22 + 4321  # beyond pid_max: never alive


def demo_config(stage: str = "pretrain", flag: str = "synthetic2d", **over) -> cfg.Config:
    return cfg.apply_overrides(cfg.find_preset("demo", flag, stage), over)


def run_stage(config: cfg.Config, runs_dir: Path, **kw):
    """Train on CPU, collecting events; returns (summary, events)."""
    from damtui.train import engine

    events: list = []
    summary = engine.train(config, events.append, kw.pop("stop", threading.Event()),
                           runs_dir=runs_dir, device="cpu", **kw)
    return summary, events


def write_chest_like(root: Path) -> Path:
    """A small chestmnist-shaped file (14 labels, label 0 drawn as a bright corner) under root."""
    import numpy as np

    from damtui.data import datasets

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 96), ("val", 48), ("test", 48)):
        y = (rng.random((n, 14)) < 0.3).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        x[:, :14, :14] += (y[:, :1] * 120).astype(np.uint8)[:, :, None]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = x, y
    np.savez(datasets.dataset_path("chestmnist", root), **arrays)
    return root


def one_line(rc: int, err: str, expect: str) -> str:
    assert rc != 0
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("damtui: error: ") and "Traceback" not in err, err
    assert expect in lines[0], lines[0]
    return lines[0]


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def crash(path: Path) -> Path:
    """Make a finished run look like one whose process was SIGKILLed."""
    from damtui.store import runs

    status = json.loads((path / runs.STATUS).read_text())
    status.update(state=runs.RUNNING, pid=DEAD_PID)
    (path / runs.STATUS).write_text(json.dumps(status))
    (path / runs.SUMMARY).unlink(missing_ok=True)
    return path


def fake_scores(epoch: int, labels, scores, threshold: float = 0.5, val: int = 40):
    """A scores.npz record of one epoch: the given test labels and scores, made-up validation."""
    import numpy as np

    from damtui.store import runs

    rng = np.random.default_rng(epoch)
    yv = (rng.random(val) < 0.5).astype(int)
    return runs.Scores.of(epoch, (rng.random((val, 1)), yv[:, None]),
                          (np.asarray(scores, float).reshape(len(scores), -1), np.asarray(labels).reshape(len(labels), -1)),
                          [threshold])


def fake_stage_run(root: Path, name: str, *, dataset: str = "breastmnist", stage: str = "pretrain", seed: int = 0,
                   epochs: int = 4, best_epoch: int = 3, scores=None, source: Path | None = None,
                   state: str = "finished") -> Path:
    """A finished run folder written without training: config (a fine-tune's runtime names its
    source and that source's summary, as `damtui train --from` records them), metrics whose best
    validation epoch is `best_epoch`, status, summary and, when given, scores.npz."""
    from damtui.records import EpochRow, RunSummary
    from damtui.store import runs

    path = Path(root) / name
    path.mkdir(parents=True)
    config = {"preset": f"{dataset}-{stage}-tuned", "dataset": dataset, "stage": stage, "seed": seed,
              "epochs": epochs, "loss": "aucm" if stage == "finetune" else "ce",
              "optimizer": "pesg" if stage == "finetune" else "adam", "lr": 0.1 if stage == "finetune" else 0.001}
    summary_of_source = runs.read_summary(source) if source is not None else None
    runtime = {"device": "cpu", "from_run": source.name if source else None,
               "from_run_path": str(source.resolve()) if source else None,
               "from_run_summary": summary_of_source.to_json() if summary_of_source else None}
    runs.atomic_write_json(path / runs.CONFIG, {"config": config, "runtime": runtime})
    rows = [EpochRow(e, val_auc=0.9 if e == best_epoch else 0.8 - 0.01 * e, test_auc=0.85, test_acc=0.8,
                     test_acc_thr=0.8, threshold=(0.5,)) for e in range(1, epochs + 1)]
    writer = runs.RunWriter(path)
    for row in rows:
        writer.append_metrics(row)
    runs.atomic_write_json(path / runs.STATUS, {"state": state, "pid": DEAD_PID, "host": "elsewhere",
                                                "started": 0.0, "updated": 60.0, "epoch": epochs, "epochs": epochs})
    summary = RunSummary.of(rows, run_id=name, status=state, dataset=dataset, stage=stage,
                            preset=config["preset"], source=summary_of_source)
    runs.atomic_write_json(path / runs.SUMMARY, summary.to_json())
    if scores is not None:
        runs.write_scores(path, scores)
    return path
