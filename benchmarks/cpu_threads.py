"""CPU threads per run: 1 vs 2 (vs the auto default), on a quiet machine and beside busy processes.

Run by hand (not a test):
  python benchmarks/cpu_threads.py --epochs 3 --busy 0,2 --threads 1,2,auto
Each cell is a real `damtui train synthetic2d --device cpu --threads T` process (demo preset,
`--set` as given); it reports the median train seconds per epoch over epochs 2..N from the run's
own metrics and the whole process's wall time (torch import and evaluation included). `--busy B`
starts B processes spinning `while True: pass` beside it, as another user's jobs would. Variants
alternate within each load level to cancel drift. Results go to docs/PERFORMANCE.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPIN = "while True: pass"


def one_run(threads: str, epochs: int, sets: list[str], work: Path) -> tuple[float, float]:
    runs_dir = Path(tempfile.mkdtemp(dir=work))
    argv = [sys.executable, "-m", "damtui.cli", "train", "synthetic2d", "--device", "cpu",
            "--epochs", str(epochs), "--runs-dir", str(runs_dir), "--data-root", str(work / "data")]
    for s in sets:
        argv += ["--set", s]
    if threads != "auto":
        argv += ["--threads", threads]
    env = {k: v for k, v in os.environ.items() if k not in ("DAMTUI_THREADS", "OMP_NUM_THREADS")}
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    wall = time.perf_counter() - t0
    (run,) = [p for p in runs_dir.iterdir() if p.is_dir()]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return statistics.median(r["train_s"] for r in rows[1:] or rows), wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--busy", default="0,2", help="numbers of spinning processes beside the run")
    ap.add_argument("--threads", default="1,2,auto")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    variants = args.threads.split(",")
    print(f"# {os.cpu_count()} CPUs, {sys.platform}; demo preset {' '.join(args.sets)}; "
          f"{args.epochs} epochs; median of {args.repeats}")
    print("| busy processes | threads | train s/epoch | process wall s |")
    print("|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for busy in (int(b) for b in args.busy.split(",")):
            spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(busy)]
            try:
                time.sleep(2 if busy else 0)
                results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
                for _ in range(args.repeats):
                    for v in variants:
                        results[v].append(one_run(v, args.epochs, args.sets, work))
            finally:
                for p in spinners:
                    p.kill()
                    p.wait()
            for v in variants:
                train = statistics.median(r[0] for r in results[v])
                wall = statistics.median(r[1] for r in results[v])
                print(f"| {busy} | {v} | {train:.2f} | {wall:.1f} |", flush=True)


if __name__ == "__main__":
    main()
