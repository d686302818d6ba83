"""Does DAM help? A fine-tune (AUCM + PESG) against the pretrain (cross-entropy) it started from,
each at its own best VALIDATION epoch, on the same test images: the paired difference in test AUC
and in test ACC at each stage's validation threshold, per seed and pooled over a seed group.
Validation decides which epochs meet; test only measures.

The 95% interval is a bootstrap that resamples what would change if the experiment were repeated:

- images: a replicate draws one resample of the test set (binary: positives and negatives apart,
  so each keeps its count, as the per-run intervals do; multi-label: whole images) and weighs
  BOTH stages' scores of an image alike (paired). The resample is shared by every seed of the
  replicate, because every seed is scored on the same test images: resampling them per seed
  would count 156 images as 3 x 156 and shrink the images' share of the interval by about sqrt(3);
- seeds: the k seeds are drawn k times with replacement (a seed stands for one training run).
  With k = 1 this is the plain paired bootstrap of one fine-tune against its pretrain.

A replicate's value is the mean over its drawn seeds of (fine-tune - pretrain) on its resampled
images; the interval is the 2.5th-97.5th percentile over RESAMPLES replicates (fixed seed: the
same runs always give the same interval; images and seeds come from two streams, so a seed's own
interval is the same alone and inside its group). Resampling both the seeds and the images of a
crossed design counts their interaction twice, so the interval errs wide (Owen 2007); with 3
seeds the seed draws are coarse (10 distinct multisets) and understate the seed spread by (k-1)/k.

Verdict: "fine-tune better" or "pretrain better" when the interval leaves out 0, else "no clear
difference". The computation is pure numpy and never builds a resampled array: a replicate's AUC
is a dot product of the positives' copy counts with running sums of the sorted negatives' copy
counts (one ChestMNIST-sized pair, 22k images x 14 labels x 1000 replicates: 7.6 s on the busy
2-core box, 2026-12-04). of_record/of_group/by_dataset read the scores via damtui.store.results.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from damtui.analysis import uncertainty
from damtui.analysis.groups import SeedGroup, group_runs
from damtui.analysis.leaderboard import best_group
from damtui.errors import DamtuiError
from damtui.records import INTERVAL_FMT
from damtui.store import results as run_results, runs
from damtui.store.scores import Scores

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


def _columns(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, s = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    return y.reshape(len(y), -1) > 0.5, s.reshape(len(s), -1)


def _streams(seed: int) -> tuple[np.random.Generator, np.random.Generator]:
    """Images and seeds drawn from two streams: a replicate's images do not depend on how many
    seeds are pooled, so a seed's own interval is the same alone and inside its group."""
    images, seeds = np.random.SeedSequence(seed).spawn(2)
    return np.random.default_rng(images), np.random.default_rng(seeds)


