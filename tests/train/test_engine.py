import math
import shutil
import subprocess
import sys
import threading

import pytest

from damtui.train import engine, predict
from damtui import events as E
from damtui.store import runs
from damtui.train.resume import resume_config
from damtui.train.trainer import update_ema
from damtui.errors import DamtuiError
from support import demo_config, run_stage, write_chest_like

TIMING = {"epoch_s", "train_s", "eval_s", "images_per_s"}


def _rows(events):
    return [e.row for e in events if isinstance(e, E.EpochMetrics)]


def _strip(rows):
    return [{k: v for k, v in r.to_json().items() if k not in TIMING} for r in rows]


@pytest.mark.slow
def test_engine_imports_without_textual():
    code = "import damtui.train.engine, damtui.cli, sys; assert 'textual' not in sys.modules, 'textual imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pretrain_events_files_and_checkpoints(pretrain_run):
    rec = runs.load_run(pretrain_run)
    assert rec.info.status == runs.FINISHED
    assert [r.epoch for r in rec.metrics] == list(range(1, rec.config["epochs"] + 1))
    row = rec.metrics[0]
    for key in ("train_loss", "train_auc", "train_acc", "val_auc", "val_acc", "val_acc_thr", "test_auc",
                "test_acc", "test_acc_thr", "threshold", "lr", "epoch_s", "images_per_s"):
        assert row.value(key) is not None
    assert rec.info.best.val_auc > 0.8  # the synthetic signal is learnable
    best = runs.load_checkpoint(pretrain_run / runs.BEST)
    assert best["epoch"] == rec.info.best.epoch
    last = runs.load_checkpoint(pretrain_run / runs.LAST)
    assert last["epoch"] == rec.config["epochs"]
    assert "versions" in rec.runtime and rec.runtime["versions"]["libauc"] == "2.0.1"


@pytest.mark.slow
def test_event_sequence(runs_dir):
    summary, events = run_stage(demo_config(epochs=2, width=4), runs_dir)
    assert isinstance(events[0], E.RunStarted) and isinstance(events[-1], E.RunFinished)
    assert sum(isinstance(e, E.EpochMetrics) for e in events) == 2
    assert any(isinstance(e, E.BatchProgress) for e in events)
    assert {e.kind for e in events if isinstance(e, E.CheckpointSaved)} == {"best", "last"}
    assert events[-1].summary == summary


@pytest.mark.slow
def test_finetune_head_transplant_and_two_stage_gain(runs_dir, pretrain_copy):
    pre = runs.load_run(pretrain_copy)
    summary, events = run_stage(demo_config("finetune"), runs_dir, from_run=pretrain_copy)
    rows = _rows(events)
    # the fine-tune starts ranking like the pretrained model: its first epoch is close to the best
    assert abs(rows[0].val_auc - pre.info.best.val_auc) <= 0.02
    assert summary.answer.val_auc >= pre.info.best.val_auc
    assert runs.load_run(runs_dir / summary.run_id).runtime["from_run"] == pretrain_copy.name


@pytest.mark.slow
def test_finetune_raises_val_auc_of_an_undertrained_pretrain(runs_dir):
    pre, _ = run_stage(demo_config(epochs=1), runs_dir)
    fine, _ = run_stage(demo_config("finetune", epochs=4), runs_dir, from_run=runs_dir / pre.run_id)
    assert fine.best.val_auc > pre.best.val_auc + 0.005


@pytest.mark.slow
def test_random_head_variant_is_available(runs_dir, pretrain_copy):
    summary, _ = run_stage(demo_config("finetune", epochs=1, head_transplant=False), runs_dir, from_run=pretrain_copy)
    assert summary.status == "finished"


