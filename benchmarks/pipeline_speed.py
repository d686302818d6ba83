"""Train-epoch speed of the report's reference pipeline, damtui's fast pipeline and the floor.

Run by hand (not a test). Every variant goes through the real engine (damtui.train.engine.train) in this
one process on one device, so ratios compare like with like:
  reference   per-sample torchvision/torchio transforms in a DataLoader, fp32 (--set pipeline=reference amp=false)
  fast        uint8 splits on the device, batched augmentation, bf16 autocast on CUDA, channels_last
  floor       the fast path without augmentation (fp32 and bf16): the model's own cost
  compile     fast + torch.compile, mode reduce-overhead (CUDA graphs on CUDA; with --compile)
  naive       not the engine: the issue's floor, a bare loop (same model, loss, optimizer and batch
              size; the split already float on the device; bf16 autocast on CUDA). floor_bf16 /
              naive is what the engine's own loop costs per step.
  packed      the floor with K seeds packed (damtui.train.packing, --k), and naive_packed its bare
              loop: the same stacked model (vmap over the members) written plainly.
  seed_pipeline  not damtui: ../shared/reference/seed_pipeline.py (--seed-pipeline PATH), the plain
              torchvision/torchio DataLoader pipeline a user would write, run in a subprocess.

--host-overhead runs floor_fp32, naive, packed and naive_packed and reports the engine's time per
step over the bare loop's: on a CPU with a tiny model (--set width=1) compute is negligible and the
ratio is what the engine adds on the host per step.

  python benchmarks/pipeline_speed.py --dataset adrenalmnist3d --data-root ../shared/data/medmnist --device cuda
  python benchmarks/pipeline_speed.py --dataset synthetic2d --synthetic-train 78468 --device cuda   # ChestMNIST scale
  python benchmarks/pipeline_speed.py --dataset synthetic3d --device cpu --epochs 2 --set width=8  # CPU smoke
  python benchmarks/pipeline_speed.py --device cpu --set width=1 --host-overhead --epochs 6
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from damtui import config as cfg
from damtui.data import datasets
from damtui.train import engine
from damtui.events import EpochMetrics

TRAIN_GFLOP = {False: 2.7, True: 106.0}  # forward+backward per image, ResNet-18 (28) / 3D ResNet-18 at 28^3
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16 spec sheet

VARIANTS = {
    "reference": {"pipeline": "reference", "amp": "off"},
    "fast": {},
    "floor_fp32": {"augment": False, "amp": "off"},
    "floor_bf16": {"augment": False, "amp": "bf16"},
    "compile": {"compile": True},
}


def synthetic_root(flag: str, n_train: int) -> Path:
    """A synthetic set with a chosen number of training samples (for ChestMNIST-scale timing)."""
    root = Path(tempfile.mkdtemp(prefix="damtui-bench-data-"))
    base = datasets.make_synthetic(flag)
    reps = -(-n_train // len(base["train_labels"]))
    arrays = dict(base)
    arrays["train_images"] = np.concatenate([base["train_images"]] * reps)[:n_train]
    arrays["train_labels"] = np.concatenate([base["train_labels"]] * reps)[:n_train]
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    datasets.dataset_path(flag, root).write_bytes(buf.getvalue())
    return root


def run_variant(config: cfg.Config, device: str, data_root: Path | None, runs_dir: Path) -> dict:
    rows: list[dict] = []

    def emit(ev):
        if isinstance(ev, EpochMetrics):
            rows.append(ev.row.to_json())

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    summary = engine.train(config, emit, threading.Event(), runs_dir=runs_dir, data_root=data_root,
                           device=device).to_json()
    wall = time.perf_counter() - t0
    if summary["status"] != "finished":
        return {"error": summary.get("message", summary["status"])}
    timed = rows[1:] or rows  # the first epoch includes cuDNN autotuning and compilation
    train_s = statistics.median(r["train_s"] for r in timed)
    return {
        "train_s": train_s,
        "first_s": rows[0]["train_s"],
        "eval_s": statistics.median(r["eval_s"] for r in timed),
        "images_per_s": statistics.median(r["images_per_s"] for r in timed),
        "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else float("nan"),
        "val_auc": summary.get("best_val_auc"),
        "wall_s": wall,
    }


def run_naive(config: cfg.Config, device: str, data_root: Path | None) -> dict:
    """The bare training loop the issue's floor figures describe, timed like the engine's epochs."""
    from damtui.train.pipeline import DataPipeline
    from damtui.train.stages import Stage, make_model, num_outputs
    from damtui.train.trainer import amp_enabled

    dev = torch.device(device)
    splits = datasets.load(config.dataset, data_root)
    torch.manual_seed(config.seed)
    model = make_model(config, splits.spec, num_outputs(splits.spec, "pretrain")).to(dev)
    stage = Stage(config, model, splits.spec, splits.positive_share("train"), dev)
    pipe = DataPipeline(splits, config, dev)
    from damtui.train import augment

    x_all, y_all = augment.to_float(pipe.x["train"], splits.spec.is_3d), pipe.y["train"]
    n, size = len(y_all), config.batch_size
    bf16 = amp_enabled(config, dev)
    model.train()

    def epoch() -> None:
        order = torch.randperm(n, device=dev)
        for i in range(0, n - 1, size):
            idx = order[i:i + size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = model(x_all[idx])
            loss = stage.loss(out, y_all[idx])
            stage.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stage.optimizer.step()

    return _timed_epochs(epoch, config.epochs, dev, n)


def run_naive_packed(config: cfg.Config, device: str, data_root: Path | None, k: int) -> dict:
    """The bare loop of K packed seeds: the engine's stacked model (vmap over the members), each
    member on its own sample order, one summed loss, one optimizer; nothing else."""
    import torch.nn.functional as F

    from damtui.train.packing import Stack
    from damtui.train.pipeline import DataPipeline
    from damtui.train.stages import Stage, make_model, num_outputs
    from damtui.train.trainer import amp_enabled

    dev = torch.device(device)
    splits = datasets.load(config.dataset, data_root)
    spec = splits.spec
    models = []
    for seed in range(k):
        torch.manual_seed(seed)
        models.append(make_model(config, spec, num_outputs(spec, "pretrain")))
    stack = Stack(models).to(dev)
    optimizer = Stage(config, stack, spec, splits.positive_share("train"), dev, members=k).optimizer
    pipe = DataPipeline(splits, config, dev)
    from damtui.train import augment

    x_all, y_all = augment.to_float(pipe.x["train"], spec.is_3d), pipe.y["train"]
    n, size = len(y_all), config.batch_size
    bf16 = amp_enabled(config, dev)
    stack.train()

    def epoch() -> None:
        orders = torch.stack([torch.randperm(n, device=dev) for _ in range(k)])
        for i in range(0, n - 1, size):
            idx = orders[:, i:i + size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                out = stack(x_all[idx]).float()
            y = y_all[idx]
            if spec.multilabel:
                loss = F.binary_cross_entropy_with_logits(out, y) * k
            else:
                loss = F.cross_entropy(out.flatten(0, 1), y.flatten().long()) * k
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    result = _timed_epochs(epoch, config.epochs, dev, n * k)
    return result


def _timed_epochs(epoch: Callable[[], None], epochs: int, dev: torch.device, images: int) -> dict:
    times = []
    for _ in range(epochs):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        epoch()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    timed = times[1:] or times
    train_s = statistics.median(timed)
    return {"train_s": train_s, "first_s": times[0], "eval_s": float("nan"), "images_per_s": images / train_s,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan"),
            "val_auc": None, "wall_s": sum(times)}


def run_packed(config: cfg.Config, device: str, data_root: Path | None, runs_dir: Path, k: int) -> dict:
    """The engine's floor with K seeds packed (damtui.train.packing), timed from member 0's rows."""
    from damtui.train import packing

    rows: list[dict] = []

    def emit(ev):
        if isinstance(ev, EpochMetrics):
            rows.append(ev.row.to_json())

    configs = [config.model_copy(update={"seed": s}) for s in range(k)]
    t0 = time.perf_counter()
    summaries = packing.train_packed(configs, [emit] + [lambda ev: None] * (k - 1), threading.Event(),
                                     runs_dir=runs_dir, data_root=data_root, device=device)
    if summaries[0].status != "finished":
        return {"error": summaries[0].message or summaries[0].status}
    timed = rows[1:] or rows
    train_s = statistics.median(r["train_s"] for r in timed)
    return {"train_s": train_s, "first_s": rows[0]["train_s"],
            "eval_s": statistics.median(r["eval_s"] for r in timed),
            "images_per_s": k * statistics.median(r["images_per_s"] for r in timed), "peak_gib": float("nan"),
            "val_auc": summaries[0].best.val_auc if summaries[0].best else None, "wall_s": time.perf_counter() - t0}


def run_seed_pipeline(script: str, flag: str, data_root: Path | None, config: cfg.Config, epochs: int) -> dict:
    """../shared/reference/seed_pipeline.py in a subprocess: the plain DataLoader pipeline (always a
    full-width ResNet-18, SGD, fp32), median train s/epoch of its epochs after the first."""
    import json
    import os
    import subprocess
    import sys

    root = str(data_root or datasets.data_root(None))
    workers = min(12 if datasets.spec(flag).is_3d else 4, os.cpu_count() or 1)
    argv = [sys.executable, script, "--flag", flag, "--root", root, "--pre-epochs", str(epochs), "--ft-epochs", "0",
            "--bs", str(config.batch_size), "--workers", str(workers), "--skip-limit"]
    t0 = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    rows = [r for r in lines if r.get("stage") == "ce" and "train_s" in r]
    if not rows or not any(r.get("stage") == "ce-summary" for r in lines):  # with --ft-epochs 0 it fails
        # after its pretraining, summarising an empty fine-tune: the pretraining's lines are complete
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"seed_pipeline.py exit {done.returncode}: {tail}"}
    timed = rows[1:] or rows
    train_s = statistics.median(r["train_s"] for r in timed)
    return {"train_s": train_s, "first_s": rows[0]["train_s"], "eval_s": statistics.median(r["eval_s"] for r in timed),
            "images_per_s": statistics.median(r["imgs_per_s"] for r in timed), "peak_gib": float("nan"),
            "val_auc": max(r["val_auc"] for r in rows), "wall_s": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic2d")
    ap.add_argument("--data-root")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--preset", default=None, help="default: the dataset's pretrain report/demo preset")
    ap.add_argument("--synthetic-train", type=int, help="resize the synthetic training split to N samples")
    ap.add_argument("--variants", default="reference,fast,floor_fp32,floor_bf16,naive")
    ap.add_argument("--compile", action="store_true", help="also time the fast path with torch.compile")
    ap.add_argument("--host-overhead", action="store_true",
                    help="variants floor_fp32,naive,packed,naive_packed: the engine's step over the bare loop's")
    ap.add_argument("--k", type=int, default=2, help="seeds of the packed variants")
    ap.add_argument("--seed-pipeline", metavar="PATH", help="also time seed_pipeline.py (a MedMNIST flag only)")
    ap.add_argument("--seed-epochs", type=int, help="seed_pipeline.py's epochs (default: --epochs)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", help="append the Markdown table to this file")
    args = ap.parse_args()

    flag = datasets.spec(args.dataset).flag
    data_root = Path(args.data_root) if args.data_root else None
    if args.synthetic_train:
        data_root = synthetic_root(flag, args.synthetic_train)
    base = cfg.find_preset(args.preset or cfg.default_preset_name(flag), flag, "pretrain")
    base = cfg.apply_overrides(base, {"epochs": args.epochs, **cfg.parse_overrides(args.overrides)})
    dev = str(engine.resolve_device(args.device))
    if base.threads:  # the bare loops run in this process at the engine's thread count
        torch.set_num_threads(base.threads)
    names = args.variants.split(",") + (["compile"] if args.compile else [])
    if args.host_overhead:
        names = ["floor_fp32", "naive", "packed", "naive_packed"]
    if args.seed_pipeline:
        names.append("seed_pipeline")
    runs_dir = Path(tempfile.mkdtemp(prefix="damtui-bench-runs-"))
    n_train = len(datasets.load(flag, data_root).labels["train"])
    steps = len([i for i in range(0, n_train, base.batch_size) if min(base.batch_size, n_train - i) > 1])
    gpu = torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") else "cpu"
    floor = cfg.apply_overrides(base, VARIANTS["floor_fp32"]) if args.host_overhead else base
    results = {}
    for name in names:
        if name == "naive":
            results[name] = run_naive(floor, dev, data_root)
        elif name == "naive_packed":
            results[name] = run_naive_packed(floor, dev, data_root, args.k)
        elif name == "packed":
            results[name] = run_packed(floor, dev, data_root, runs_dir, args.k)
        elif name == "seed_pipeline":
            results[name] = run_seed_pipeline(args.seed_pipeline, flag, data_root, base, args.seed_epochs or args.epochs)
        else:
            results[name] = run_variant(cfg.apply_overrides(base, VARIANTS[name]), dev, data_root, runs_dir)
        print(name, results[name], flush=True)
    table = report(results, args, flag, n_train, steps, base, dev, gpu)
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(table + "\n")


def report(results: dict, args: argparse.Namespace, flag: str, n_train: int, steps: int, base: cfg.Config,
           dev: str, gpu: str) -> str:
    import platform
    import sys

    ref = results.get("reference", {}).get("train_s")
    plain = results.get("seed_pipeline", {}).get("train_s")
    is_3d = datasets.spec(flag).is_3d
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    where = gpu if dev.startswith("cuda") else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [
        f"### {flag}: {n_train} training images, batch {base.batch_size} ({steps} steps/epoch), width {base.width},"
        f" {where}",
        "",
        f"`python {' '.join(sys.argv)}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__})",
        "",
        "| variant | train s/epoch (median) | ms/step | first epoch s | eval s | images/s | peak GiB | x reference"
        " | x plain pipeline | TFLOP/s (% bf16 peak) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | | | | |")
            continue
        speed = f"{ref / r['train_s']:.2f}x" if ref else "-"
        over_plain = f"{plain / r['train_s']:.2f}x" if plain else "-"
        tflops = r["images_per_s"] * TRAIN_GFLOP[is_3d] / 1000
        util = f"{tflops:.1f} ({100 * tflops / peak:.1f}%)" if peak else f"{tflops:.2f}"
        label = f"{name} (K={args.k})" if name in ("packed", "naive_packed") else name
        lines.append(f"| {label} | {r['train_s']:.3f} | {1000 * r['train_s'] / steps:.1f} | {r['first_s']:.2f} |"
                     f" {r['eval_s']:.3f} | {r['images_per_s']:.0f} | {r['peak_gib']:.2f} | {speed} | {over_plain} |"
                     f" {util} |")
    ratios = []
    for engine_name, bare in (("floor_fp32", "naive"), ("floor_bf16", "naive"), ("packed", "naive_packed"),
                              ("fast", "floor_bf16"), ("floor_bf16", "floor_fp32")):
        a, b = results.get(engine_name, {}).get("train_s"), results.get(bare, {}).get("train_s")
        if a and b:
            ratios.append(f"{engine_name} / {bare} = {a / b:.2f}x per step")
    if plain and results.get("fast", {}).get("train_s"):
        ratios.append(f"fast is {plain / results['fast']['train_s']:.2f}x the plain pipeline's speed")
    if ratios:
        lines += ["", "; ".join(ratios) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
