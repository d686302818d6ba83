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


def test_a_resume_trains_with_the_runs_own_thread_count(runs_dir, pretrain_copy, monkeypatch) -> None:
    """Started with 2 threads, resumed when the machine is busier: the resume keeps 2 (the count
    sums in its own order, so another one would change the numbers from the first resumed
    epoch), unless told another, and then it says so (issue 28, item 12)."""
    import json

    import torch

    from damtui.store import runs
    from damtui.train import engine
    from damtui.train.resume import resume_config
    from support import crash

    assert runs.load_run(pretrain_copy).runtime["threads"] == 1  # a new run stores its count
    data = json.loads((pretrain_copy / runs.CONFIG).read_text())
    data["runtime"]["threads"] = 2
    (pretrain_copy / runs.CONFIG).write_text(json.dumps(data))
    monkeypatch.delenv(threads.ENV, raising=False)
    monkeypatch.setattr(threads, "default_threads", lambda: 1)  # the idle cores now
    config = resume_config(pretrain_copy)
    try:
        for flag, count, note in ((None, 2, ""), (1, 1, "threads: 1, where this run trained with 2")):
            crash(pretrain_copy)
            prepared = engine.prepare(config, lambda e: None, runs_dir=runs_dir, device="cpu",
                                      resume=pretrain_copy, threads=flag)
            prepared.open_writer().close()  # lets the lock go
            assert torch.get_num_threads() == count and note in prepared.note and bool(note) == bool(prepared.note)
    finally:
        torch.set_num_threads(1)


def test_the_stored_count_of_runs_saved_before_it_was_stored() -> None:
    assert threads.stored_threads({"device": "cpu (x86_64, 2 threads)"}) == 2
    assert threads.stored_threads({"threads": 3, "device": "cpu (x86_64, 2 threads)"}) == 3
    assert threads.stored_threads({"device": "cuda:0 (NVIDIA H200)"}) is None


@pytest.mark.slow
def test_a_resume_on_a_busier_machine_ends_equal_to_the_run_left_alone(runs_dir, data_root, monkeypatch) -> None:
    """The fast subset of `benchmarks/fault_injection.py --load-change`: trained with 2 threads and
    stopped after epoch 1, resumed when the idle cores say 1 and nothing names a count, the run
    ends with the metrics of the same run left alone (a resume that took 1 thread differed)."""
    import threading

    import torch

    from damtui import events
    from damtui.store import runs
    from damtui.train import engine
    from damtui.train.resume import resume_config
    from support import run_stage

    timing = {"epoch_s", "train_s", "eval_s", "images_per_s"}
    monkeypatch.delenv(threads.ENV, raising=False)
    config = demo_config(epochs=2, width=4)
    try:
        alone, _ = run_stage(config, runs_dir / "alone", data_root=data_root, threads=2)
        stop = threading.Event()
        engine.train(config, lambda e: stop.set() if isinstance(e, events.EpochMetrics) else None, stop,
                     runs_dir=runs_dir / "cut", device="cpu", data_root=data_root, threads=2)
        (cut,) = (runs_dir / "cut").iterdir()
        assert runs.load_run(cut).info.epochs_done == 1
        monkeypatch.setattr(threads, "default_threads", lambda *a: 1)  # a busier machine now
        resumed, _ = run_stage(resume_config(cut), runs_dir / "cut", resume=cut, data_root=data_root)
        assert resumed.status == runs.FINISHED and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(1)

    def rows(path):
        return [{k: v for k, v in r.to_json().items() if k not in timing} for r in runs.load_run(path).metrics]

    assert rows(cut) == rows(runs_dir / "alone" / alone.run_id)
