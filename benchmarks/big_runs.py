"""What reading a run costs when its metrics.jsonl is large (issue 28, item 4).

    python benchmarks/big_runs.py [--tree CHECKOUT] [--json FILE]

Builds a runs folder of ten ordinary finished runs (synthetic2d, 6 epochs each), plus:
  huge      a 100 MB metrics.jsonl of valid rows (333,234 of these short ones; the issue's file
            had 185,804) in a run planned for 6 epochs: written by no damtui, a damaged folder
  longest   the longest run damtui can plan: 10,000 epochs (config.MAX_EPOCHS), all of them rows
  growing   a run planned for 10,000 epochs with 9,000 rows, "running": while the app is measured
            a separate writer process (its pid in status.json) appends a row and rewrites
            status.json every second, as a training process does
The finished runs end with the summary.json a damtui writer leaves (RunWriter.write_summary).
Then, each in a fresh process of the checkout under test (`--tree`, default this one):
  `damtui runs list`, `damtui runs show huge`, `damtui runs show longest`: wall seconds and peak
  memory (ru_maxrss of the child); `runs.list_runs` alone after the imports: seconds and the
  bytes of metrics.jsonl and .npz files it read;
  the app (Pilot, 120x40): seconds until the runs list shows every run, the app's own CPU seconds
  over 10 seconds on the runs list with nobody at the keys (from 3 s after it showed every run;
  the writer of `growing` running), until the page of `longest` has drawn its epoch table, and
  the CPU seconds of 10 seconds on the page of `growing`, the writer still appending.
Each measurement is capped (`--cap`, 120 s): a capped figure reads ">= cap". The scratch folder
is removed afterwards unless `--work` names it.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def build(root: Path) -> None:
    sys.path.insert(0, str(HERE / "tests" / "tui"))
    from fakes import make_run, metrics_row  # the app tests' run folders: written by the store's writers

    from damtui.store import runs

    def seal(path: Path) -> None:  # the summary a writer leaves when the run ends
        writer = runs.RunWriter(path)
        writer.write_summary(runs.summary_of(runs.load_run(path)))

    for i in range(10):
        seal(make_run(root, f"20240601-12{i:02d}00-synthetic2d-pretrain-a{i:05d}", epochs_done=6))
    huge = make_run(root, "huge", epochs_done=6)
    line = (json.dumps(metrics_row(1).to_json()) + "\n").encode()
    rows, size, n = [], 0, 0
    while size < 100 * 1024 * 1024:
        n += 1
        rows.append(line.replace(b'"epoch": 1,', f'"epoch": {n},'.encode(), 1))
        size += len(rows[-1])
    (huge / runs.METRICS).write_bytes(b"".join(rows))
    longest = make_run(root, "longest", epochs_done=0, epochs=10_000)
    (longest / runs.METRICS).write_bytes(b"".join(
        (json.dumps(metrics_row(e, 0.01 * (e % 7)).to_json()) + "\n").encode() for e in range(1, 10_001)))
    from fakes import set_status

    set_status(longest, runs.FINISHED, 10_000, 10_000, 1_717_243_200.0, 1_717_243_200.0 + 600_000)
    seal(longest)
    growing = make_run(root, "growing", epochs_done=0, epochs=10_000, state=runs.RUNNING, pid=2**22 + 1)
    (growing / runs.METRICS).write_bytes(b"".join(
        (json.dumps(metrics_row(e, 0.01 * (e % 7)).to_json()) + "\n").encode() for e in range(1, 9_001)))
    print(f"built {root}: 10 runs, growing (9,000 rows), huge ({(huge / runs.METRICS).stat().st_size / 1e6:.0f} MB, {n} rows),"
          f" longest ({(longest / runs.METRICS).stat().st_size / 1e6:.1f} MB, 10,000 rows)", flush=True)


def timed(argv: list[str], env: dict[str, str], cap: float, cwd: str) -> dict[str, float | str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    try:  # cwd: `python -m` imports from the working folder before PYTHONPATH
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=cap, cwd=cwd)
        rc: int | str = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "capped"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kB, the largest child so far
    return {"seconds": round(seconds, 2), "rc": rc, "peak_mb": round(peak / 1024) if peak > before else None}


WRITER = textwrap.dedent("""
    # appends one row a second to `growing` and keeps its status 'running' with this pid
    import json, os, socket, sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from fakes import metrics_row, set_status
    from damtui.store import runs
    path = Path(sys.argv[1])
    writer = runs.RunWriter(path)
    epoch, t0 = 9_000, time.time()
    while epoch < 10_000:
        epoch += 1
        writer.append_metrics(metrics_row(epoch, 0.01 * (epoch % 7)))
        set_status(path, runs.RUNNING, epoch, 10_000, t0, time.time(), os.getpid())
        time.sleep(1.0)