def test_cancel_stops_within_one_batch(runs_dir, monkeypatch):
    monkeypatch.setattr(engine, "PROGRESS_EVERY_S", 0.0)
    stop = threading.Event()
    seen = []

    def emit(ev):
        seen.append(ev)
        if isinstance(ev, E.BatchProgress) and ev.epoch == 2 and ev.batch == 3:
            stop.set()

    summary = engine.train(demo_config(epochs=3, width=4), emit, stop, runs_dir=runs_dir, device="cpu")
    after = [e for e in seen[seen.index(next(e for e in seen if isinstance(e, E.BatchProgress) and e.epoch == 2 and e.batch == 3)) + 1:]]
    assert not any(isinstance(e, E.BatchProgress) for e in after)
    assert isinstance(seen[-1], E.RunCancelled) and seen[-1].epoch == 1
    rec = runs.load_run(runs_dir / summary.run_id)
    assert rec.info.status == runs.CANCELLED and len(rec.metrics) == 1


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_resume_equals_uninterrupted_run(runs_dir, pretrain_copy, stage):
    over = dict(epochs=4, width=4) if stage == "pretrain" else dict(epochs=4, dual_sampler=True, ema=0.9, tta_flip=True)
    kw = {"from_run": pretrain_copy} if stage == "finetune" else {}
    config = demo_config(stage, **over)
    full, full_events = run_stage(config, runs_dir, **kw)

    stop = threading.Event()

    def emit(ev):
        if isinstance(ev, E.EpochMetrics) and ev.epoch == 2:
            stop.set()

    part = engine.train(config, emit, stop, runs_dir=runs_dir, device="cpu", **kw)
    assert part.status == "cancelled" and part.epochs_done == 2
    path = runs_dir / part.run_id
    resumed, res_events = run_stage(resume_config(path), runs_dir, resume=path)
    assert res_events[0].start_epoch == 2
    rows = runs.load_run(path).metrics
    assert _strip(rows) == _strip(_rows(full_events))
    assert resumed.best.val_auc == full.best.val_auc


@pytest.mark.slow
def test_resume_extends_a_finished_run(runs_dir, tmp_path):
    done, _ = run_stage(demo_config(epochs=1, width=4), runs_dir)
    path = runs_dir / done.run_id
    with pytest.raises(DamtuiError, match="already has 1 epochs"):
        run_stage(resume_config(path), runs_dir, resume=path)
    before = shutil.copytree(path, tmp_path / "as-trained" / done.run_id)
    more, _ = run_stage(resume_config(path, epochs=2), runs_dir, resume=path)
    extended = runs.load_run(path)
    assert more.epochs_done == 2 and extended.info.status == runs.FINISHED
    # the extension is part of the run's identity: its config says 2 epochs, its runtime how it got there
    assert extended.config["epochs"] == 2
    (record,) = extended.runtime["extensions"]
    assert record["after_epoch"] == 1 and record["changed"] == {"epochs": [1, 2]}
    from damtui.analysis import compare

    rows = compare.comparison_rows([extended, runs.load_run(before)])
    assert [(r["epochs_done"], r["epochs_planned"], r["epochs"]) for r in rows] == [(2, 2, 2), (1, 1, 1)]


def test_nan_loss_fails_the_run_and_keeps_best(runs_dir, monkeypatch):
    from damtui.train import stages

    real = stages.Stage.loss

    def poisoned(self, out, y):
        loss = real(self, out, y)
        return loss * float("nan") if self.optimizer.param_groups[0].get("_poison") else loss

    monkeypatch.setattr(stages.Stage, "loss", poisoned)

    def emit(ev):
        if isinstance(ev, E.EpochMetrics) and ev.epoch == 1:
            ev_stage["opt"].param_groups[0]["_poison"] = True

    ev_stage = {}
    real_init = stages.Stage.__init__

    def spy_init(self, *a, **k):
        real_init(self, *a, **k)
        ev_stage["opt"] = self.optimizer

    monkeypatch.setattr(stages.Stage, "__init__", spy_init)
    summary = engine.train(demo_config(epochs=3, width=4), emit, threading.Event(), runs_dir=runs_dir, device="cpu")
    assert summary.status == "failed" and "loss became nan in epoch 2" in summary.message
    rec = runs.load_run(runs_dir / summary.run_id)
    assert rec.info.status == runs.FAILED and len(rec.metrics) == 1
    assert runs.load_checkpoint(rec.info.path / runs.BEST)["epoch"] == 1


