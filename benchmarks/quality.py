"""Honest two-stage results: pretrain then finetune, several seeds, selected on validation.

For each dataset whose file is present, for each seed: `damtui train DATASET --preset P` (pretrain)
then `--stage finetune --from` that run, through the real engine. The figure reported per run is
the two-stage answer (the best validation epoch across both stages) with test AUC and ACC read
at that epoch; test labels are never used to choose anything. Writes a Markdown table beside the
MedMNIST v2 reference columns.

  python benchmarks/quality.py --datasets breastmnist adrenalmnist3d --preset tuned --seeds 0 1 2 \
      --data-root ../shared/data/medmnist --device cuda --out docs/RESULTS.md
  ... --pack     the seeds of each stage trained packed, as one vmapped model (damtui.train.packing)
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
from pathlib import Path

from damtui import config as cfg
from damtui.data import datasets
from damtui.train import engine, predict
from damtui.store import runs
from damtui.errors import DamtuiError

# MedMNIST v2 paper, test AUC / ACC: ResNet-18 (28) or ResNet-18+3D, and the best method there.
BENCHMARK = {
    "breastmnist": ((0.901, 0.863), "0.919 AUC (AutoML Vision), 0.863 ACC"),
    "pneumoniamnist": ((0.944, 0.854), "0.991 / 0.946 (AutoML Vision)"),
    "chestmnist": ((0.768, 0.947), "0.778 / 0.948 (AutoML Vision)"),
    "nodulemnist3d": ((0.863, 0.844), "0.914 / 0.874 (auto-sklearn)"),
    "adrenalmnist3d": ((0.827, 0.721), "0.839 AUC (ResNet-18+ACS), 0.802 ACC (auto-sklearn)"),
    "vesselmnist3d": ((0.874, 0.877), "0.930 / 0.928 (ResNet-18+ACS)"),
    "synapsemnist3d": ((0.820, 0.745), "0.851 / 0.795 (ResNet-50+3D)"),
}


def one_seed(flag: str, preset: str, seed: int, args: argparse.Namespace, log) -> dict:
    """Pretrain then finetune one seed (`engine.train`)."""
    pre = _stage_done(flag, "pretrain", [seed], [_train(flag, preset, "pretrain", seed, args, None)], log)[0]
    fine = _stage_done(flag, "finetune", [seed],
                       [_train(flag, preset, "finetune", seed, args, Path(args.runs_dir) / pre["run_id"])], log)[0]
    return _seed_result(seed, pre, fine, args)


def packed_seeds(flag: str, preset: str, seeds: list[int], args: argparse.Namespace, log) -> list[dict]:
    """All seeds at once, each stage packed (damtui.train.packing): one process, one vmapped model."""
    from damtui.train import packing

    runs_dir = Path(args.runs_dir)
    done: dict[str, list[dict]] = {}
    for name in ("pretrain", "finetune"):
        configs = [_config(flag, preset, name, seed, args) for seed in seeds]
        sources = [runs_dir / p["run_id"] for p in done["pretrain"]] if name == "finetune" else None
        t = time.perf_counter()
        summaries = packing.train_packed(configs, [lambda ev: None] * len(seeds), threading.Event(),
                                         runs_dir=runs_dir, data_root=args.data_root, device=args.device,
                                         from_runs=sources)
        log(f"{flag} seeds {seeds} {name} packed in {time.perf_counter() - t:.0f}s")
        done[name] = _stage_done(flag, name, seeds, [s.to_json() for s in summaries], log)
    return [_seed_result(seed, pre, fine, args) for seed, pre, fine in zip(seeds, done["pretrain"], done["finetune"])]


def _config(flag: str, preset: str, stage: str, seed: int, args: argparse.Namespace) -> cfg.Config:
    return cfg.apply_overrides(cfg.find_preset(preset, flag, stage), {"seed": seed, **cfg.parse_overrides(args.overrides)})


def _train(flag: str, preset: str, stage: str, seed: int, args: argparse.Namespace, from_run: Path | None) -> dict:
    t = time.perf_counter()
    s = engine.train(_config(flag, preset, stage, seed, args), lambda ev: None, threading.Event(),
                     runs_dir=Path(args.runs_dir), data_root=args.data_root, device=args.device,
                     from_run=from_run).to_json()
    s["seconds"] = time.perf_counter() - t
    return s


def _stage_done(flag: str, stage: str, seeds: list[int], summaries: list[dict], log) -> list[dict]:
    for seed, s in zip(seeds, summaries):
        took = f" in {s['seconds']:.0f}s" if "seconds" in s else ""
        log(f"{flag} seed {seed} {stage}: {s['status']} val {s.get('best_val_auc')} test {s.get('best_test_auc')}"
            f" / {s.get('best_test_acc_thr')}{took} ({s['run_id']})")
        if s["status"] != "finished":
            raise DamtuiError(f"{flag} seed {seed} {stage} {s['status']}: {s.get('message', '')}")
    return summaries


def _seed_result(seed: int, pre: dict, fine: dict, args: argparse.Namespace) -> dict:
    answer = fine["answer"]
    fine_rows = [r.to_json() for r in runs.load_run(Path(args.runs_dir) / fine["run_id"]).metrics]
    return {
        "seed": seed, "pretrain": pre, "finetune": fine, "answer": answer,
        "answer_acc_half": _acc_half(answer, pre, fine),
        "finetune_first_val_auc": fine_rows[0]["val_auc"] if fine_rows else None,
    }


def _acc_half(answer: dict, pre: dict, fine: dict) -> float | None:
    return (pre if answer["stage"] == "pretrain" else fine).get("best_test_acc")


def mean_std(values: list[float]) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", nargs="+", default=list(datasets.REPORT_FLAGS))
    ap.add_argument("--preset", default="tuned")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data-root")
    ap.add_argument("--runs-dir", default=str(runs.runs_dir()))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--out", help="write the Markdown results here")
    ap.add_argument("--json", help="write the raw per-seed results here")
    ap.add_argument("--pack", action="store_true", help="train the seeds packed, one stage at a time")
    args = ap.parse_args()

    def log(msg: str) -> None:
        print(msg, flush=True)

    results: dict[str, list[dict] | str] = {}
    ensembles: dict[str, dict] = {}
    for flag in args.datasets:
        st = datasets.status(flag, args.data_root)
        if st.state not in ("present", "synthetic") or st.md5 == "mismatch":
            results[flag] = f"not run: file {st.state}" + (f" (MD5 {st.md5})" if st.md5 != "-" else "")
            continue
        done: list[dict] = []
        try:
            if args.pack and len(args.seeds) > 1:
                done = packed_seeds(flag, args.preset, args.seeds, args, log)
                results[flag] = done
                write(results, args, ensembles)
            for seed in [] if args.pack and len(args.seeds) > 1 else args.seeds:
                done.append(one_seed(flag, args.preset, seed, args, log))
                results[flag] = done
                write(results, args, ensembles)  # after every seed, so a time-limited session keeps what it got
        except DamtuiError as err:
            results[flag] = done or f"not run: {err}"
        if isinstance(results.get(flag), list) and len(results[flag]) > 1:
            ensembles[flag] = seed_ensemble(results[flag], args)
            write(results, args, ensembles)
    print(write(results, args, ensembles))


def seed_ensemble(res: list[dict], args: argparse.Namespace) -> dict:
    """The seeds' two-stage answer checkpoints averaged (reported as an ensemble, never as a run)."""
    root = Path(args.runs_dir)
    dirs = [root / r[r["answer"]["stage"]]["run_id"] for r in res]
    return predict.ensemble_metrics(dirs, args.data_root, args.device)


