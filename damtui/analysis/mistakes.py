"""A run's mistakes: the test images its answer checkpoint gets wrong at the validation threshold.

False positives (label 0, score above the threshold) come most confident first, i.e. highest score
first; false negatives (label 1, score at or below it) lowest score first. "Above" is `score >
threshold`, the rule of damtui.analysis.metrics.accuracy, so the mistakes are exactly what `test_acc_thr`
counts as wrong. Multi-label runs are read one label at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from damtui.analysis import metrics
from damtui.store import results as run_results, runs
from damtui.errors import DamtuiError

COMPUTED_NOW = "scores computed now: this run has no saved scores"


@dataclass(frozen=True)
class Mistake:
    index: int  # position in the test split
    score: float  # the model's class-1 probability for this label
    label: int  # the true label


@dataclass(frozen=True)
class Mistakes:
    label: int  # label column (0 for binary)
    threshold: float
    n_test: int
    false_positives: list[Mistake]
    false_negatives: list[Mistake]

    @property
    def wrong(self) -> int:
        return len(self.false_positives) + len(self.false_negatives)


@dataclass(frozen=True)
class AnswerScores:
    """Test scores of the answer checkpoint and the threshold chosen on validation."""

    run_dir: Path  # the run whose best.pt is the answer (a fine-tune's pretrain, sometimes)
    stage: str
    epoch: int | None
    test_scores: np.ndarray  # (N, L) float
    test_labels: np.ndarray  # (N, L) int
    thresholds: list[float]  # one per label
    note: str  # where the scores come from, to show the user


def _as_2d(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(len(a), -1)


def find_mistakes(scores: np.ndarray, labels: np.ndarray, threshold: float, label: int = 0) -> Mistakes:
    """The misclassified samples of one label column at `threshold`, most confident first."""
    s, y = _as_2d(scores)[:, label].astype(np.float64), _as_2d(labels)[:, label]
    predicted = s > threshold
    fp = np.flatnonzero(predicted & (y == 0))
    fn = np.flatnonzero(~predicted & (y == 1))
    fp = fp[np.argsort(-s[fp], kind="stable")]
    fn = fn[np.argsort(s[fn], kind="stable")]
    return Mistakes(label, float(threshold), len(s),
                    [Mistake(int(i), float(s[i]), 0) for i in fp],
                    [Mistake(int(i), float(s[i]), 1) for i in fn])


def answer_run(run_dir: Path) -> tuple[Path, str, int | None]:
    """(run folder, stage, epoch) of the answer checkpoint: a fine-tune whose two-stage answer is
    its pretrain's best epoch points to the pretrain run's best.pt."""
    record = runs.load_run(run_dir)
    info = record.info
    if info.status == runs.DAMAGED:
        raise DamtuiError(info.message)  # what is damaged, and what to do
    chosen = info.result
    if chosen is None:
        raise DamtuiError(f"run {info.run_id} has no finished epoch yet; nothing to score")
    if info.stage == "finetune" and chosen.stage == "pretrain":
        src = run_results.source_path(record)
        if src is None or not runs.is_run_dir(src):
            raise DamtuiError(f"run {info.run_id}'s answer is its pretrain {info.from_run}, which is neither beside"
                              " it nor at its recorded path; copy that run beside it")
        return src, chosen.stage, chosen.epoch
    return Path(run_dir), chosen.stage, chosen.epoch


def answer_scores(run_dir: Path, data_root: Path | None = None, device: str = "auto") -> AnswerScores:
    """The answer checkpoint's test scores: saved ones when the run has them for that epoch,
    otherwise scored once now from best.pt (and the note says so)."""
    path, stage, epoch = answer_run(run_dir)
    saved = runs.load_scores(path)
    if saved is not None and (epoch is None or saved.epoch == epoch):
        labels = _as_2d(saved.test_labels)
        thr = np.broadcast_to(np.asarray(saved.val_threshold, dtype=np.float64), (labels.shape[1],))
        return AnswerScores(path, stage, epoch, _as_2d(saved.test_scores), labels,
                            [float(t) for t in thr], f"saved scores of {path.name}")
    if not (path / runs.BEST).is_file():
        raise DamtuiError(f"run {path.name} has no best.pt to score; it saved no checkpoint")
    from damtui.train.predict import predict_best

    pred = predict_best(path, data_root, device)
    (val_s, val_y), (test_s, test_y) = pred["val"], pred["test"]
    return AnswerScores(path, stage, epoch, _as_2d(test_s), _as_2d(test_y),
                        metrics.choose_threshold(val_y, val_s), COMPUTED_NOW)


def test_images(answer: AnswerScores, flag: str, data_root: Path | None = None) -> np.ndarray:
    """The test images the answer's scores are of; DamtuiError when the data root's test split is
    not the one they were scored on (another size), so no mistake points at a missing image."""
    from damtui.data import datasets

    images = datasets.load(flag, data_root).images["test"]
    if len(images) != len(answer.test_scores):
        raise DamtuiError(f"the saved scores are of {len(answer.test_scores)} test images, but {flag} in the data"
                          f" root has {len(images)}: give the --data-root the run was trained on")
    return images


def run_mistakes(answer: AnswerScores, label: int = 0) -> Mistakes:
    if not 0 <= label < answer.test_scores.shape[1]:
        raise DamtuiError(f"label {label} is out of range: this run has {answer.test_scores.shape[1]} label(s)")
    return find_mistakes(answer.test_scores, answer.test_labels, answer.thresholds[label], label)
