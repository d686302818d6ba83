"""The sweeps screen and a sweep's page, as a user drives them: `w` from the runs list or `Sweeps`
in the palette, rows that keep their scroll and cursor while sweeps run, validation before test,
cancelled and pruned runs apart from failed ones, a sweep that ended (failed or interrupted)
with no runs `waiting`, and a search's page: live trials, best so far and the winner."""

from __future__ import annotations

import json
import time

import pytest
from fakes import STARTED, drawn, flat_text, make_run, screen_text, wait_for

from damtui.store import notes as run_notes
from damtui.store import runs
from damtui.tui.screens.runs import RunsScreen
from damtui.tui.screens.sweep_page import SweepPage
from damtui.tui.screens.sweeps import SweepsScreen


def _in_sweep(path, sweep, key):
    data = json.loads((path / runs.CONFIG).read_text())
    data["runtime"].update(sweep=sweep, sweep_config=key)
    runs.atomic_write_json(path / runs.CONFIG, data)
    return path


def _plan(runs_dir, sweep, jobs, status="running", message="", **extra):
    import os
    import socket

    state = {"status": status, "pid": os.getpid(), "host": socket.gethostname(), "started": STARTED,
             "message": message}
    runs.write_sweep_plan(runs_dir, sweep, {"sweep": sweep, "jobs": jobs, "state": state, **extra})


def grid_sweep(runs_dir):
    """Sweep `demo`: a configuration with two finished seeds, one with a cancelled and a crashed
    run, and a planned run with no folder yet."""
    for seed, wobble in ((0, 0.0), (1, 0.02)):
        _in_sweep(make_run(runs_dir, f"demo-synthetic2d-abc-s{seed}-pretrain", epochs_done=3, seed=seed,
                           wobble=wobble, started=STARTED + seed), "demo", "synthetic2d-abc-pretrain")
    _in_sweep(make_run(runs_dir, "demo-synthetic2d-def-s0-pretrain", epochs_done=1, state=runs.CANCELLED),
              "demo", "synthetic2d-def-pretrain")
    _in_sweep(make_run(runs_dir, "demo-synthetic2d-def-s1-pretrain", epochs_done=1, state=runs.CRASHED, seed=1),
              "demo", "synthetic2d-def-pretrain")
    jobs = [{"name": f"demo-synthetic2d-{k}-s{s}-pretrain", "config_key": f"synthetic2d-{k}-pretrain",
             "label": f"demo lr={lr}", "dataset": "synthetic2d", "stage": "pretrain", "overrides": {"lr": lr}}
            for k, lr in (("abc", 0.1), ("def", 0.5), ("ghi", 0.01)) for s in (0, 1)]
    return jobs


@pytest.mark.slow
async def test_w_opens_sweeps_and_enter_a_sweeps_page(make_app, runs_dir):
    _plan(runs_dir, "demo", grid_sweep(runs_dir))
    make_run(runs_dir, "20240601-120000-synthetic2d-pretrain-zzzzzz", epochs_done=2)  # not in a sweep
    app = make_app(start="runs")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        await wait_for(pilot, lambda: screen.loaded)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen) and app.screen.loaded)
        await drawn(pilot, "2 done 1 failed 1 cancelled 2 waiting")  # cancelled is not failed
        text = screen_text(app)
        assert "zzzzzz" not in text and "running" in text
        header = next(ln for ln in text.splitlines() if "best val AUC" in ln)
        assert header.index("best val AUC") < header.index("its test AUC")  # validation first
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepPage) and app.screen.loaded)
        page = flat_text(app)
        assert "demo running · grid · 2/3 configurations · runs 2 done 1 failed 1 cancelled 2 waiting" in page
        assert "winner: trial 0 · val AUC 0.840 ± 0.014 · then test AUC 0.820 ± 0.014" in page  # fakes: val peaks at 0.83 + wobble
        assert "demo lr=0.1" in page and "★0" in page
        head = next(ln for ln in screen_text(app).splitlines() if "vAUC" in ln)
        assert head.index("vAUC") < head.index("vACC") < head.index("tAUC") < head.index("tACC")
        await pilot.press("enter")  # the winner's first run
        from damtui.tui.screens.run_view import RunViewScreen

        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepPage))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen))


@pytest.mark.slow
async def test_the_palette_has_sweeps(make_app, runs_dir):
    _plan(runs_dir, "demo", grid_sweep(runs_dir))
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+p")
        await pilot.press(*"Sweeps")
        await drawn(pilot, "a sweep's live trials")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen))


@pytest.mark.slow
async def test_refreshes_keep_the_cursor_and_the_scroll(make_app, runs_dir):
    """The table was cleared on every poll: it snapped back to the top and the first column every
    ~2 s, so the columns past 80 could not be read while a sweep ran."""
    for i in range(12):
        name = f"s{i:02d}"
        _in_sweep(make_run(runs_dir, f"{name}-synthetic2d-abc-s0-pretrain", epochs_done=2), name,
                  "synthetic2d-abc-pretrain")
    app = make_app(start="runs")
    async with app.run_test(size=(80, 10)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen) and app.screen.loaded)
        table = app.screen.query_one("#sweeps-table")
        await pilot.press(*["down"] * 10, "right", "right", "right")
        await wait_for(pilot, lambda: table.scroll_x > 0 and table.scroll_y > 0)
        where = (table.cursor_row, table.scroll_x, table.scroll_y)
        shown = app.screen.refreshed
        # a run goes on: the next polls change a row
        path = runs_dir / "s03-synthetic2d-abc-s0-pretrain"
        with open(path / runs.METRICS, "a") as fh:
            fh.write(json.dumps({"epoch": 3, "val_auc": 0.99, "test_auc": 0.9}) + "\n")
        await wait_for(pilot, lambda: app.screen.refreshed >= shown + 2)
        assert (table.cursor_row, table.scroll_x, table.scroll_y) == where


