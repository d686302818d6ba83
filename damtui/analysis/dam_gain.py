"""Does DAM help? A fine-tune (AUCM + PESG) against the pretrain (cross-entropy) it started from,
each at its own best VALIDATION epoch, on the same test images: the paired difference in test AUC
and in test ACC at each stage's validation threshold, per seed and pooled over a seed group.
Validation decides which epochs meet; test only measures.

The 95% interval is a bootstrap that resamples what would change if the experiment were repeated:

- images: a replicate draws one resample of the test set (binary: positives and negatives apart,
  so each keeps its count, as the per-run intervals do; multi-label: whole images) and weighs
  BOTH stages' scores of an image alike (paired). The resample is shared by every seed of the
  replicate, because every seed is scored on the same test images: resampling them per seed
  would count 156 images as 3 x 156 and narrow the interval by about sqrt(3);
- seeds: the k seeds are drawn k times with replacement (a seed stands for one training run).
  With k = 1 this is the plain paired bootstrap of one fine-tune against its pretrain.

A replicate's value is the mean over its drawn seeds of (fine-tune - pretrain) on its resampled
images; the interval is the 2.5th-97.5th percentile over RESAMPLES replicates (fixed seed: the
same runs always give the same interval). Resampling both the seeds and the images of a crossed
design counts their interaction twice, so the interval errs wide (Owen 2007); with 3 seeds the
seed draws are coarse (10 distinct multisets) and understate the seed spread by (k-1)/k.

Verdict: "fine-tune better" or "pretrain better" when the interval leaves out 0, else "no clear
difference". The computation is pure numpy; of_run/of_group/by_dataset read the scores through
damtui.store.results.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from damtui.analysis import uncertainty
from damtui.analysis.groups import SeedGroup, group_runs
from damtui.analysis.leaderboard import best_group
from damtui.errors import DamtuiError
from damtui.records import INTERVAL_FMT
from damtui.store import results as run_results, runs
from damtui.store.files import Scores

RESAMPLES = uncertainty.RESAMPLES
SEED = 27  # fixed: the same runs always show the same interval
BLOCK_CELLS = 2_000_000  # replicate x image weights held at once (ChestMNIST's 22k images: 89 replicates)
FINETUNE, PRETRAIN = "AUCM fine-tune", "CE pretrain"  # config.py: finetune is AUCM, pretrain CE, always
FINETUNE_BETTER, PRETRAIN_BETTER, NO_CLEAR_DIFFERENCE = "fine-tune better", "pretrain better", "no clear difference"
WHAT = {"test_auc": "ΔAUC", "test_acc_thr": "ΔACC (val thr)"}


def verdict(lo: float, hi: float) -> str:
    """The words for an interval of (fine-tune - pretrain)."""
    if lo > 0:
        return FINETUNE_BETTER
    if hi < 0:
        return PRETRAIN_BETTER
    return NO_CLEAR_DIFFERENCE


# ----------------------------------------------------------------------------- the bootstrap


@dataclass(frozen=True)
class Resamples:
    """Replicates of the experiment: the seeds each one draws (R, k) and the copies of each test
    image it draws (R, N), the same copies for every seed and both stages."""

    seeds: np.ndarray
    weights: np.ndarray


def _columns(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    return y.reshape(len(y), -1) > 0.5, s.reshape(len(s), -1)


def resample_blocks(labels: np.ndarray, seeds: int, n: int = RESAMPLES, seed: int = SEED) -> Iterator[Resamples]:
    """`n` replicates in blocks of at most BLOCK_CELLS weights, drawn from one generator in order
    (the blocks depend on the image count only, so the same inputs give the same replicates)."""
    y, _ = _columns(labels, labels)
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(c) for c in (y[:, 0], ~y[:, 0])] if y.shape[1] == 1 else [np.arange(len(y))]
    step = max(1, BLOCK_CELLS // max(1, len(y)))
    for start in range(0, n, step):
        rows = min(step, n - start)
        weights = np.zeros((rows, len(y)), np.int64)
        for idx in strata:
            if len(idx):
                weights[:, idx] = uncertainty.resample_counts(np.ones(len(idx), np.int64), rows, rng)
        yield Resamples(rng.integers(0, seeds, size=(rows, seeds)), weights)


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of one binary label with image i counted weights[r, i] times, for each row r (R,):
    P(positive above negative) + P(tie) / 2. One sort, then running sums per tie group."""
    y = np.asarray(labels).reshape(-1) > 0.5
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(s, kind="mergesort")
    ss, yy = s[order], y[order]
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    w = np.asarray(weights, dtype=np.float64)[:, order]
    neg = np.add.reduceat(np.where(yy, 0.0, w), starts, axis=1)
    pos = np.add.reduceat(np.where(yy, w, 0.0), starts, axis=1)
    below = np.cumsum(neg, axis=1) - neg
    twice_wins = np.einsum("rg,rg->r", pos, 2 * below + neg)
    with np.errstate(invalid="ignore", divide="ignore"):
        return twice_wins / (2 * pos.sum(axis=1) * neg.sum(axis=1))


