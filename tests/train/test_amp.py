"""bf16 autocast on the CPU, the way CUDA runs it: the packed BatchNorm crash, single and packed
training of both stages under bf16, and packed members against their runs trained alone."""

from __future__ import annotations

import copy
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call, stack_module_state, vmap

from damtui.data import datasets
from damtui.store import runs
from damtui.train import packing
from damtui.train.stages import make_model
from support import assert_same_run, demo_config, run_stage

BF16_LOSS = 0.01  # relative; bf16 keeps 8 bits of mantissa and packed and alone round differently:
# measured 3e-3 apart after two epochs of each stage


@pytest.fixture
def cuda_like_autocast():
    """CPU autocast as CUDA's: CUDA autocast casts `aten::convolution` (the op vmap's convolution
    rule calls) to bf16, CPU autocast only `aten::conv2d`/`conv3d`, so under vmap a CPU BatchNorm
    would get float32 and never meet the CUDA failure. This registers CUDA's cast for the CPU too,
    for one test."""
    lib = torch.library.Library("aten", "IMPL")
    cpu_autocast = torch._C.DispatchKeySet(torch._C.DispatchKey.AutocastCPU)

    def convolution(x, weight, bias, *rest):
        dtype = torch.get_autocast_dtype("cpu")

        def cast(t):
            return t.to(dtype) if t is not None and t.dtype == torch.float32 else t

        with torch._C._ExcludeDispatchKeyGuard(cpu_autocast):
            return torch.ops.aten.convolution(cast(x), cast(weight), cast(bias), *rest)

    lib.impl("convolution", convolution, "AutocastCPU")
    yield
    lib._destroy()


def _models(k: int, width: int = 2) -> list[torch.nn.Module]:
    spec = datasets.spec("synthetic2d")
    torch.manual_seed(0)
    return [make_model(demo_config(width=width), spec, 2) for _ in range(k)]


def _norm_inputs(base: torch.nn.Module) -> list[torch.dtype]:
    seen: list[torch.dtype] = []
    for m in base.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.register_forward_pre_hook(lambda _, args: seen.append(args[0].dtype))
    return seen


