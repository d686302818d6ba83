"""Epoch time of a run watched by the app versus the same run headless, alternating.

Run by hand (not a test):
  python benchmarks/tui_overhead.py --device cpu --repeats 3 --epochs 4 --threads 1

A run started from the app trains in its own process (`python -m damtui.cli train`), so both
variants are the same training process; what differs is whether an app is open beside it:
  headless  `damtui train synthetic2d --preset demo ...` as a subprocess, as under nohup;
  in app    the app (Textual's headless driver: it lays out and renders every update, writing to no
            terminal) starts the same run from its monitor and follows it to the end.
The ratio is median train s/epoch (epochs 2..N) in the app over headless, alternating A/B to
cancel drift. Beside it: the app's own CPU time while it watched (its polling, redraws and event
handling: what it takes from the cores the training shares), the events it handled and the monitor
redraws, per minute of training. `--threads` pins the training threads of both variants (a thread
count chosen from idle cores would differ between them when the app is busy).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from damtui import config as cfg
from damtui.store import runs


def cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def child_cpu_s() -> float:
    """CPU time of the training processes that have ended (both variants' processes are children of
    this one): the same work whatever else runs, so it does not depend on the machine's load."""
    return cpu_s(resource.RUSAGE_CHILDREN)


def headless(args: argparse.Namespace, runs_dir: Path) -> list:
    """`damtui train` as its own process (the app's child runs exactly this command)."""
    name = runs.new_run_name("synthetic2d", "pretrain")
    sets = [x for kv in args.overrides for x in ("--set", kv)]
    subprocess.run([sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--preset", "demo", "--epochs",
                    str(args.epochs), "--device", args.device, "--runs-dir", str(runs_dir), "--name", name, *sets],
                   check=True, stdout=subprocess.DEVNULL)
    return runs.load_run(runs_dir / name).metrics


async def in_app(config: cfg.Config, args: argparse.Namespace, runs_dir: Path, size: tuple[int, int]) -> tuple[list, dict]:
    """The app starts the run from its monitor and follows it; its CPU time, events and monitor updates
    while the run trains (from its first progress record to its end)."""
    from damtui.tui.app import DamtuiApp
    from damtui.tui.messages import EngineEvent

    counts = {"events": 0, "redraws": 0}

    def hook(message) -> None:
        if isinstance(message, EngineEvent):
            counts["events"] += 1

    app = DamtuiApp(runs_dir)
    async with app.run_test(size=size, message_hook=hook) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()  # the launch screen's dataset and device checks: a one-off
        await pilot.pause()
        app.session_signal.subscribe(app, lambda kind: counts.__setitem__("redraws", counts["redraws"] + 1))
        app.start_training(config, device=args.device)
        while app.session.progress is None and not app.session.done:  # the process starts, loads its data
            await asyncio.sleep(0.1)
        counts.update(events=0, redraws=0)
        t0, c0 = time.monotonic(), cpu_s()
        while not app.session.done:
            await asyncio.sleep(0.1)
        wall, cpu = time.monotonic() - t0, cpu_s() - c0
        path = Path(app.session.run_dir)
        assert app.session.state == "finished", app.session.message
        app.session.process.proc.wait()  # reaped here, so child_cpu_s counts it
    return runs.load_run(path).metrics, {"wall_s": wall, "app_cpu_s": cpu, **counts}


def median_train_s(rows: list) -> float:
    return statistics.median(r.train_s for r in rows[1:] or rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="training threads of both variants ($DAMTUI_THREADS)")
    ap.add_argument("--size", default="160x48")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    os.environ["DAMTUI_THREADS"] = str(args.threads)  # the app's training process inherits it
    config = cfg.apply_overrides(cfg.find_preset("demo", "synthetic2d", "pretrain"),
                                 {"epochs": args.epochs, **cfg.parse_overrides(args.overrides)})
    size = tuple(int(v) for v in args.size.split("x"))
    runs_dir = Path(tempfile.mkdtemp(prefix="damtui-tui-bench-"))
    a, b, apps, cpu_a, cpu_b = [], [], [], [], []
    load = os.getloadavg()[0]
    for i in range(args.repeats):
        c0 = child_cpu_s()
        a.append(median_train_s(headless(args, runs_dir)))
        c1 = child_cpu_s()
        rows, app = asyncio.run(in_app(config, args, runs_dir, size))
        cpu_a.append(c1 - c0)
        cpu_b.append(child_cpu_s() - c1)
        b.append(median_train_s(rows))
        apps.append(app)
        print(f"repeat {i + 1}: headless {a[-1]:.3f} s/epoch, in app {b[-1]:.3f} s/epoch; training process CPU"
              f" {cpu_a[-1]:.1f} vs {cpu_b[-1]:.1f} s; app CPU {app['app_cpu_s']:.2f} s over {app['wall_s']:.1f} s,"
              f" {app['events']} events, {app['redraws']} monitor updates", flush=True)
    ratio = statistics.median(b) / statistics.median(a)
    wall = sum(x["wall_s"] for x in apps)
    per_min = {k: 60 * sum(x[k] for x in apps) / wall for k in ("app_cpu_s", "events", "redraws")}
    print(f"median train s/epoch: headless {statistics.median(a):.3f}, in app {statistics.median(b):.3f};"
          f" app/headless = {ratio:.3f} ({100 * (ratio - 1):+.1f}%) on {args.device}, {args.threads} training"
          f" thread(s), {time.strftime('%Y-%m-%d')}; load average {load:.1f} -> {os.getloadavg()[0]:.1f}")
    print(f"training process CPU s (whole process): headless {statistics.median(cpu_a):.1f}, in app"
          f" {statistics.median(cpu_b):.1f}")
    print(f"the app per minute of training (first progress to the end): {per_min['app_cpu_s']:.2f} s CPU ({100 * per_min['app_cpu_s'] / 60:.1f}%"
          f" of a core), {per_min['events']:.0f} events, {per_min['redraws']:.0f} monitor updates")


if __name__ == "__main__":
    main()
