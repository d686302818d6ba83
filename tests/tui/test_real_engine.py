"""The app starting real training processes (`damtui train`, as `damtui` does): the synthetic demo
presets, two stages, on the CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import settle, wait_for
from textual.widgets import Input, Select

from damtui import config
from damtui.store import runs
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.widgets.epoch_table import EpochTable

pytest.importorskip("damtui.train.engine")


@pytest.mark.slow
async def test_pretrain_then_finetune_with_the_real_engine(make_app, monkeypatch, runs_dir):
    monkeypatch.setattr(config, "SHIPPED_PRESETS", config.shipped_presets_dir())
    app = make_app(processes=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert screen.dataset == "synthetic2d"
        assert screen.query_one("#preset", Select).value == "synthetic2d-pretrain-demo"
        screen.query_one("#device", Select).value = "cpu"
        screen.query_one("#field-epochs", Input).value = "2"
        screen.query_one("#field-batch_size", Input).value = "64"  # fewer steps: a faster test
        await pilot.pause()
        screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        await wait_for(pilot, lambda: app.session.done, timeout=300)
        await pilot.pause()
        s = app.session
        assert s.state == "finished", s.message
        assert s.device.startswith("cpu")
        assert "sizes {'train': 800" in (Path(s.run_dir) / runs.LOG).read_text()
        assert [r.epoch for r in s.rows] == [1, 2]
        assert 0.0 <= s.rows[-1].val_auc <= 1.0
        assert app.screen.query_one(EpochTable).row_count == 2
        pretrain = runs.load_run(Path(s.run_dir))
        assert pretrain.info.status == runs.FINISHED and pretrain.config["epochs"] == 2
        assert pretrain.config["batch_size"] == 64

        # finetune from it: the picker offers the finished pretrain run
        await pilot.press("escape")
        screen = app.screen
        screen.query_one("#stage", Select).value = "finetune"
        await wait_for(
            pilot, lambda: screen.query_one("#from-run", Select).value == str(pretrain.info.path)
        )
        await wait_for(
            pilot, lambda: screen.query_one("#preset", Select).value == "synthetic2d-finetune-demo"
        )
        screen.query_one("#device", Select).value = "cpu"
        screen.query_one("#field-epochs", Input).value = "1"
        screen.query_one("#field-batch_size", Input).value = "64"
        await pilot.pause()
        screen.query_one("#datasets").focus()
        await pilot.press("S")
        await wait_for(pilot, lambda: app.session.number == 2 and app.session.done, timeout=300)
        s = app.session
        assert s.state == "finished", s.message
        finetune = runs.load_run(Path(s.run_dir))
        assert finetune.config["stage"] == "finetune" and len(finetune.metrics) == 1
        assert finetune.info.from_run is not None