@pytest.mark.slow
async def test_an_ended_sweep_says_so_and_waits_for_nothing(make_app, runs_dir):
    """A failed Slurm submit left a plan that read `8 waiting`; a killed sweep was never called
    interrupted."""
    jobs = grid_sweep(runs_dir)
    _plan(runs_dir, "demo", jobs, "failed", "sbatch: error: invalid partition specified: gpu")
    _plan(runs_dir, "gone", [{**j, "name": j["name"].replace("demo", "gone")} for j in jobs])
    plan = runs.load_sweep_plans(runs_dir)["gone"]
    plan["state"]["pid"] = 2**22 + 7  # the sweep process died: its pid is no longer alive
    runs.write_sweep_plan(runs_dir, "gone", plan)
    app = make_app(start="runs")
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        await pilot.press("w")
        await wait_for(pilot, lambda: isinstance(app.screen, SweepsScreen) and app.screen.loaded)
        await drawn(pilot, "demo failed: sbatch: error: invalid partition specified: gpu")
        text = flat_text(app)
        assert "waiting" not in text and "2 not started" in text and "6 not started" in text
        await pilot.press("down")
        await drawn(pilot, "gone interrupted: the sweep process (pid 4194311) is no longer running")


def search_sweep(runs_dir):
    """Sweep `tune`: a TPE search, trial 0 complete, 1 pruned, 2 running, of a budget of 5."""
    trials, jobs = [], []
    for n, (lr, state, epochs, wobble) in enumerate(((0.03, "complete", 3, 0.0), (0.3, "pruned", 1, -0.2),
                                                     (0.01, "running", 2, 0.0))):
        names = []
        for seed in (0, 1):
            name = f"tune-synthetic2d-t{n}-s{seed}-pretrain"
            names.append(name)
            run_state = {"complete": runs.FINISHED, "pruned": runs.CANCELLED, "running": runs.RUNNING}[state]
            path = _in_sweep(make_run(runs_dir, name, epochs_done=epochs, state=run_state, seed=seed, lr=lr,
                                      wobble=wobble + 0.01 * seed, started=STARTED + 10 * n), "tune",
                             f"synthetic2d-t{n}-pretrain")
            if state == "pruned":
                run_notes.tag_run(path, ["pruned"])
            jobs.append({"name": name, "config_key": f"synthetic2d-t{n}-pretrain", "dataset": "synthetic2d",
                         "stage": "pretrain", "overrides": {"lr": lr}, "label": f"demo lr={lr}"})
        trials.append({"number": n, "params": {"lr": lr}, "state": state, "runs": names, "final": names,
                       "value": 0.835 if state == "complete" else None, "steps": {"1": 0.5},
                       "message": "pruned at epoch 1" if state == "pruned" else ""})
    search = {"method": "tpe", "trials": 5, "metric": "val_auc", "prune": "median", "seed": 0,
              "startup_trials": 1, "warmup_epochs": 0, "space": {"lr": {"low": 0.001, "high": 0.5, "log": True}}}
    _plan(runs_dir, "tune", jobs, search=search, trials=trials)


@pytest.mark.slow
async def test_a_search_page_shows_trials_best_so_far_and_the_winner(make_app, runs_dir):
    search_sweep(runs_dir)
    app = make_app(start="runs")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.loaded)
        app.push_screen(SweepPage("tune"))
        await wait_for(pilot, lambda: isinstance(app.screen, SweepPage) and app.screen.loaded)
        text = flat_text(app)
        assert "tune running · tpe · 2/5 trials (1 pruned, median)" in text
        assert "winner: trial 0 · val AUC 0.835 ± 0.007" in text and "lr=0.03" in text
        rows = [ln for ln in screen_text(app).splitlines() if ln.strip()[:2] in ("★0", "1 ", "2 ")]
        assert [r.split()[1] for r in rows] == ["complete", "pruned", "running"]
        chart = app.screen.query_one("#sweep-chart")
        assert chart.plan.note == "best: trial 0, 0.8350"  # one trial ended with a value: the best so far
        assert [line.xs for line in chart.plan.lines] == [(0,), (0,)]
        # the running trial finishes: its row and the winner follow without leaving the page
        for seed in (0, 1):
            path = runs_dir / f"tune-synthetic2d-t2-s{seed}-pretrain"
            for epoch in (3, 4):
                with open(path / runs.METRICS, "a") as fh:
                    fh.write(json.dumps({"epoch": epoch, "val_auc": 0.9, "val_acc": 0.8, "test_auc": 0.88,
                                         "test_acc": 0.81}) + "\n")
            status = json.loads((path / runs.STATUS).read_text())
            status.update(state=runs.FINISHED, updated=time.time())
            (path / runs.STATUS).write_text(json.dumps(status))
        plan = runs.load_sweep_plans(runs_dir)["tune"]
        plan["trials"][2].update(state="complete", value=0.9)
        runs.write_sweep_plan(runs_dir, "tune", plan)
        await drawn(pilot, "winner: trial 2 · val AUC 0.900")
        plan = app.screen.query_one("#sweep-chart").plan
        assert plan.note == "best: trial 2, 0.9000" and [line.ys for line in plan.lines] == [(0.835, 0.9), (0.835, 0.9)]
