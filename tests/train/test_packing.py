"""Packed training (K seeds as one vmapped model) against the same runs trained one by one."""

import threading

import pytest

from damtui import events as E
from damtui.train import packing
from damtui.store import runs
from damtui.train.resume import resume_config
from damtui.errors import DamtuiError
from damtui.train.stages import Stage
from support import assert_same_run, demo_config, run_stage, write_chest_like


def _pack(configs, runs_dir, names, **kw):
    events = [[] for _ in configs]
    summaries = packing.train_packed(configs, [e.append for e in events], kw.pop("stop", threading.Event()),
                                     runs_dir=runs_dir, device="cpu", run_names=names, **kw)
    return summaries, events


@pytest.mark.slow
def test_packed_two_stage_runs_match_runs_trained_alone(runs_dir, float64):
    """Pretrain then finetune (milestones, PESG regularizer update, AUCM a/b/alpha, EMA, flip TTA):
    each packed member equals its run trained alone, and resumes alone with `damtui train`."""
    over = dict(width=4, epochs=2, ema=0.9, tta_flip=True)
    pre = [demo_config(seed=s, **over) for s in (0, 1)]
    for c in pre:
        assert run_stage(c, runs_dir / "alone", run_name=f"pre{c.seed}")[0].status == "finished"
    summaries, events = _pack(pre, runs_dir / "packed", ["pre0", "pre1"])
    assert [s.status for s in summaries] == ["finished", "finished"]
    assert [sum(isinstance(e, E.EpochMetrics) for e in ev) for ev in events] == [2, 2]
    for name in ("pre0", "pre1"):
        assert_same_run(runs_dir / "alone" / name, runs_dir / "packed" / name)

    fine = [demo_config("finetune", seed=s, epochs=2, ema=0.9, tta_flip=True) for s in (0, 1)]
    sources = [runs_dir / "alone" / f"pre{s}" for s in (0, 1)]
    for c, src in zip(fine, sources):
        run_stage(c, runs_dir / "alone", run_name=f"fine{c.seed}", from_run=src)
    summaries, _ = _pack(fine, runs_dir / "packed", ["fine0", "fine1"], from_runs=sources)
    for s in (0, 1):
        assert_same_run(runs_dir / "alone" / f"fine{s}", runs_dir / "packed" / f"fine{s}")
        assert summaries[s].answer.val_auc >= runs.load_run(sources[s]).info.best.val_auc - 1e-9

    again = resume_config(runs_dir / "packed" / "fine1", epochs=3)
    summary, _ = run_stage(again, runs_dir / "packed", resume=runs_dir / "packed" / "fine1")
    assert summary.status == "finished" and len(runs.read_metrics(runs_dir / "packed" / "fine1")[0]) == 3


@pytest.mark.slow
def test_packed_3d_trains(runs_dir):
    summaries, _ = _pack([demo_config(flag="synthetic3d", seed=s, epochs=1, width=2) for s in (3, 4)],
                         runs_dir, ["a3", "b3"])
    assert [s.status for s in summaries] == ["finished", "finished"]


@pytest.mark.slow
def test_packed_multilabel_finetune_matches_alone(runs_dir, tmp_path, float64):
    root = write_chest_like(tmp_path / "data")
    chest = {"dataset": "chestmnist"}
    pre = [demo_config(seed=s, epochs=1, width=4).model_copy(update=chest) for s in (0, 1)]
    for c in pre:
        run_stage(c, runs_dir, data_root=root, run_name=f"chest{c.seed}")
    fine = [demo_config("finetune", seed=s, epochs=2).model_copy(update=chest) for s in (0, 1)]
    sources = [runs_dir / f"chest{s}" for s in (0, 1)]
    run_stage(fine[1], runs_dir / "alone", data_root=root, run_name="f1", from_run=sources[1])
    summaries, _ = _pack(fine, runs_dir / "packed", ["f0", "f1"], data_root=root, from_runs=sources)
    assert [s.status for s in summaries] == ["finished", "finished"]
    assert runs.load_checkpoint(runs_dir / "packed" / "f1" / runs.LAST)["stage"]["loss"]["a"].shape == (14,)
    assert_same_run(runs_dir / "alone" / "f1", runs_dir / "packed" / "f1")


@pytest.mark.slow
def test_cancel_stops_every_member_and_each_resumes_alone(runs_dir):
    stop = threading.Event()
    configs = [demo_config(seed=s, epochs=3, width=4) for s in (0, 1)]
    cancel_after_first_epoch = [lambda ev: stop.set() if isinstance(ev, E.EpochMetrics) else None] * 2
    summaries = packing.train_packed(configs, cancel_after_first_epoch, stop, runs_dir=runs_dir, device="cpu",
                                     run_names=["c0", "c1"])
    assert [s.status for s in summaries] == ["cancelled", "cancelled"]
    for name in ("c0", "c1"):
        summary, _ = run_stage(resume_config(runs_dir / name), runs_dir, resume=runs_dir / name)
        assert summary.status == "finished"
        assert [r.epoch for r in runs.read_metrics(runs_dir / name)[0]] == [1, 2, 3]


@pytest.mark.slow
def test_a_diverging_member_fails_alone(runs_dir, monkeypatch):
    configs = [demo_config(seed=s, epochs=2, width=4) for s in (0, 1)]
    real = Stage.loss

    def nan_for_member_1(self, out, y, member=None):
        loss = real(self, out, y, member)
        return loss * float("nan") if member == 1 else loss

    monkeypatch.setattr(Stage, "loss", nan_for_member_1)
    summaries, _ = _pack(configs, runs_dir, ["ok", "bad"])
    assert summaries[0].status == "finished"
    assert summaries[1].status == "failed" and "loss became nan" in summaries[1].message
    assert runs.load_run(runs_dir / "bad").info.status == runs.FAILED


@pytest.mark.parametrize("change, message", [
    ({"lr": 0.5}, "differ only by seed"),
    ({"seed": 0}, "distinct seeds"),
    ({"compile": True}, "torch.compile"),
    ({"pipeline": "reference"}, "fast pipeline"),
])
def test_configs_that_cannot_pack_are_refused_before_any_folder(runs_dir, change, message):
    first = demo_config(seed=0, width=4)
    second = demo_config(seed=1, width=4).model_copy(update=change)
    if change.keys() & {"compile", "pipeline"}:
        first = first.model_copy(update=change)
    with pytest.raises(DamtuiError, match=message):
        _pack([first, second], runs_dir, None)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())
