"""How far a packed run drifts from the same seed trained alone, against other rounding changes.

Run by hand (not a test). Seeds trained alone and packed (damtui.train.packing), pretrain then
finetune from the runs trained alone, on the CPU: the largest per-epoch difference of test AUC,
validation AUC and train loss between a packed member and its run alone, in float32 (as runs
train) and in float64 (where both are the same computation, so the drift must vanish), beside the
drift of the same runs alone with another thread count (another summation order, nothing else).

  python benchmarks/packing_drift.py                      # demo preset, seeds 0 1, 1 vs 2 threads
  python benchmarks/packing_drift.py --precisions float32 --set width=4
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import torch

from damtui import config as cfg
from damtui.store import runs
from damtui.train import augment, engine, packing

KEYS = ("test_auc", "val_auc", "train_loss")


def in_float64() -> None:
    """Train in float64 as tests/conftest.py's fixture does: augmentation draws in float32 (its
    random numbers must not change), its output and every tensor after it in float64."""
    to_float, augment_batch = augment.to_float, augment.augment_batch

    def augment_batch64(x: torch.Tensor, is_3d: bool) -> torch.Tensor:
        torch.set_default_dtype(torch.float32)
        try:
            return augment_batch(x, is_3d).double()
        finally:
            torch.set_default_dtype(torch.float64)

    augment.to_float = lambda x, is_3d: to_float(x, is_3d).double()
    augment.augment_batch = augment_batch64
    torch.set_default_dtype(torch.float64)


def train_both_stages(args: argparse.Namespace, root: Path, how: str, threads: int) -> None:
    """Runs named f"{how}-{stage}{seed}" under root: `alone` one by one, `packed` as one pack."""
    sources: list[Path | None] = [None] * len(args.seeds)
    for stage in ("pretrain", "finetune"):
        configs = [cfg.apply_overrides(cfg.find_preset(args.preset, args.dataset, stage),
                                       {"seed": s, **cfg.parse_overrides(args.overrides)}) for s in args.seeds]
        names = [f"{how}-{stage}{s}" for s in args.seeds]
        if how == "packed":
            packing.train_packed(configs, [lambda ev: None] * len(configs), threading.Event(), runs_dir=root,
                                 device="cpu", from_runs=sources, run_names=names, threads=threads)
        else:
            for c, src, name in zip(configs, sources, names):
                engine.train(c, lambda ev: None, threading.Event(), runs_dir=root, device="cpu", from_run=src,
                             run_name=name, threads=threads)
        if stage == "pretrain":
            sources = [root / f"alone-pretrain{s}" for s in args.seeds]  # both finetune from the same runs


def drift(root: Path, a: str, b: str, seeds: list[int]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for stage in ("pretrain", "finetune"):
        for s in seeds:
            rows_a, rows_b = runs.read_metrics(root / f"{a}-{stage}{s}")[0], runs.read_metrics(root / f"{b}-{stage}{s}")[0]
            for ra, rb in zip(rows_a, rows_b, strict=True):
                for key in KEYS:
                    d = abs(getattr(ra, key) - getattr(rb, key))
                    out[(stage, key)] = max(out.get((stage, key), 0.0), d)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="synthetic2d")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--precisions", nargs="+", default=["float32", "float64"])
    ap.add_argument("--threads", type=int, default=1, help="threads of the packed and alone runs compared")
    ap.add_argument("--other-threads", type=int, default=2, help="the alone runs again with this many (0: skip)")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args()
    lines = [f"| precision | compared | {' | '.join(f'{st} {k}' for st in ('pretrain', 'finetune') for k in KEYS)} |",
             "|---|---|" + "---|" * 2 * len(KEYS)]
    for precision in sorted(args.precisions, key=lambda p: p == "float64"):  # float64 cannot be undone
        if precision == "float64":
            in_float64()
        root = Path(tempfile.mkdtemp(prefix=f"damtui-drift-{precision}-"))
        train_both_stages(args, root, "alone", args.threads)
        train_both_stages(args, root, "packed", args.threads)
        pairs = [("alone", "packed", f"packed vs alone, {args.threads} thread(s)")]
        if args.other_threads and precision == "float32":
            train_both_stages(args, root, "threads", args.other_threads)
            pairs.append(("alone", "threads", f"alone, {args.threads} vs {args.other_threads} threads"))
        for a, b, label in pairs:
            d = drift(root, a, b, args.seeds)
            cells = " | ".join(f"{d[(st, k)]:.1e}" for st in ("pretrain", "finetune") for k in KEYS)
            lines.append(f"| {precision} | {label} | {cells} |")
            print(lines[-1], flush=True)
    print(f"\nLargest per-epoch |difference| over seeds {args.seeds} and epochs; {args.dataset} preset {args.preset}"
          f" {' '.join(args.overrides)}, CPU, {time.strftime('%Y-%m-%d')}; `python benchmarks/packing_drift.py`\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
