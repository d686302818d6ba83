"""K seeds on one device: one run alone, K separate processes at once, and K packed in one process.

Run by hand (not a test). Each variant is a real `damtui train` process (so start-up is the same
for all); throughput comes from the runs' own metrics (median `train_s` over the epochs after the
first, which carries cuDNN autotuning and warm-up), and the wall clock of the whole variant is
reported beside it.
  one        `damtui train DATASET --seed 0`                      (the unit: one run's images/s)
  processes  K x `damtui train DATASET --seed i`, started together (time-sliced, as a sweep would)
  packed     `damtui train DATASET --seeds 0,...,K-1`              (damtui.train.packing: one vmapped model)

  python benchmarks/packing_speed.py --dataset breastmnist --data-root ../shared/data/medmnist --device cuda
  python benchmarks/packing_speed.py --dataset adrenalmnist3d --data-root ../shared/data/medmnist --device cuda
  python benchmarks/packing_speed.py --dataset synthetic2d --device cpu --k 2 --set width=8   # CPU smoke
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


def _train(args: argparse.Namespace, root: Path, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "damtui.cli", "train", args.dataset, "--preset", args.preset,
            "--epochs", str(args.epochs), "--device", args.device, "--runs-dir", str(root)]
    if args.data_root:
        argv += ["--data-root", args.data_root]
    for item in args.set:
        argv += ["--set", item]
    return argv + extra


def _run_all(argvs: list[list[str]], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    procs = [subprocess.Popen(a, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for a in argvs]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise SystemExit(f"a training process failed: {err.strip().splitlines()[-1:]}")
    return time.perf_counter() - t0


def _train_rates(root: Path) -> list[float]:
    """Images/s of each run in root: train samples / median train_s of epochs 2.. ."""
    rates = []
    for run in sorted(p for p in root.iterdir() if (p / "metrics.jsonl").exists()):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
        steady = rows[1:] or rows
        seen = rows[0]["images_per_s"] * rows[0]["train_s"]  # samples per epoch
        rates.append(seen / statistics.median(r["train_s"] for r in steady))
    return rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic2d")
    ap.add_argument("--preset", default="tuned")
    ap.add_argument("--data-root")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--variants", default="one,processes,packed")
    ap.add_argument("--out", help="append the Markdown table to this file")
    args = ap.parse_args()
    if args.dataset.startswith("synthetic") and args.preset == "tuned":
        args.preset = "demo"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    seeds = list(range(args.k))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants.split(","):
            root = Path(tmp) / variant
            if variant == "one":
                argvs = [_train(args, root, ["--seed", "0"])]
            elif variant == "processes":
                argvs = [_train(args, root, ["--seed", str(s)]) for s in seeds]
                if args.device == "cpu" and "DAMTUI_THREADS" not in os.environ:  # as `damtui sweep` does
                    env = dict(env, DAMTUI_THREADS=str(max(1, (os.cpu_count() or 1) // args.k)))
            elif variant == "packed":
                argvs = [_train(args, root, ["--seeds", ",".join(map(str, seeds))])]
            else:
                raise SystemExit(f"unknown variant {variant!r}")
            wall = _run_all(argvs, env)
            env = dict(os.environ, PYTHONUNBUFFERED="1")
            rates = _train_rates(root)
            # packed members each report the pack's epoch time for their own images: sum = total
            results[variant] = {"runs": len(rates), "images_per_s": sum(rates), "wall_s": wall}
            print(f"{variant:<10} runs {len(rates)}  train images/s {sum(rates):9.0f}  wall {wall:6.1f} s", flush=True)

    device = _device_name(args.device)
    lines = [f"\n### Packing: {args.dataset}, K={args.k}, {args.epochs} epochs, preset {args.preset}"
             f" {' '.join(args.set)}".rstrip(),
             f"{device}, {time.strftime('%Y-%m-%d')}; `python benchmarks/packing_speed.py {' '.join(sys.argv[1:])}`\n",
             "| variant | runs | train images/s (all runs) | vs one run | wall s |", "|---|---|---|---|---|"]
    one = results.get("one", {}).get("images_per_s")
    for name, r in results.items():
        ratio = f"{r['images_per_s'] / one:.2f}x" if one else "-"
        lines.append(f"| {name} | {r['runs']} | {r['images_per_s']:.0f} | {ratio} | {r['wall_s']:.1f} |")
    if "packed" in results and "processes" in results:
        lines.append(f"\npacked / processes: {results['packed']['images_per_s'] / results['processes']['images_per_s']:.2f}x"
                     " train throughput")
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "a") as fh:
            fh.write(text + "\n")


def _device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import platform

    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


if __name__ == "__main__":
    main()