def test_packed_batchnorm_under_cuda_like_autocast_fails_raw_and_trains_stacked(cuda_like_autocast):
    models = _models(2)
    x = torch.randn(2, 4, 1, 28, 28)

    # the crash, reproduced: stacked state through a plain functional_call, as torch.func documents it
    params, buffers = stack_module_state(models)
    raw = copy.deepcopy(models[0]).to("meta")
    raw_inputs = _norm_inputs(raw)
    with pytest.raises(RuntimeError, match="BFloat16"):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = vmap(lambda p, b, xb: functional_call(raw, (p, b), (xb,)), randomness="different")(
                params, buffers, x)
        out.float().sum().backward()
    assert torch.bfloat16 in raw_inputs  # BatchNorm was fed bf16, as on CUDA

    # damtui's Stack: forward and backward pass, and each member computes what it computes alone
    stack = packing.Stack(models)
    inputs = _norm_inputs(stack._base[0])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = stack(x)
    out.float().sum().backward()
    assert torch.bfloat16 in inputs
    assert all(torch.isfinite(p.grad).all() for p in stack.parameters())
    for i, model in enumerate(models):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            alone = model(x[i])
        assert torch.allclose(out[i].float(), alone.float(), rtol=0.05, atol=0.05)
    # the members' running statistics stay float32 and moved
    assert all(b.dtype == torch.float32 for n, b in stack.named_buffers() if b.is_floating_point())


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synthetic2d cut to 64 training images (two batches of 32) and 32 val / 32 test: bf16 runs
    10-19x slower than float32 on a CPU without bf16 units."""
    root = tmp_path_factory.mktemp("tiny")
    arrays = datasets.make_synthetic("synthetic2d")
    cut = {f"{s}_{k}": arrays[f"{s}_{k}"][:n] for s, n in (("train", 64), ("val", 32), ("test", 32))
           for k in ("images", "labels")}
    buf = io.BytesIO()
    np.savez(buf, **cut)
    datasets.dataset_path("synthetic2d", root).write_bytes(buf.getvalue())
    return root


def _two_stages(runs_dir: Path, root: Path) -> dict[str, Path]:
    """Seeds 0 and 1 packed, and seed 1 alone, pretrain then finetune (both from the packed pretrains)."""
    over = dict(amp="bf16", width=2, epochs=1, ema=0.9, tta_flip=True)
    out: dict[str, Path] = {}
    for stage in ("pretrain", "finetune"):
        configs = [demo_config(stage, seed=s, **over) for s in (0, 1)]
        sources = [out.get(f"packed-pretrain{s}") for s in (0, 1)]
        summaries = packing.train_packed(configs, [lambda ev: None] * 2, threading.Event(), runs_dir=runs_dir,
                                         data_root=root, device="cpu", from_runs=sources,
                                         run_names=[f"packed-{stage}{s}" for s in (0, 1)])
        assert [s.status for s in summaries] == ["finished", "finished"], [s.message for s in summaries]
        out.update({f"packed-{stage}{s}": runs_dir / f"packed-{stage}{s}" for s in (0, 1)})
        summary, _ = run_stage(configs[1], runs_dir, data_root=root, from_run=sources[1], run_name=f"alone-{stage}")
        assert summary.status == "finished", summary.message
        out[f"alone-{stage}"] = runs_dir / summary.run_id
    return out


@pytest.mark.slow
def test_both_stages_train_under_bf16_alone_and_packed(runs_dir, tiny_root, cuda_like_autocast):
    """Finite, and each packed member within bf16 rounding of its run trained alone."""
    out = _two_stages(runs_dir, tiny_root)
    for stage in ("pretrain", "finetune"):
        alone, packed = runs.read_metrics(out[f"alone-{stage}"])[0], runs.read_metrics(out[f"packed-{stage}1"])[0]
        for a, p in zip(alone, packed, strict=True):
            assert np.isfinite([a.train_loss, p.train_loss, a.val_loss, p.val_loss]).all()
            assert p.train_loss == pytest.approx(a.train_loss, rel=BF16_LOSS)
            assert p.val_loss == pytest.approx(a.val_loss, rel=BF16_LOSS)
    member0 = runs.read_metrics(out["packed-finetune0"])[0]
    assert np.isfinite([r.train_loss for r in member0]).all()


@pytest.mark.slow
def test_under_amp_a_packed_member_is_its_run_alone_in_float64(runs_dir, tiny_root, cuda_like_autocast, float64):
    """Autocast leaves float64 alone (it casts float32 only), so in float64 the autocast code path,
    packed BatchNorm included, must give each member exactly its run trained alone."""
    out = _two_stages(runs_dir, tiny_root)
    for stage in ("pretrain", "finetune"):
        assert_same_run(out[f"alone-{stage}"], out[f"packed-{stage}1"])


def test_amp_is_a_property_of_the_run_and_old_bool_values_keep_their_meaning():
    from damtui import config as cfg
    from damtui.train.trainer import amp_enabled

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    table = {amp: (amp_enabled(demo_config(amp=amp), cpu), amp_enabled(demo_config(amp=amp), cuda))
             for amp in ("auto", "bf16", "off")}
    assert table == {"auto": (False, True), "bf16": (True, True), "off": (False, False)}
    # amp was a bool: true meant bf16 on CUDA and fp32 on the CPU ("auto"), false fp32 ("off")
    assert demo_config(amp=True).amp == "auto" and demo_config(amp=False).amp == "off"
    saved = {**demo_config().as_dict(), "amp": True}  # a run folder written before the change
    assert cfg.hyperparameters(saved) == cfg.hyperparameters(demo_config())
    assert cfg.apply_overrides(demo_config(), cfg.parse_overrides(["amp=false"])).amp == "off"
    with pytest.raises(Exception, match="amp"):
        demo_config(amp="fp16")
