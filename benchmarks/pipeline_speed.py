"""Train-epoch speed of the report's reference pipeline, damtui's fast pipeline and the floor.

Run by hand (not a test). Every variant goes through the real engine (damtui.train.engine.train) in this
one process on one device, so ratios compare like with like:
  reference   per-sample torchvision/torchio transforms in a DataLoader, fp32 (--set pipeline=reference amp=false)
  fast        uint8 splits on the device, batched augmentation, bf16 autocast on CUDA, channels_last
  floor       the fast path without augmentation (fp32 and bf16): the model's own cost
  compile     fast + torch.compile (CUDA only, with --compile)
  naive       not the engine: the issue's floor, a bare loop (same model, loss, optimizer and batch
              size; the split already float on the device; bf16 autocast on CUDA). floor_bf16 /
              naive is what the engine's own loop costs per step.

  python benchmarks/pipeline_speed.py --dataset adrenalmnist3d --data-root ../shared/data/medmnist --device cuda
  python benchmarks/pipeline_speed.py --dataset synthetic2d --synthetic-train 78468 --device cuda   # ChestMNIST scale
  python benchmarks/pipeline_speed.py --dataset synthetic3d --device cpu --epochs 2 --set width=8  # CPU smoke
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from damtui import config as cfg
from damtui.data import datasets
from damtui.train import engine
from damtui.events import EpochMetrics

TRAIN_GFLOP = {False: 2.7, True: 106.0}  # forward+backward per image, ResNet-18 (28) / 3D ResNet-18 at 28^3
PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0}  # dense bf16 spec sheet

VARIANTS = {
    "reference": {"pipeline": "reference", "amp": False},
    "fast": {},
    "floor_fp32": {"augment": False, "amp": False},
    "floor_bf16": {"augment": False},
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

    dev = torch.device(device)
    splits = datasets.load(config.dataset, data_root)
    torch.manual_seed(config.seed)
    model = make_model(config, splits.spec, num_outputs(splits.spec, "pretrain")).to(dev)
    stage = Stage(config, model, splits.spec, splits.positive_share("train"), dev)
    pipe = DataPipeline(splits, config, dev)
    from damtui.train import augment

    x_all, y_all = augment.to_float(pipe.x["train"], splits.spec.is_3d), pipe.y["train"]
    n, size = len(y_all), config.batch_size
    times = []
    model.train()
    for _ in range(config.epochs):
        order = torch.randperm(n, device=dev)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        for i in range(0, n - 1, size):
            idx = order[i:i + size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
                out = model(x_all[idx])
            loss = stage.loss(out, y_all[idx])
            stage.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            stage.optimizer.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    timed = times[1:] or times
    train_s = statistics.median(timed)
    return {"train_s": train_s, "first_s": times[0], "eval_s": float("nan"), "images_per_s": n / train_s,
            "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else float("nan"),
            "val_auc": None, "wall_s": sum(times)}


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
    names = args.variants.split(",") + (["compile"] if args.compile else [])
    runs_dir = Path(tempfile.mkdtemp(prefix="damtui-bench-runs-"))
    n_train = len(datasets.load(flag, data_root).labels["train"])
    gpu = torch.cuda.get_device_name(torch.device(dev)) if dev.startswith("cuda") else "cpu"
    results = {}
    for name in names:
        if name == "naive":
            results[name] = run_naive(base, dev, data_root)
        else:
            results[name] = run_variant(cfg.apply_overrides(base, VARIANTS[name]), dev, data_root, runs_dir)
        print(name, results[name], flush=True)

    ref = results.get("reference", {}).get("train_s")
    is_3d = datasets.spec(flag).is_3d
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in gpu), None)
    lines = [
        f"### {flag}: {n_train} training images, batch {base.batch_size}, width {base.width}, {gpu}",
        "",
        f"`{' '.join(__import__('sys').argv)}` ({time.strftime('%Y-%m-%d')}, torch {torch.__version__})",
        "",
        "| variant | train s/epoch (median) | first epoch s | eval s | images/s | peak GiB | x reference | TFLOP/s (% bf16 peak) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        if "error" in r:
            lines.append(f"| {name} | failed: {r['error']} | | | | | | |")
            continue
        speed = f"{ref / r['train_s']:.2f}x" if ref else "-"
        tflops = r["images_per_s"] * TRAIN_GFLOP[is_3d] / 1000
        util = f"{tflops:.1f} ({100 * tflops / peak:.1f}%)" if peak else f"{tflops:.2f}"
        lines.append(f"| {name} | {r['train_s']:.3f} | {r['first_s']:.2f} | {r['eval_s']:.3f} | "
                     f"{r['images_per_s']:.0f} | {r['peak_gib']:.2f} | {speed} | {util} |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(table + "\n")


if __name__ == "__main__":
    main()
