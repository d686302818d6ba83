"""`damtui` (run_app, with its signal handlers) in a process of its own, for tests that signal or
kill the app: headless, the test presets, runs started as fake training processes (fake_train.py).

argv: RUNS_DIR DATA_ROOT MODE. MODE "start" starts a run from the launch screen and prints
`TRAINING <run>` once the monitor shows it training; "follow" waits for the run an earlier app left
training and prints `FOLLOWING <run> <epoch>` once the monitor shows it live. Then it waits for a
signal; `EXITED` is printed when run_app returns.
"""

from __future__ import annotations

import sys
from functools import partialmethod
from pathlib import Path

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))

from damtui import config

config.SHIPPED_PRESETS = HERE / "presets"

from fakes import FAKE_TRAINER
from textual.app import App

from damtui.tui import app as app_module
from damtui.tui.screens.monitor import MonitorScreen

runs_dir, data_root, mode = sys.argv[1:4]


async def until(pilot, predicate) -> None:
    while not predicate():
        await pilot.pause(0.05)


async def auto(pilot) -> None:
    app = pilot.app
    if mode == "start":
        await until(pilot, lambda: getattr(app.screen, "dataset", None) is not None and bool(app.devices))
        app.screen.query_one("#datasets").focus()
        await pilot.press("S")
        await until(pilot, lambda: app.session is not None and app.session.progress is not None)
        print("TRAINING", app.session.run_id, flush=True)
    else:
        await until(pilot, lambda: app.session is not None and app.session.progress is not None
                    and isinstance(app.screen, MonitorScreen))
        print("FOLLOWING", app.session.run_id, app.session.current_epoch, flush=True)


app_module.DamtuiApp.run = partialmethod(App.run, headless=True, size=(80, 24), auto_pilot=auto)
app_module.run_app(runs_dir, data_root, trainer=FAKE_TRAINER, devices=lambda: [("cpu", "cpu")],
                   poll_interval=0.1)
print("EXITED", flush=True)
