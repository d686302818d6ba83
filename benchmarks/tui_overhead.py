"""Epoch time with the TUI monitoring the run versus headless, same process, alternating.

Run by hand (not a test):
  python benchmarks/tui_overhead.py --device cpu --repeats 3 --epochs 4
The app runs through Textual's headless test driver (it lays out and renders every update, but
writes to no terminal), with the real engine in its thread worker, exactly as `damtui` does.
Headless = `engine.train` with an emit that drops events, run in a thread like the app's
worker: training once in the main thread and then in a worker thread leaves two OpenMP thread
teams competing and made the worker 2x slower, which is not a cost of the TUI. The ratio is median
train s/epoch (epochs 2..N) in the app over headless, alternating A/B to cancel drift.
`--unthrottled` adds a third variant: the app with chart redraws on every epoch (RENDER_SHARE
off), to show what the redraw budget in damtui/tui/widgets/charts.py saves.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import threading
import time
from pathlib import Path

from damtui import config as cfg
from damtui.train import engine
from damtui.store import runs


def headless(config: cfg.Config, device: str, runs_dir: Path) -> list[dict]:
    out: dict = {}

    def work() -> None:
        out["summary"] = engine.train(config, lambda ev: None, threading.Event(), runs_dir=runs_dir, device=device)

    t = threading.Thread(target=work)
    t.start()
    t.join()
    return runs.load_run(runs_dir / out["summary"].run_id).metrics


async def in_app(config: cfg.Config, device: str, runs_dir: Path, size: tuple[int, int]) -> list[dict]:
    from damtui.tui.app import DamtuiApp

    app = DamtuiApp(runs_dir, engine=engine.train)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.start_training(config, device=device)
        while app.session is None or not app.session.done:
            await asyncio.sleep(0.1)
        path = Path(app.session.run_dir)
    return runs.load_run(path).metrics


def median_train_s(rows: list) -> float:
    return statistics.median(r.train_s for r in rows[1:] or rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", default="160x48")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--unthrottled", action="store_true", help="also run the app redrawing every epoch")
    args = ap.parse_args()
    config = cfg.apply_overrides(cfg.find_preset("demo", "synthetic2d", "pretrain"),
                                 {"epochs": args.epochs, **cfg.parse_overrides(args.overrides)})
    size = tuple(int(v) for v in args.size.split("x"))
    runs_dir = Path(tempfile.mkdtemp(prefix="damtui-tui-bench-"))
    from damtui.tui.widgets import charts

    share = charts.RENDER_SHARE
    a, b, c = [], [], []
    for i in range(args.repeats):
        a.append(median_train_s(headless(config, args.device, runs_dir)))
        b.append(median_train_s(asyncio.run(in_app(config, args.device, runs_dir, size))))
        line = f"repeat {i + 1}: headless {a[-1]:.3f} s/epoch, in app {b[-1]:.3f} s/epoch"
        if args.unthrottled:
            charts.RENDER_SHARE = float("inf")
            c.append(median_train_s(asyncio.run(in_app(config, args.device, runs_dir, size))))
            charts.RENDER_SHARE = share
            line += f", in app redrawing every epoch {c[-1]:.3f} s/epoch"
        print(line, flush=True)
    ratio = statistics.median(b) / statistics.median(a)
    print(f"median train s/epoch: headless {statistics.median(a):.3f}, in app {statistics.median(b):.3f};"
          f" app/headless = {ratio:.3f} ({100 * (ratio - 1):+.1f}%) on {args.device}, {time.strftime('%Y-%m-%d')}")
    if c:
        ratio_c = statistics.median(c) / statistics.median(a)
        print(f"redrawing every epoch: {statistics.median(c):.3f}; app/headless = {ratio_c:.3f} ({100 * (ratio_c - 1):+.1f}%)")


if __name__ == "__main__":
    main()