def image_weights(labels: np.ndarray, n: int = RESAMPLES, seed: int = SEED) -> Iterator[np.ndarray]:
    """The copies of each test image (rows, N) that `n` replicates draw, in blocks of at most
    BLOCK_CELLS (the blocks depend on the image count only: the same inputs, the same draws)."""
    y, _ = _columns(labels, labels)
    rng, _ = _streams(seed)
    strata = [np.flatnonzero(c) for c in (y[:, 0], ~y[:, 0])] if y.shape[1] == 1 else [np.arange(len(y))]
    step = max(1, BLOCK_CELLS // max(1, len(y)))
    for start in range(0, n, step):
        rows = min(step, n - start)
        weights = np.zeros((rows, len(y)), np.int32)  # a stratum's copies sum to its size: int32 holds them
        for idx in strata:
            if len(idx):
                weights[:, idx] = uncertainty.resample_counts(np.ones(len(idx), np.int64), rows, rng)
        yield weights


def seed_draws(k: int, n: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The k seeds each of `n` replicates draws with replacement (n, k), as column indices."""
    _, rng = _streams(seed)
    return rng.integers(0, k, size=(n, k))


@dataclass(frozen=True)
class Label:
    """One label of one stage's test scores, ranked once for every replicate: the negatives in
    score order and, per positive, how many of them lie strictly below it (lo) and at or below (hi)."""

    positives: np.ndarray
    negatives: np.ndarray  # sorted by score
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, scores: np.ndarray) -> Label:
        y = np.asarray(labels).reshape(-1) > 0.5
        s = np.asarray(scores, dtype=np.float64).reshape(-1)
        pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
        neg = neg[np.argsort(s[neg], kind="mergesort")]
        return cls(pos, neg, np.searchsorted(s[neg], s[pos], "left"), np.searchsorted(s[neg], s[pos], "right"))

    def auc(self, weights: np.ndarray) -> np.ndarray:
        """AUC with image i counted weights[r, i] times, for each row r: P(positive above
        negative) + P(tie) / 2, from the running weight of the sorted negatives."""
        w = np.asarray(weights)
        below = np.zeros((len(w), len(self.negatives) + 1), w.dtype)  # weight of the negatives below
        np.cumsum(np.take(w, self.negatives, axis=1), axis=1, dtype=w.dtype, out=below[:, 1:])
        wp = np.take(w, self.positives, axis=1).astype(np.float64)
        lo_plus_hi = (np.take(below, self.lo, axis=1) + np.take(below, self.hi, axis=1)).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.einsum("rp,rp->r", wp, lo_plus_hi) / (2.0 * wp.sum(axis=1) * below[:, -1])


def weighted_auc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUC of one binary label under each row of image copy counts (R, N)."""
    return Label.of(labels, scores).auc(weights)


@dataclass(frozen=True)
class Stage:
    """One stage's test scores prepared for the replicates: its ranked labels (those with both
    classes) and per image the share of labels it gets right at the stage's validation threshold."""

    labels: tuple[Label, ...]
    correct: np.ndarray

    @classmethod
    def of(cls, scores: Scores) -> Stage:
        y, s = _columns(scores.test_labels, scores.test_scores)
        thr = np.broadcast_to(np.asarray(scores.val_threshold, dtype=np.float64).reshape(-1), (s.shape[1],))
        return cls(tuple(Label.of(y[:, j], s[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)),
                   ((s > thr) == y).mean(axis=1))

    def metrics(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Test AUC (multi-label: mean over the labels a replicate has both classes of) and test
        ACC at the validation threshold, under each row of image weights."""
        w = np.asarray(weights)
        if self.labels:
            stacked = np.stack([label.auc(w) for label in self.labels])
            valid = ~np.isnan(stacked)
            with np.errstate(invalid="ignore", divide="ignore"):
                auc = np.where(valid, stacked, 0.0).sum(axis=0) / valid.sum(axis=0)
        else:
            auc = np.full(len(w), np.nan)
        return auc, (w @ self.correct) / w.sum(axis=1)


Pair = tuple[Scores, Scores]  # (fine-tune, pretrain) of one seed, on the same test images


def seed_differences(stages: Sequence[tuple[Stage, Stage]], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Fine-tune minus pretrain of each seed (column) under each row of image weights (R, k)."""
    per_seed: dict[str, list[np.ndarray]] = {"test_auc": [], "test_acc_thr": []}
    for fine, pre in stages:
        (fa, fc), (pa, pc) = fine.metrics(weights), pre.metrics(weights)
        per_seed["test_auc"].append(fa - pa)
        per_seed["test_acc_thr"].append(fc - pc)
    return {k: np.stack(v, axis=1) for k, v in per_seed.items()}


def pooled_values(per_seed: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Each replicate's mean over the seeds it drew (draws: (R, k) column indices)."""
    return np.take_along_axis(per_seed, draws, axis=1).mean(axis=1)


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


@dataclass(frozen=True)
class Replicates:
    """Seeds' (fine-tune - pretrain) on the test set (`point`, (k,) by metric) and under every
    replicate's image resample (`values`, (R, k)): one pass serves each seed and their pool."""

    point: dict[str, np.ndarray]
    values: dict[str, np.ndarray]
    images: int

    def comparison(self, columns: Sequence[int], seed: int = SEED) -> Comparison:
        """Pooled over the seeds in `columns` (drawn with replacement per replicate); one column:
        that seed's own paired bootstrap."""
        cols = np.asarray(columns, dtype=np.int64)
        draws = cols[seed_draws(len(cols), len(next(iter(self.values.values()))), seed)]
        out = {}
        for key in self.point:
            iv = uncertainty.percentile_interval(pooled_values(self.values[key], draws))
            lo, hi = (iv.lo, iv.hi) if iv is not None else (math.nan, math.nan)
            out[key] = Difference(key, float(self.point[key][cols].mean()), lo, hi)
        return Comparison(out["test_auc"], out["test_acc_thr"], len(cols), self.images)


def replicates(pairs: Sequence[Pair], n: int = RESAMPLES, seed: int = SEED) -> Replicates:
    """The bootstrap of (fine-tune, pretrain) score pairs of one test set (module doc)."""
    if not pairs:
        raise ValueError("no pairs to compare")
    first = pairs[0][0]
    if not all(run_results.same_test_set(s, first) for pair in pairs for s in pair):
        raise ValueError("the pairs are not scored on the same test images")
    stages = [(Stage.of(fine), Stage.of(pre)) for fine, pre in pairs]
    point = seed_differences(stages, np.ones((1, len(first.test_labels))))
    blocks = [seed_differences(stages, w) for w in image_weights(first.test_labels, n, seed)]
    return Replicates({k: v[0] for k, v in point.items()},
                      {k: np.concatenate([b[k] for b in blocks]) for k in point}, len(first.test_labels))


def compare(pairs: Sequence[Pair], n: int = RESAMPLES, seed: int = SEED) -> Comparison:
    """Fine-tune minus pretrain pooled over all `pairs` (one pair: its paired bootstrap)."""
    return replicates(pairs, n, seed).comparison(range(len(pairs)), seed)


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
    """A fine-tune's gain over its pretrain (None for a pretrain); `n` 0: the stages only."""
    if record.info.stage != "finetune":
        return None
    stages = run_results.stage_scores(record)
    comparison = None
    if stages.paired and n:
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
    """Every member against its pretrain and the pool of the finished ones, from one bootstrap
    pass (a member's interval is the one `of_record` gives it alone: the same image draws)."""
    members = []
    for info in group.members:
        try:
            gain = of_record(runs.load_run(info.path), n=0)
        except DamtuiError:  # removed or damaged since it was listed: it has no comparison
            gain = None
        if gain is not None:
            members.append(gain)
    recorded = [m for m in members if m.stages.paired]
    try:
        reps = replicates([(m.stages.finetune.scores, m.stages.pretrain.scores) for m in recorded], n) if recorded else None
    except ValueError:  # members scored on different test sets (a dataset file changed between them)
        reps = None
    if reps is None:
        return GroupGain(group, tuple(members), None)
    column = {m.run_id: j for j, m in enumerate(recorded)}
    members = [replace(m, comparison=reps.comparison([column[m.run_id]])) if m.run_id in column else m for m in members]
    done = [column[m.run_id] for m in recorded if m.run_id in {f.run_id for f in group.finished}]
    return GroupGain(group, tuple(members), reps.comparison(done) if done else None)


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
