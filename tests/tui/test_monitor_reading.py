"""The monitor as a researcher reads it (issue 26): one answer for a fine-tune, named by stage
(item 6); an ETA that counts down while the epoch is evaluated, elapsed time that counts the
epochs before a resume, and words in their singular (item 19)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fakes import config_dict, make_run, metrics_row, screen_text, settle, wait_for
from test_monitor import _start

from damtui import config as cfgmod
from damtui.records import EpochRow
from damtui.tui import session as ss
from damtui.tui.screens.monitor import MonitorScreen, status_lines
from damtui.tui.widgets.progress_line import progress_text
from damtui.store.progress import EVALUATING, Progress


def _session(stage: str = "pretrain", **over) -> ss.Session:
    config = cfgmod.validate(config_dict(stage=stage), "test")
    s = ss.Session(1, config, "cpu", started_at=100.0, **over)
    s.state = ss.RUNNING
    return s


def test_a_fine_tune_shows_one_answer_named_by_stage():
    """Item 6: `best val AUC 0.5748 @ ep 1` above `finished: val AUC 0.5890 at pretrain epoch 2`."""
    s = _session("finetune")
    s.rows = [metrics_row(e, wobble=-0.05) for e in (1, 2, 3)]  # its own best: 0.78 at epoch 3
    s.best_epoch = 3
    pretrain = [metrics_row(e) for e in (1, 2, 3)]  # up to its best: 0.83 at epoch 3
    _, line = status_lines(s, 160.0, pretrain)
    assert "answer val AUC 0.8300 @ pretrain ep 3" in line and "0.7800" not in line
    s.rows = [metrics_row(e, wobble=0.1) for e in (1, 2, 3)]
    _, line = status_lines(s, 160.0, pretrain)
    assert "answer val AUC 0.9300 @ finetune ep 3" in line
    _, line = status_lines(_session("pretrain", rows=[metrics_row(1)], best_epoch=1), 160.0)
    assert "best val AUC 0.7000 @ ep 1" in line  # a pretrain has one stage: its best


def test_elapsed_counts_the_epochs_before_a_resume():
    """Item 19: elapsed restarted at 0:00 after a resume."""
    before = [EpochRow.from_json({**metrics_row(e).to_json(), "epoch_s": 60.0}) for e in (1, 2)]
    s = _session(rows=list(before), start_epoch=2)
    _, line = status_lines(s, 130.0)  # 30 s into the resumed session
    assert "elapsed 2:30" in line


def test_words_in_the_singular():
    """Item 19: `1 epochs`, `1 threads`."""
    last = Progress(1, 1, 4, 4, EVALUATING, 10.0, 4.0, 0)
    assert progress_text(last, [metrics_row(1)], "finished").endswith("finished 1 epoch")
    from damtui.train.engine import device_name
    import torch

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert device_name(torch.device("cpu")).endswith(", 1 thread)")
    finally:
        torch.set_num_threads(threads)


@pytest.mark.slow
async def test_the_eta_counts_down_while_an_epoch_is_evaluated(make_app):
    """Item 19: `evaluating… ETA 0:09` stood still for 6 s: no progress comes while an epoch is
    evaluated, and the line was redrawn only when progress came."""
    import time

    from fakes import FakeEngine
    from damtui.store import runs

    engine = FakeEngine(batches=4, hold_at=(1, 4))  # holds after the epoch's last batch: evaluating
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await _start(pilot)
        await wait_for(pilot, lambda: engine.holding.is_set() and app.session.progress is not None)
        # 10 images/s: scoring 1200 val + test images takes ~40 s (a third of a training step each)
        runs.RunWriter(Path(app.session.run_dir)).write_progress(
            Progress(1, 4, 4, 4, EVALUATING, 10.0, 4.0, 1200, time.time()), force=True)
        await wait_for(pilot, lambda: "evaluating…  ETA 0:40" in screen_text(app)
                       or "evaluating…  ETA 0:39" in screen_text(app))
        await wait_for(pilot, lambda: re.search(r"evaluating…  ETA 0:3[0-8]", screen_text(app)) is not None)
        engine.release()
        await wait_for(pilot, lambda: app.session.done)


@pytest.mark.slow
async def test_the_monitor_of_a_fine_tune_draws_its_pretrain(make_app, runs_dir):
    """Item 6 on the monitor: the source's epochs before the fine-tune's, the answer in one place."""
    from fakes import FakeEngine
    from textual.widgets import Select

    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-aaaaaa", epochs_done=6)
    engine = FakeEngine(batches=2)
    app = make_app(engine)
    async with app.run_test(size=(80, 30)) as pilot:
        await settle(pilot)
        app.screen.query_one("#stage", Select).value = "finetune"
        await pilot.pause()
        await _start(pilot)
        await wait_for(pilot, lambda: app.session.done)
        screen = app.screen
        assert isinstance(screen, MonitorScreen)
        await wait_for(pilot, lambda: bool(screen.pretrain))
        assert [r.epoch for r in screen.pretrain] == [1, 2, 3]  # up to the source's best epoch
        auc = screen.query_one("#chart-auc")
        await wait_for(pilot, lambda: auc.plan is not None and auc.plan.xlabels != ())
        text = " ".join(screen_text(app).split())
        # the fine-tune (the fake engine's rows) ties the pretrain at 0.83: its own epoch is the answer
        assert "answer val AUC 0.8300 @ finetune ep 3" in text
