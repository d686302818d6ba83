"""The leaderboard: per dataset, the best honest seed group beside the MedMNIST v2 references.

Honest means the group is chosen by the mean VALIDATION AUC of its members' answer epochs (a
fine-tune's answer is the best validation epoch of both stages); test numbers are read there and
never choose anything. Rows: the chosen group (mean ± std over seeds, per-seed values with their
bootstrap intervals once runs carry them), then the paper's ResNet-18 row, ResNet-50 row and best
cell. Pure: `markdown()` returns the text that `damtui results` prints and `--md` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from damtui.analysis import references
from damtui.analysis.groups import SeedGroup, group_runs
from damtui.records import INTERVAL_FMT, METRICS, SELECT_BY, Selected
from damtui.store.runs import RunInfo

SHOWN = ("test_auc", "test_acc", "test_acc_thr")  # damtui's columns; the paper has AUC and ACC@0.5
REFERENCE_OF = {"test_auc": "auc", "test_acc": "acc"}
REFERENCE_ROWS = ("resnet18", "resnet50", "best")
MIN_SEEDS = 2  # a single run competes only where no configuration of its dataset has this many seeds


@dataclass(frozen=True)
class Entry:
    """One dataset of the leaderboard: its best group (None: no finished run) and the paper's rows."""

    dataset: str
    group: SeedGroup | None
    candidates: int  # seed groups with a finished run that competed
    benchmark: references.Benchmark | None

    def reference(self, row: str, metric: str) -> references.Reference | None:
        ref = REFERENCE_OF.get(metric)
        return self.benchmark.row(row, ref) if self.benchmark and ref else None


def interval(selected: Selected | None, metric: str) -> tuple[float, float] | None:
    """A run's 95% bootstrap interval of a test metric, where its record carries one
    (`Selected.intervals`, {metric: Interval(lo, hi)}); None for runs recorded without."""
    found = getattr(selected, "intervals", None) or {}
    iv = found.get(metric) if isinstance(found, dict) else None
    if iv is None:
        return None
    return float(iv.lo), float(iv.hi)


def interval_text(selected: Selected | None, metric: str) -> str:
    iv = interval(selected, metric)
    if iv is None:
        return "-"
    return f"[{iv[0]:{INTERVAL_FMT}}, {iv[1]:{INTERVAL_FMT}}]"  # 3 decimals, as the means beside it


def _rank(group: SeedGroup) -> tuple[float, int, str]:
    """Mean validation AUC, then more seeds; the key last so ties resolve the same every time."""
    mean = group.stat(SELECT_BY).mean
    return (-(mean if mean is not None else -1.0), -group.stat(SELECT_BY).n, group.key)


def best_group(groups: Iterable[SeedGroup]) -> SeedGroup | None:
    """The group with the highest mean validation AUC over its finished members (never test),
    among the groups with MIN_SEEDS finished seeds where there are any: one lucky seed must not
    beat a mean over seeds."""
    scored = [g for g in groups if g.stat(SELECT_BY).mean is not None]
    seeded = [g for g in scored if g.stat(SELECT_BY).n >= MIN_SEEDS]
    ranked = sorted(seeded or scored, key=_rank)
    return ranked[0] if ranked else None


def leaderboard(infos: Sequence[RunInfo]) -> list[Entry]:
    """One entry per dataset with runs: benchmark datasets in the paper's order, then the rest."""
    groups = group_runs(infos)
    order = references.datasets()
    present = sorted({g.dataset for g in groups}, key=lambda d: (d not in order, order.index(d) if d in order else 0, d))
    out = []
    for dataset in present:
        mine = [g for g in groups if g.dataset == dataset and g.stat(SELECT_BY).mean is not None]
        out.append(Entry(dataset, best_group(mine), len(mine), references.benchmark(dataset)))
    return out


# ----------------------------------------------------------------------------- text


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _ref_text(ref: references.Reference | None) -> str:
    return "-" if ref is None else f"{ref.value:.3f}"


def markdown(board: Sequence[Entry], runs_dir: str = "", extra: Mapping[str, Sequence[str]] | None = None) -> str:
    """The leaderboard as Markdown (what docs/RESULTS.md's generated section holds); `extra` holds
    lines per dataset printed under its table (the "does DAM help" block, damtui.analysis.dam_gain)."""
    heads = [METRICS[m].label for m in SHOWN]
    lines = ["# damtui results", "",
             "Per dataset, the seed group with the best mean **validation** AUC at its runs' answer epochs"
             " (a fine-tune's answer is the best validation epoch of both stages; single runs compete only"
             " where no configuration has two seeds); test is read there and chooses nothing. Mean ± sample std over seeds; 95% intervals are per-run bootstrap"
             " intervals on the test set, where a run records them.", ""]
    where = f" --runs-dir {runs_dir}" if runs_dir else ""
    lines += [f"Generated by `damtui results{where} --md FILE` from the run folders.", ""]
    if not board:
        lines += ["No finished runs yet.", ""]
    for e in board:
        lines += [f"## {e.dataset}", ""]
        lines.append("| | " + " | ".join(heads) + " | seeds | selected by |")
        lines.append("|---|" + "---|" * (len(heads) + 2))
        g = e.group
        if g is not None:
            cells = [g.stat(m).format() for m in SHOWN]
            val = g.stat(SELECT_BY)
            lines.append(f"| **damtui** {_cell(g.label)} | " + " | ".join(cells)
                         + f" | {val.n} | val AUC {val.format()} |")
        if e.benchmark is not None:
            for row in REFERENCE_ROWS:
                refs = [e.reference(row, m) for m in SHOWN]
                name = next((r.label for r in refs if r is not None), row)
                lines.append(f"| {_cell(name)} | " + " | ".join(_ref_text(r) for r in refs) + " | | paper |")
        lines.append("")
        lines += (extra or {}).get(e.dataset, [])
        if g is not None:
            lines += _per_seed(g, e.candidates)
        if e.benchmark is not None:
            lines += [f"References: {e.benchmark.source}; {e.benchmark.selection}.", ""]
    return "\n".join(lines)


def _per_seed(g: SeedGroup, candidates: int) -> list[str]:
    lines = [f"Per seed ({candidates} seed group{'s' if candidates != 1 else ''} competed;"
             " answer stage@epoch; 95% interval of test AUC):", "",
             "| seed | answer | val AUC | test AUC | 95% interval | test ACC | test ACC (val thr) | runs |",
             "|---|---|---|---|---|---|---|---|"]
    for src, run in g.pairs():
        r = run.result
        if r is None or run not in g.finished:
            continue
        ids = f"`{src.run_id}` -> `{run.run_id}`" if src is not None else f"`{run.run_id}`"
        cells = [METRICS[k].format(r.value(k)) for k in ("val_auc", "test_auc")]
        cells += [interval_text(r, "test_auc")] + [METRICS[k].format(r.value(k)) for k in ("test_acc", "test_acc_thr")]
        lines.append(f"| {run.seed} | {r.stage}@{r.epoch} | " + " | ".join(cells) + f" | {ids} |")
    lines.append("")
    if g.repeats:
        lines += [f"{len(g.repeats)} more run(s) of these seeds not averaged (each seed counts once, by its newest"
                  " finished run): " + ", ".join(f"`{m.run_id}`" for m in g.repeats), ""]
    return lines