""")

APP = textwrap.dedent("""
    import asyncio, json, sys, time
    from pathlib import Path
    from damtui.tui.app import DamtuiApp
    from damtui.tui.screens.run_view import RunViewScreen

    import subprocess
    root, cap, fakes = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    out = {}
    writer = subprocess.Popen([sys.executable, "-c", sys.argv[4], str(root / "growing"), fakes])

    async def until(pilot, pred):
        end = time.perf_counter() + cap
        while not pred():
            if time.perf_counter() > end:
                return False
            await pilot.pause(0.05)
        return True

    async def main():
        app = DamtuiApp(root, root.parent / "data", poll_interval=1.0)
        async with app.run_test(size=(120, 40)) as pilot:
            t0 = time.perf_counter()
            await pilot.press("r")
            screen = app.screen
            ok = await until(pilot, lambda: getattr(screen, "loaded", False) and len(screen.all_runs) >= 13)
            out["list_s"] = round(time.perf_counter() - t0, 2) if ok else f">= {cap}"
            await pilot.pause(3)  # the first listing's last redraws
            cpu0 = time.process_time()
            await pilot.pause(10)
            out["idle_cpu_s_per_10s"] = round(time.process_time() - cpu0, 2)
            t0 = time.perf_counter()
            app.push_screen(RunViewScreen(root / "longest"))
            ok = await until(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.record is not None
                             and len(app.screen.rows) == 10_000)
            await pilot.pause()
            out["run_view_longest_s"] = round(time.perf_counter() - t0, 2) if ok else f">= {cap}"
            t0 = time.perf_counter()
            app.pop_screen()
            app.push_screen(RunViewScreen(root / "huge"))
            ok = await until(pilot, lambda: isinstance(app.screen, RunViewScreen) and app.screen.record is not None)
            out["run_view_huge_s"] = round(time.perf_counter() - t0, 2) if ok else f">= {cap}"
            out["huge_status"] = app.screen.record.info.status if ok else "?"
            app.pop_screen()
            app.push_screen(RunViewScreen(root / "growing"))
            await pilot.pause(3)
            cpu0 = time.process_time()
            await pilot.pause(10)
            out["growing_page_cpu_s_per_10s"] = round(time.process_time() - cpu0, 2)
            t0 = time.perf_counter()
        out["quit_s"] = round(time.perf_counter() - t0, 2)
        writer.kill()
        out["growing_rows_written"] = sum(1 for _ in open(root / "growing" / "metrics.jsonl", "rb"))
        print(json.dumps(out))

    asyncio.run(main())
""")


LIST_IN_PROCESS = textwrap.dedent("""
    # list_runs alone, after the imports: seconds, and the bytes of metrics.jsonl and scores read
    import json, os, sys, time
    from damtui.store import runs
    read, real = {"metrics.jsonl": 0, "scores": 0}, os.read
    names = {}
    real_open = os.open
    def spy_open(path, *a, **k):
        fd = real_open(path, *a, **k)
        names[fd] = os.path.basename(str(path))
        return fd
    def spy_read(fd, n):
        data = real(fd, n)
        name = names.get(fd, "")
        key = "metrics.jsonl" if name == "metrics.jsonl" else "scores" if name.endswith(".npz") else None
        if key:
            read[key] += len(data)
        return data
    os.open, os.read = spy_open, spy_read
    t0 = time.perf_counter()
    rows, _ = runs.list_runs(sys.argv[1])
    print(json.dumps({"seconds": round(time.perf_counter() - t0, 3), "runs": len(rows),
                      "metrics_bytes_read": read["metrics.jsonl"], "scores_bytes_read": read["scores"]}))
""")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", default=str(HERE), help="the checkout to measure (its damtui is imported)")
    ap.add_argument("--work", help="reuse or keep the runs folder here")
    ap.add_argument("--cap", type=float, default=120.0, help="seconds after which a measurement stops")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="damtui-big-"))
    root = work / "runs"
    if not root.is_dir():
        root.mkdir(parents=True)
        build(root)
    env = {**os.environ, "PYTHONPATH": args.tree, "DAMTUI_RUNS": str(root), "DAMTUI_THREADS": "1"}
    cli = [sys.executable, "-m", "damtui.cli"]
    res: dict[str, object] = {"tree": args.tree}
    for name, argv in (("runs list", ["runs", "list"]), ("runs show huge", ["runs", "show", "huge"]),
                       ("runs show longest", ["runs", "show", "longest"])):
        res[name] = timed(cli + argv, env, args.cap, args.tree)
        print(f"{name:18s} {res[name]}", flush=True)
    try:
        proc = subprocess.run([sys.executable, "-c", APP, str(root), str(args.cap), str(HERE / "tests" / "tui"), WRITER],
                              env=env, capture_output=True,
                              text=True, timeout=args.cap * 4 + 60, cwd=args.tree)
        res["app"] = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.returncode == 0 else proc.stderr[-500:]
    except subprocess.TimeoutExpired:
        res["app"] = f"capped at {args.cap * 4 + 60} s"
    print(f"app                {res['app']}", flush=True)
    proc = subprocess.run([sys.executable, "-c", LIST_IN_PROCESS, str(root)], env=env, capture_output=True, text=True,
                          timeout=args.cap, cwd=args.tree)
    res["list_runs in process"] = json.loads(proc.stdout) if proc.returncode == 0 else proc.stderr[-500:]
    print(f"list_runs in process {res['list_runs in process']}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2) + "\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