@pytest.mark.slow
def test_bad_from_runs_fail_before_a_folder_is_made(runs_dir, pretrain_copy):
    before = set(runs_dir.iterdir())
    with pytest.raises(DamtuiError, match="is a synthetic2d run"):
        run_stage(demo_config("finetune", flag="synthetic3d"), runs_dir, from_run=pretrain_copy)
    with pytest.raises(DamtuiError, match="add --from RUN"):
        run_stage(demo_config("finetune"), runs_dir)
    fine, _ = run_stage(demo_config("finetune", epochs=1), runs_dir, from_run=pretrain_copy)
    before = set(runs_dir.iterdir())
    with pytest.raises(DamtuiError, match="is a finetune run"):
        run_stage(demo_config("finetune"), runs_dir, from_run=runs_dir / fine.run_id)
    (pretrain_copy / runs.BEST).unlink()
    with pytest.raises(DamtuiError, match="no checkpoint there"):
        run_stage(demo_config("finetune"), runs_dir, from_run=pretrain_copy)
    assert set(runs_dir.iterdir()) == before


@pytest.mark.slow
def test_3d_pretrain_then_finetune(runs_dir):
    pre, _ = run_stage(demo_config(flag="synthetic3d", epochs=1, width=4), runs_dir)
    assert pre.status == "finished" and not math.isnan(pre.best.val_auc)
    fine, _ = run_stage(demo_config("finetune", flag="synthetic3d", epochs=1), runs_dir,
                        from_run=runs_dir / pre.run_id)
    assert fine.status == "finished"
    assert runs.load_run(runs_dir / fine.run_id).config["width"] == 4  # inherited from the source


def test_multilabel_finetune_with_multilabel_aucm(runs_dir, data_root, tmp_path):
    """A chestmnist-shaped (14 labels) file through both stages, incl. resume of MultiLabelAUCMLoss."""
    root = write_chest_like(tmp_path / "data")
    pre_c = demo_config(epochs=1, width=4).model_copy(update={"dataset": "chestmnist"})
    pre, _ = run_stage(pre_c, runs_dir, data_root=root)
    fine_c = demo_config("finetune", epochs=2).model_copy(update={"dataset": "chestmnist"})
    fine, _ = run_stage(fine_c, runs_dir, data_root=root, from_run=runs_dir / pre.run_id)
    assert fine.status == "finished"
    last = runs.load_checkpoint(runs_dir / fine.run_id / runs.LAST)
    assert last["stage"]["loss"]["a"].shape == (14,)


@pytest.mark.slow
def test_resume_of_a_run_stopped_before_its_first_checkpoint_starts_over(runs_dir, pretrain_copy):
    config = demo_config("finetune", epochs=2)
    full, full_events = run_stage(config, runs_dir, from_run=pretrain_copy)
    stop = threading.Event()
    stop.set()  # stops at the first batch: no epoch, no checkpoint
    part = engine.train(config, lambda ev: None, stop, runs_dir=runs_dir, device="cpu", from_run=pretrain_copy)
    path = runs_dir / part.run_id
    assert part.status == "cancelled" and not (path / runs.LAST).exists()
    again, events = run_stage(resume_config(path), runs_dir, resume=path)
    assert events[0].start_epoch == 0 and again.status == "finished"
    assert _strip(runs.load_run(path).metrics) == _strip(_rows(full_events))