def stage_metrics(scores: Scores, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Test AUC (multi-label: mean over labels with both classes) and test ACC at the stage's own
    validation threshold, under each row of image weights."""
    y, s = _columns(scores.test_labels, scores.test_scores)
    per_label = [weighted_auc(y[:, j], s[:, j], weights) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    if per_label:
        stacked = np.stack(per_label)
        valid = ~np.isnan(stacked)
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.where(valid, stacked, 0.0).sum(axis=0) / valid.sum(axis=0)
    else:
        auc = np.full(len(weights), np.nan)
    thr = np.broadcast_to(np.asarray(scores.val_threshold, dtype=np.float64).reshape(-1), (s.shape[1],))
    correct = ((s > thr) == y).mean(axis=1)
    w = np.asarray(weights, dtype=np.float64)
    return auc, (w @ correct) / w.sum(axis=1)


Pair = tuple[Scores, Scores]  # (fine-tune, pretrain) of one seed, on the same test images


def block_differences(pairs: Sequence[Pair], res: Resamples) -> dict[str, np.ndarray]:
    """Per replicate, the mean over its drawn seeds of fine-tune minus pretrain, by metric."""
    per_seed = {"test_auc": [], "test_acc_thr": []}
    for fine, pre in pairs:
        (fa, fc), (pa, pc) = stage_metrics(fine, res.weights), stage_metrics(pre, res.weights)
        per_seed["test_auc"].append(fa - pa)
        per_seed["test_acc_thr"].append(fc - pc)
    return {k: np.take_along_axis(np.stack(v, axis=1), res.seeds, axis=1).mean(axis=1) for k, v in per_seed.items()}


@dataclass(frozen=True)
class Difference:
    """Fine-tune minus pretrain in one test metric: the value and its 95% interval."""

    key: str  # "test_auc" | "test_acc_thr"
    diff: float
    lo: float
    hi: float

    @property
    def verdict(self) -> str:
        return verdict(self.lo, self.hi)

    def numbers(self) -> str:
        """'+0.004 [-0.010, +0.021]'."""
        if math.isnan(self.diff):
            return "-"
        return f"{self.diff:+{INTERVAL_FMT}} [{self.lo:+{INTERVAL_FMT}}, {self.hi:+{INTERVAL_FMT}}]"


@dataclass(frozen=True)
class Comparison:
    """Fine-tune minus pretrain over `seeds` pairs scored on the same `images` test images."""

    auc: Difference
    acc: Difference
    seeds: int
    images: int

    def text(self, over: str = "") -> str:
        """'ΔAUC +0.004 [-0.010, +0.021]{over}: no clear difference; ΔACC (val thr) ...'."""
        return "; ".join(f"{WHAT[d.key]} {d.numbers()}{over if d is self.auc else ''}: {d.verdict}"
                         for d in (self.auc, self.acc))


def compare(pairs: Sequence[Pair], n: int = RESAMPLES, seed: int = SEED) -> Comparison:
    """The paired comparison of (fine-tune, pretrain) score pairs of one test set (module doc)."""
    if not pairs:
        raise ValueError("no pairs to compare")
    labels = pairs[0][0].test_labels
    for fine, pre in pairs:
        for s in (fine, pre):
            if not run_results.same_test_set(s, pairs[0][0]):
                raise ValueError("the pairs are not scored on the same test images")
    k, images = len(pairs), len(labels)
    point = block_differences(pairs, Resamples(np.arange(k)[None, :], np.ones((1, images))))
    blocks = [block_differences(pairs, res) for res in resample_blocks(labels, k, n, seed)]
    out = {}
    for key, value in point.items():
        reps = np.concatenate([b[key] for b in blocks])
        iv = uncertainty.percentile_interval(reps)
        lo, hi = (iv.lo, iv.hi) if iv is not None else (math.nan, math.nan)
        out[key] = Difference(key, float(value[0]), lo, hi)
    return Comparison(out["test_auc"], out["test_acc_thr"], k, images)


# ----------------------------------------------------------------------------- runs and seed groups


@dataclass(frozen=True)
class RunGain:
    """One fine-tune against its own pretrain; `comparison` is None when a side's scores were not
    recorded (`stages` says which)."""

    run_id: str
    seed: int
    status: str
    stages: run_results.StageScores
    comparison: Comparison | None

    @property
    def missing(self) -> str:
        return "; ".join(f"{s.name}: {s.missing}" for s in self.stages.sides if s.missing) \
            or "the two stages were scored on different test images"

    @property
    def epochs(self) -> str:
        """'75 -> 4': the pretrain's epoch, then the fine-tune's."""
        f = self.stages.finetune
        return f"{self.stages.pretrain.epoch or '-'} -> {(f.epoch if f else None) or '-'}"

    def line(self, short: bool = False) -> str:
        """One line for `runs show`; `short` for the run's page: 'AUCM@4 vs CE b0@75: ΔAUC ...'."""
        p, f = self.stages.pretrain, self.stages.finetune
        fe, pe = (f.epoch if f else None) or "-", p.epoch or "-"
        if short:
            head = f"AUCM@{fe} vs " + (f"CE {p.run_id}@{pe}" if p.epoch else "its CE pretrain")
        else:
            head = f"{FINETUNE} epoch {fe} vs {PRETRAIN} {p.run_id} epoch {pe}"
        if self.comparison is None:  # the page stays short; `runs show` says which scores are missing
            return f"{head}: not recorded" + ("" if short else f" ({self.missing})")
        return f"{head}{'' if short else f', {self.comparison.images} test images'}: {self.comparison.text()}"


def of_record(record: runs.RunRecord, n: int = RESAMPLES) -> RunGain | None:
    """A fine-tune's gain over its pretrain (None for a pretrain)."""
    if record.info.stage != "finetune":
        return None
    stages = run_results.stage_scores(record)
    comparison = None
    if stages.paired:
        comparison = compare([(stages.finetune.scores, stages.pretrain.scores)], n)
    i = record.info
    return RunGain(i.run_id, i.seed, i.status, stages, comparison)


@dataclass(frozen=True)
class GroupGain:
    """A fine-tune seed group against its pretrains: every member's own comparison and the one
    pooled over its finished members whose two stages were both recorded."""

    group: SeedGroup
    members: tuple[RunGain, ...]
    pooled: Comparison | None

    @property
    def pooled_ids(self) -> list[str]:
        done = {m.run_id for m in self.group.finished}
        return [m.run_id for m in self.members if m.comparison is not None and m.run_id in done]

    def line(self) -> str:
        """'AUCM fine-tune vs CE pretrain: ΔAUC +0.004 [-0.010, +0.021] over 3 seeds: ...'."""
        head = f"{FINETUNE} vs {PRETRAIN}"
        if self.pooled is None:
            return f"{head}: not recorded (no finished fine-tune with both stages' test scores)"
        k = self.pooled.seeds
        return f"{head}: {self.pooled.text(f' over {k} seed' + ('s' if k != 1 else ''))}"

    def markdown(self) -> list[str]:
        """The line and a per-seed table: what `damtui results` prints under a dataset."""
        left = [m for m in self.members if m.run_id not in self.pooled_ids]
        lines = [f"**Does DAM help?** {self.line()}", "",
                 f"Seed group `{self.group.preset}`; each fine-tune at its best validation epoch inside the fine-tune"
                 " stage against its own pretrain at that pretrain's best validation epoch, same test images;"
                 " 95% paired bootstrap over the test images (and over the seeds when pooled)"
                 + (f"; not pooled: {', '.join(f'`{m.run_id}` ({m.status})' for m in left)}" if left else "") + ".",
                 "", "| seed | pretrain -> fine-tune | epochs | ΔAUC [95%] | ΔACC (val thr) [95%] |", "|---|---|---|---|---|"]
        for m in self.members:
            c = m.comparison
            cells = [c.auc.numbers(), c.acc.numbers()] if c else ["not recorded", "not recorded"]
            lines.append(f"| {m.seed} | `{m.stages.pretrain.run_id}` -> `{m.run_id}` | {m.epochs} | " + " | ".join(cells) + " |")
        return lines + [""]


def of_group(group: SeedGroup, n: int = RESAMPLES) -> GroupGain:
    members = []
    for info in group.members:
        try:
            gain = of_record(runs.load_run(info.path), n)
        except DamtuiError:  # removed or damaged since it was listed: it has no comparison
            gain = None
        if gain is not None:
            members.append(gain)
    done = {m.run_id for m in group.finished}
    pairs = [(m.stages.finetune.scores, m.stages.pretrain.scores) for m in members
             if m.comparison is not None and m.run_id in done]
    try:
        pooled = compare(pairs, n) if pairs else None
    except ValueError:  # members scored on different test sets (a dataset file changed between them)
        pooled = None
    return GroupGain(group, tuple(members), pooled)


def by_dataset(infos: Sequence[runs.RunInfo], n: int = RESAMPLES) -> dict[str, GroupGain]:
    """Per dataset with a fine-tune: its fine-tune seed group with the best mean validation AUC
    (leaderboard.best_group: never test) against its pretrains."""
    out = {}
    fine = [g for g in group_runs(infos) if g.stage == "finetune"]
    for dataset in dict.fromkeys(g.dataset for g in fine):
        best = best_group(g for g in fine if g.dataset == dataset)
        if best is not None:
            out[dataset] = of_group(best, n)
    return out


def markdown_lines(gains: dict[str, GroupGain], dataset: str) -> list[str]:
    """A dataset's block for `damtui results`; a dataset without a fine-tune says so."""
    gain = gains.get(dataset)
    if gain is None:
        return [f"**Does DAM help?** {FINETUNE} vs {PRETRAIN}: no finished fine-tune of {dataset} yet.", ""]
    return gain.markdown()
