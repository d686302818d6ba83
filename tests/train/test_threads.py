"""CPU thread count: the precedence of flag, environment, preset and the idle-core default."""

from __future__ import annotations

import pytest

from damtui import config as cfg
from damtui import sweeps
from damtui.train import threads
from damtui.sweeps import backends as sweep_backends
from damtui.errors import DamtuiError
from support import demo_config


def test_precedence_flag_env_preset_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(threads, "default_threads", lambda: 7)
    monkeypatch.delenv(threads.ENV, raising=False)
    assert threads.resolve_threads() == 7
    assert threads.resolve_threads(preset=3) == 3
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.resolve_threads(preset=3) == 2
    assert threads.resolve_threads(flag=5, preset=3) == 5


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_bad_thread_counts_are_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(DamtuiError, match=r"\$DAMTUI_THREADS takes a whole number of CPU threads >= 1"):
        threads.resolve_threads()
    with pytest.raises(DamtuiError, match="--threads takes"):
        threads.parse_threads(value, "--threads")


@pytest.mark.parametrize("cores, idle, expect", [(2, 2.0, 2), (2, 1.1, 1), (2, 0.0, 1), (8, 5.6, 6),
                                                 (4, 9.0, 4), (2, None, 2)])
def test_default_is_the_idle_cores(monkeypatch, cores, idle, expect) -> None:
    monkeypatch.setattr(threads, "idle_cores", lambda: None)
    assert threads.default_threads(cores, idle) == expect


def test_idle_cores_reads_this_machine() -> None:
    idle = threads.idle_cores(0.05)
    assert idle is None or 0.0 <= idle <= threads.usable_cores() + 1e-9


def test_preset_key_is_validated_and_not_part_of_any_identity() -> None:
    with pytest.raises(DamtuiError, match="'threads'"):
        cfg.apply_overrides(demo_config(), {"threads": 0})
    a, b = demo_config(), demo_config(threads=2)
    assert a.as_dict() != b.as_dict()
    assert cfg.hyperparameters(a) == cfg.hyperparameters(b)
    assert "threads" not in cfg.hyperparameters({**a.as_dict(), "threads": 4})


def test_the_engine_applies_the_resolved_count(runs_dir, monkeypatch) -> None:
    import torch

    from damtui.train import engine

    monkeypatch.setenv(threads.ENV, "2")
    try:
        with pytest.raises(DamtuiError, match="add --from RUN"):  # fails after threads are set
            engine.prepare(demo_config("finetune"), lambda e: None, runs_dir=runs_dir, device="cpu")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)


def test_a_cpu_sweep_splits_the_cores_between_runs_side_by_side(monkeypatch, tmp_path) -> None:
    seen: list[sweeps.JobContext] = []
    monkeypatch.setattr(sweep_backends, "run_job",
                        lambda job, ctx, gpu, on_start: seen.append(ctx) or sweeps.skipped(job, "fake"))
    monkeypatch.setattr(sweep_backends, "usable_cores", lambda: 4)
    monkeypatch.delenv(threads.ENV, raising=False)
    job = sweeps.Job("s", "s-a", "synthetic2d", "pretrain", "demo", {}, 0, "k", "demo", None, {})
    ctx = sweeps.JobContext(str(tmp_path), None, "cpu")
    sweep_backends.run_local([job], ctx, sweep_backends.Options(max_parallel=2), lambda line: None, gpu_ids=[])
    assert seen[0].threads == 2
    monkeypatch.setenv(threads.ENV, "1")  # the user's own setting is passed on untouched
    sweep_backends.run_local([job], ctx, sweep_backends.Options(max_parallel=2), lambda line: None, gpu_ids=[])
    assert seen[1].threads is None
