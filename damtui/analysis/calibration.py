"""How far a model's scores are from probabilities: the reliability diagram (per score bin, the
mean score against the share of label 1 among those images) and the expected calibration error.

Why it matters here: ACC at 0.5 reads a score as a probability. Cross-entropy trains scores
towards that; AUCM only orders positives above negatives, so after fine-tuning the scores can
slide as a block (every image above 0.5, say) with the ranking, and the AUC, intact. The diagram
shows that slide, and where the threshold chosen on validation sits on it. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from damtui.records import Selected
from damtui.store.results import StageScores

BINS = 10
LOSS = {"pretrain": "CE", "finetune": "AUCM"}  # config.py: each stage has its one loss


@dataclass(frozen=True)
class Bin:
    """Scores in [lo, hi) (the last bin includes 1): how many, their mean, the share of label 1."""

    lo: float
    hi: float
    count: int
    mean_score: float  # NaN when empty
    positive_rate: float  # NaN when empty


@dataclass(frozen=True)
class Reliability:
    """The reliability diagram of one set of scores, with the summary numbers printed beside it."""

    bins: tuple[Bin, ...]
    ece: float  # sum over bins of (count / n) * |mean score - positive rate|
    n: int  # scores (multi-label: image-label pairs, pooled)
    positive_share: float  # share of label 1 among all n
    above_half: float  # share of scores > 0.5: what ACC at 0.5 calls positive
    multilabel: bool = False  # n counts image-label pairs

    @property
    def filled(self) -> list[Bin]:
        return [b for b in self.bins if b.count]


def reliability(labels: np.ndarray, scores: np.ndarray, bins: int = BINS) -> Reliability:
    """Equal-width bins over [0, 1]; a multi-label set pools its image-label pairs (as its pooled
    ROC does). Scores outside [0, 1] fall into the end bins."""
    y = (np.asarray(labels).ravel() > 0.5).astype(np.float64)
    s = np.asarray(scores, dtype=np.float64).ravel()
    if len(y) != len(s):
        raise ValueError(f"{len(y)} labels for {len(s)} scores")
    n = len(s)
    which = np.clip((s * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    sums = np.bincount(which, weights=s, minlength=bins)
    positives = np.bincount(which, weights=y, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean, rate = sums / counts, positives / counts
    out = tuple(Bin(k / bins, (k + 1) / bins, int(counts[k]), float(mean[k]), float(rate[k])) for k in range(bins))
    filled = counts > 0
    ece = float(np.sum(counts[filled] / n * np.abs(mean[filled] - rate[filled]))) if n else float("nan")
    multilabel = np.ndim(labels) == 2 and np.shape(labels)[1] > 1
    return Reliability(out, ece, n, float(y.mean()) if n else float("nan"),
                       float((s > 0.5).mean()) if n else float("nan"), multilabel)


# ----------------------------------------------------------------------------- a run's stages


@dataclass(frozen=True)
class Side:
    """One stage's calibration as the curves view shows it; `reliability` None: not recorded."""

    name: str  # "pretrain b0", "fine-tune b0f"
    stage: str
    epoch: int | None  # the stage's best validation epoch
    answer: bool  # a fine-tune's two-stage answer is this stage's epoch
    reliability: Reliability | None
    threshold: float | None  # the validation-chosen threshold (None: per label, or not recorded)
    missing: str = ""

    @property
    def title(self) -> str:
        """'fine-tune b0f@4 (answer)'."""
        return f"{self.name}@{self.epoch if self.epoch is not None else '-'}" + (" (answer)" if self.answer else "")

    @property
    def short(self) -> str:
        """'AUCM@4*' (the stage's loss; * the answer): a legend's width."""
        return f"{LOSS.get(self.stage, self.stage)}@{self.epoch if self.epoch is not None else '-'}" + ("*" if self.answer else "")


def of_stages(stages: StageScores, answer: Selected | None = None, bins: int = BINS) -> list[Side]:
    """Pretrain and (for a fine-tune) fine-tune side by side, each at its best validation epoch."""
    out = []
    for s in stages.sides:
        is_answer = stages.finetune is not None and answer is not None and (answer.stage, answer.epoch) == (s.stage, s.epoch)
        if s.scores is None:
            out.append(Side(s.name, s.stage, s.epoch, is_answer, None, None, s.missing))
            continue
        thr = np.asarray(s.scores.val_threshold, dtype=np.float64).reshape(-1)
        out.append(Side(s.name, s.stage, s.epoch, is_answer, reliability(s.scores.test_labels, s.scores.test_scores, bins),
                        float(thr[0]) if thr.size == 1 else None))
    return out


def lines(sides: list[Side]) -> list[str]:
    """The text table of `damtui runs curves`: per bin and stage the count, the mean score and
    the share of label 1; then ECE, the validation threshold and the share of scores above 0.5."""
    col = max(22, *(len(s.title) + 2 for s in sides))
    out = ["calibration of the test scores (bins of the score; pred = mean score, obs = share of label 1):",
           " " * 14 + "".join(f"{s.title:<{col}}" for s in sides),
           " " * 14 + "".join(f"{'n':>5} {'pred':>6} {'obs':>6}{'':<{col - 19}}" for _ in sides)]
    shown = [s.reliability for s in sides if s.reliability is not None]
    if not shown:
        return [out[0], *(f"  {s.title}: not recorded ({s.missing})" for s in sides)]
    for k, b in enumerate(shown[0].bins):
        cells = []
        for s in sides:
            r = s.reliability
            if r is None:
                cells.append(f"{'-':>5}{'':<{col - 5}}")
                continue
            c = r.bins[k]
            pred, obs = (f"{c.mean_score:.3f}", f"{c.positive_rate:.3f}") if c.count else ("-", "-")
            cells.append(f"{c.count:>5} {pred:>6} {obs:>6}{'':<{col - 19}}")
        out.append(f"  {b.lo:.1f}-{b.hi:.1f}".ljust(14) + "".join(cells))

    def row(name: str, value: Callable[[Side], str]) -> str:
        return f"  {name}".ljust(14) + "".join(f"{value(s):>12}{'':<{col - 12}}" for s in sides)

    out.append(row("ECE", lambda s: f"{s.reliability.ece:.3f}" if s.reliability else "-"))
    out.append(row("val thr", lambda s: f"{s.threshold:.3f}" if s.threshold is not None else
                   ("per label" if s.reliability else "-")))
    out.append(row("above 0.5", lambda s: f"{s.reliability.above_half:.1%}" if s.reliability else "-"))
    first = shown[0]
    out.append(f"  label 1: {first.positive_share:.1%} of {first.n} test "
               f"{'image-label pairs' if first.multilabel else 'images'}; ACC at 0.5 calls 'above 0.5' positive")
    out += [f"  {s.title}: not recorded ({s.missing})" for s in sides if s.reliability is None]
    return [line.rstrip() for line in out]