def write(results: dict, args: argparse.Namespace, ensembles: dict | None = None) -> str:
    dev = engine.resolve_device(args.device)
    import torch

    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    lines = [
        f"Preset set `{args.preset}`, seeds {args.seeds}, device {gpu}, {time.strftime('%Y-%m-%d')}.",
        f"Command: `python benchmarks/quality.py {' '.join(__import__('sys').argv[1:])}`",
        "",
        "Two-stage answer = the best validation-AUC epoch across pretrain and finetune; test read there.",
        "ACC@0.5 is the benchmark's rule; ACC@val-thr uses the threshold chosen on validation.",
        "",
        "| dataset | pretrain test AUC | two-stage test AUC | ACC@0.5 | ACC@val-thr | answer from | "
        "ft epoch-1 val AUC vs pretrain best | ResNet-18 (MedMNIST v2) | best in paper |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for flag, res in results.items():
        ref, best = BENCHMARK.get(flag, ((None, None), "-"))
        ref_text = f"{ref[0]:.3f} / {ref[1]:.3f}" if ref[0] else "-"
        if isinstance(res, str):
            lines.append(f"| {flag} | {res} | | | | | | {ref_text} | {best} |")
            continue
        stages = ", ".join(r["answer"]["stage"] for r in res)
        start = ", ".join(f"{r['finetune_first_val_auc']:.3f} vs {r['pretrain']['best_val_auc']:.3f}" for r in res)
        lines.append(
            f"| {flag} | {mean_std([r['pretrain']['best_test_auc'] for r in res])} "
            f"| {mean_std([r['answer']['best_test_auc'] for r in res])} "
            f"| {mean_std([r['answer_acc_half'] for r in res])} "
            f"| {mean_std([r['answer']['best_test_acc_thr'] for r in res])} | {stages} | {start} | {ref_text} | {best} |"
        )
    for flag, e in (ensembles or {}).items():
        lines.append(f"| {flag}: ensemble of {len(e['members'])} seeds (mean of answer-checkpoint scores) | "
                     f"| {e['test_auc']:.3f} | {e['test_acc']:.3f} | {e['test_acc_thr']:.3f} | ensemble | | | |")
    lines += ["", "Run ids (pretrain -> finetune):", ""]
    for flag, res in results.items():
        if not isinstance(res, str):
            for r in res:
                lines.append(f"- {flag} seed {r['seed']}: `{r['pretrain']['run_id']}` -> `{r['finetune']['run_id']}`")
    text = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str), encoding="utf-8")
    return text


if __name__ == "__main__":
    main()
