"""Scores of a saved run's best.pt, and seed ensembles built from them (benchmarks/quality.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from damtui.data import datasets
from damtui.analysis import metrics
from damtui.store import runs
from damtui.config import validate
from damtui.train.devices import resolve_device
from damtui.train.pipeline import DataPipeline
from damtui.train.stages import make_model
from damtui.train.trainer import score_split


def predict_best(run_dir: Path, data_root: Path | None = None, device: str = "auto",
                 splits: tuple[str, ...] = ("val", "test")) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Scores and labels of a run's best.pt on the given splits, evaluated like the run did
    (eval batches, flip TTA if the run used it): the building block of seed ensembles."""
    rec = runs.load_run(run_dir)
    config = validate(dict(rec.config), f"{run_dir}/{runs.CONFIG}")
    ckpt = runs.load_checkpoint(Path(run_dir) / runs.BEST)
    dev = resolve_device(device)
    data = datasets.load(config.dataset, data_root)
    model = make_model(config, data.spec, int(ckpt["num_outputs"]))
    model.load_state_dict(ckpt["model"])
    model = model.to(dev).eval()
    pipeline = DataPipeline(data, config, dev)
    return {split: score_split(model, pipeline, split, config, data.spec.multilabel, dev) for split in splits}


def ensemble_metrics(run_dirs: list[Path], data_root: Path | None = None, device: str = "auto") -> dict[str, Any]:
    """Average the best.pt scores of several runs (seeds) and score the ensemble honestly: the
    threshold is chosen on the averaged validation scores, test is only read."""
    preds = [predict_best(p, data_root, device) for p in run_dirs]
    val_s = np.mean([p["val"][0] for p in preds], axis=0)
    test_s = np.mean([p["test"][0] for p in preds], axis=0)
    val_y, test_y = preds[0]["val"][1], preds[0]["test"][1]
    thr = metrics.choose_threshold(val_y, val_s)
    return {"members": [Path(p).name for p in run_dirs], "val_auc": metrics.auc(val_y, val_s),
            **{f"test_{k}": v for k, v in metrics.split_metrics(test_y, test_s, thr).items()}}
