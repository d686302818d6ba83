"""`compile = true`: the step runs through torch.compile (mode reduce-overhead: CUDA graphs on CUDA)
and equals the eager step; batch shapes stay fixed (an epoch's last partial batch is dropped)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from damtui.data import datasets
from damtui.train import engine, trainer
from damtui.train.pipeline import DataPipeline
from support import demo_config


def test_under_compile_every_training_batch_has_the_configured_size():
    splits = datasets.load("synthetic2d")
    order = np.arange(100)  # 3 batches of 32 and one of 4
    sizes = {}
    for compile in (False, True):
        pipe = DataPipeline(splits, demo_config(augment=False, compile=compile), torch.device("cpu"))
        sizes[compile] = [len(y) for _, y in pipe.train_batches(order)]
        assert pipe.num_train_batches(order) == len(sizes[compile])
    assert sizes == {False: [32, 32, 32, 4], True: [32, 32, 32]}


@pytest.mark.slow
def test_compiled_step_gives_the_eager_weights(runs_dir, float64, monkeypatch):
    """Three Adam steps with EMA in float64, compiled and eager: the same weights and buffers. On
    the CPU the model compiles with the aot_eager backend (dynamo's graph capture and AOTAutograd's
    functional backward, as in reduce-overhead, without inductor's C++ build: 15 s instead of 155 s
    here); the CUDA graph replay itself runs only on a GPU (benchmarks/gpu_session.sh)."""
    monkeypatch.setattr(trainer, "compiled", lambda model: torch.compile(model, backend="aot_eager"))
    torch._dynamo.reset()
    states = []
    for compile in (False, True):
        run = engine.prepare(demo_config(width=1, ema=0.9, compile=compile), lambda ev: None, runs_dir=runs_dir,
                             device="cpu")
        single = trainer.SingleTrainer(run.state, run.spec, run.pipeline, run.device)
        assert (single.forward is not run.state.model) == compile
        batches, _ = single.epoch_batches(0)
        for _, (x, y) in zip(range(3), batches):
            losses, scores = single.step(x, y, [0])
            assert losses.shape == (1,) and scores.shape == (1, 32, 1)
        states.append({**run.state.model.state_dict(), **run.state.ema.state_dict()})
    eager, compiled = states
    assert eager.keys() == compiled.keys()
    for key in eager:
        assert torch.allclose(eager[key].double(), compiled[key].double(), rtol=1e-12, atol=1e-12), key
    assert not torch.equal(eager["fc.weight"], engine.prepare(demo_config(width=1), lambda ev: None,
                                                              runs_dir=runs_dir, device="cpu").state.model.fc.weight)