@pytest.mark.slow
def test_predict_best_reproduces_the_runs_own_numbers_and_ensembles(runs_dir, pretrain_run):
    rec = runs.load_run(pretrain_run)
    preds = predict.predict_best(pretrain_run, device="cpu")
    from damtui.analysis import metrics

    assert metrics.auc(preds["test"][1], preds["test"][0]) == pytest.approx(rec.info.best.test_auc, abs=1e-6)
    other, _ = run_stage(demo_config(seed=1), runs_dir)
    ens = predict.ensemble_metrics([pretrain_run, runs_dir / other.run_id], device="cpu")
    assert len(ens["members"]) == 2 and 0.5 < ens["test_auc"] <= 1.0
    assert set(ens) >= {"val_auc", "test_auc", "test_acc", "test_acc_thr"}


def test_update_ema_is_averaged_models_update_bit_for_bit():
    """trainer.update_ema replaces AveragedModel.update_parameters (which syncs the GPU every step)."""
    import copy

    import torch
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    from damtui.data import datasets
    from damtui.train.stages import make_model

    torch.manual_seed(0)
    model = make_model(demo_config(width=4), datasets.spec("synthetic2d"), 2)
    ours, theirs = (AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(0.9), use_buffers=True) for _ in range(2))
    for step in range(4):
        for _ in range(3 * step + 1):
            model(torch.randn(8, 1, 28, 28))  # moves the BatchNorm buffers (and num_batches_tracked)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        update_ema(ours, model, 0.9, first=step == 0)
        theirs.update_parameters(model)
    a, b = ours.state_dict(), theirs.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert int(a["module.bn1.num_batches_tracked"]) > 1  # the integer buffers were averaged too
    assert int(ours.n_averaged) == 4 and ours.n_averaged.device.type == "cpu"
    assert not torch.equal(a["module.fc.weight"], copy.deepcopy(model).state_dict()["fc.weight"])


def test_train_batches_are_consecutive_slices_of_the_order_and_drop_a_batch_of_one():
    import numpy as np
    import torch

    from damtui.train import augment
    from damtui.data import datasets
    from damtui.train.pipeline import DataPipeline

    config = demo_config(augment=False, batch_size=33)
    pipe = DataPipeline(datasets.load("synthetic2d"), config, torch.device("cpu"))
    order = np.random.default_rng(0).permutation(800)[:67]  # 33 + 33 + 1
    got = list(pipe.train_batches(order))
    assert len(got) == pipe.num_train_batches(order) == 2
    for i, (x, y) in enumerate(got):
        idx = torch.from_numpy(order[i * 33:(i + 1) * 33])
        assert torch.equal(x, augment.to_float(pipe.x["train"][idx], False))
        assert torch.equal(y, pipe.y["train"][idx])


@pytest.mark.slow
def test_finetune_last_pt_stores_pesg_weights_once_and_old_checkpoints_resume(runs_dir, pretrain_copy):
    """PESG's reference and average weights used to be saved twice (in its param group and at the
    top level): 268 MB instead of 179 MB for the full-width model. Old checkpoints still resume."""
    config = demo_config("finetune", epochs=2)
    stop = threading.Event()
    part = engine.train(config, lambda ev: stop.set() if isinstance(ev, E.EpochMetrics) else None, stop,
                        runs_dir=runs_dir, device="cpu", from_run=pretrain_copy)
    path = runs_dir / part.run_id
    ckpt = runs.load_checkpoint(path / runs.LAST)
    opt = ckpt["stage"]["optimizer"]
    assert len(opt["model_ref"]) == len(opt["model_acc"]) > 0
    assert not any(k in g for g in opt["param_groups"] for k in ("model_ref", "model_acc", "a", "b", "alpha"))
    # the old format: the same tensors in the param group too
    import torch

    old = {**ckpt, "stage": {**ckpt["stage"], "optimizer": {**opt, "param_groups": [
        {**g, "model_ref": opt["model_ref"], "model_acc": opt["model_acc"]} for g in opt["param_groups"]]}}}
    torch.save(old, path / runs.LAST)
    resumed, _ = run_stage(resume_config(path), runs_dir, resume=path)
    assert resumed.status == "finished" and resumed.epochs_done == 2
