"""A run's result with its uncertainty: the selected epoch's intervals, the scores behind them
(a fine-tune whose answer is its pretrain's epoch answers with the pretrain's scores.npz), and
the paired difference of two runs scored on the same test images, and a fine-tune's scores beside
those of the pretrain it started from (each at its own best validation epoch: what "does DAM
help" compares). Shared by the recorder (which stores the intervals in summary.json), the CLI,
compare and the app; files are read only through damtui.store.files; no Textual.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from damtui.analysis import uncertainty
from damtui.errors import DamtuiError
from damtui.records import EpochRow, RunSummary, Selected, best_index
from damtui.store.files import SOURCE_SCORES, read_summary
from damtui.store.runs import RunRecord, read_metrics
from damtui.store.scores import Scores, load_scores


def intervals_from(selected: Selected | None, scores: Scores | None) -> Selected | None:
    """`selected` with the test intervals of `scores` when they are that epoch's (else as is)."""
    if selected is None or scores is None or scores.epoch != selected.epoch:
        return selected
    return replace(selected, intervals=uncertainty.score_intervals(scores.test_labels, scores.test_scores,
                                                                   scores.val_threshold))


def with_intervals(summary: RunSummary, scores: Scores | None) -> RunSummary:
    """A summary just made from the rows, its best epoch given the intervals of its own scores.npz;
    an answer from the pretrain keeps the intervals the pretrain's summary recorded."""
    best = intervals_from(summary.best, scores)
    if best is summary.best:
        return summary
    answer = best if summary.answer is summary.best else summary.answer
    return replace(summary, best=best, answer=answer)


def source_path(record: RunRecord) -> Path | None:
    """The pretrain a fine-tune started from: beside it in the runs dir, else where it was."""
    name = record.info.from_run
    if not name:
        return None
    sibling = record.info.path.parent / name
    if sibling.is_dir():
        return sibling
    recorded = record.runtime.get("from_run_path")
    return Path(recorded) if recorded and Path(recorded).is_dir() else None


def result_scores(record: RunRecord) -> Scores | None:
    """The scores of the run's result epoch; None when they were not recorded."""
    r = record.info.result
    if r is None:
        return None
    path = record.info.path if r.stage == record.info.stage else source_path(record)
    scores = load_scores(path) if path is not None else None
    return scores if scores is not None and scores.epoch == r.epoch else None


def _recorded(selected: Selected | None, summary: RunSummary | None) -> Selected | None:
    """`selected` with the intervals summary.json holds for the same stage and epoch."""
    if selected is None or selected.intervals or summary is None:
        return selected
    for s in (summary.answer, summary.best):
        if s is not None and s.intervals and (s.stage, s.epoch) == (selected.stage, selected.epoch):
            return replace(selected, intervals=s.intervals)
    return selected


def result(record: RunRecord) -> Selected | None:
    """The run's result (two-stage answer or best) with intervals: summary.json's, else computed
    from the saved scores (a run still training), else none (a run from before scores.npz)."""
    r = _recorded(record.info.result, read_summary(record.info.path))
    return r if r is None or r.intervals else intervals_from(r, result_scores(record))


def best(record: RunRecord) -> Selected | None:
    """This stage's own best epoch with its intervals."""
    b = _recorded(record.info.best, read_summary(record.info.path))
    return b if b is None or b.intervals else intervals_from(b, load_scores(record.info.path))


def same_test_set(a: Scores, b: Scores) -> bool:
    return a.test_labels.shape == b.test_labels.shape and bool((a.test_labels == b.test_labels).all())


def paired(a: RunRecord, b: RunRecord) -> uncertainty.PairedDifference | None:
    """Test AUC of run a minus run b on the same images (DeLong); None unless both runs saved
    the scores of their results and those are of one dataset's test set."""
    if a.info.dataset != b.info.dataset:
        return None
    sa, sb = result_scores(a), result_scores(b)
    if sa is None or sb is None or not same_test_set(sa, sb):
        return None
    return uncertainty.paired_difference(sa.test_scores, sb.test_scores, sa.test_labels)


def pretrain_rows(source: Path, epoch: int | None = None) -> list[EpochRow]:
    """A fine-tune's source epochs up to the checkpoint it started from (`epoch`; else the
    source's best on validation, the epoch best.pt holds), for charts that draw pretrain and
    fine-tune as one curve. [] when the source is gone or has no rows."""
    try:
        rows, _ = read_metrics(Path(source))
    except (OSError, DamtuiError):
        return []
    if epoch is None:
        i = best_index(rows)
        epoch = rows[i].epoch if i is not None else None
    return sorted((r for r in rows if epoch is not None and r.epoch <= epoch), key=lambda r: r.epoch)


def source_rows(record: RunRecord) -> list[EpochRow]:
    """`pretrain_rows` of a fine-tune's source at the epoch it started from (its runtime's
    from_run_summary); [] for a pretrain or a source that is gone."""
    path = source_path(record)
    if path is None or record.info.stage != "finetune":
        return []
    start = Selected.from_json(record.runtime.get("from_run_summary"))  # its best when the fine-tune began
    return pretrain_rows(path, start.epoch if start is not None else None)


# ----------------------------------------------------------------------------- the two stages


@dataclass(frozen=True)
class StageSide:
    """One stage's test scores at its best validation epoch; `missing` says why `scores` is None."""

    stage: str
    run_id: str
    epoch: int | None
    scores: Scores | None
    missing: str = ""  # the reason, of this stage's run ("its test scores of epoch 4 were not saved ...")

    @property
    def name(self) -> str:
        return f"{'fine-tune' if self.stage == 'finetune' else self.stage} {self.run_id}"


@dataclass(frozen=True)
class StageScores:
    """A run's stages side by side: a pretrain alone, or a fine-tune and the pretrain it started from."""

    pretrain: StageSide
    finetune: StageSide | None = None

    @property
    def sides(self) -> list[StageSide]:
        return [s for s in (self.pretrain, self.finetune) if s is not None]

    @property
    def paired(self) -> bool:
        """Both stages' test scores are here and of the same test images."""
        f, p = self.finetune, self.pretrain
        return f is not None and f.scores is not None and p.scores is not None and same_test_set(f.scores, p.scores)


def _own_side(record: RunRecord) -> StageSide:
    info = record.info
    if info.best is None:
        return StageSide(info.stage, info.run_id, None, None, "no epoch finished yet")
    scores = load_scores(info.path)
    if scores is None or scores.epoch != info.best.epoch:
        return StageSide(info.stage, info.run_id, info.best.epoch, None,
                         f"its test scores of epoch {info.best.epoch} were not saved (trained before damtui kept"
                         " scores.npz)")
    return StageSide(info.stage, info.run_id, info.best.epoch, scores)


def _source_side(record: RunRecord) -> StageSide:
    """The pretrain's scores at the epoch the fine-tune started from: the copy the fine-tune took
    when it started (source_scores.npz), else the pretrain's own folder while it still holds them."""
    name = Path(record.info.from_run or "?").name  # the runtime may hold a path
    saved = record.runtime.get("from_run_summary")
    try:
        best = RunSummary.from_json(saved).best if saved else None
    except (ValueError, TypeError):
        best = None
    if best is None:
        return StageSide("pretrain", name, None, None, "the fine-tune's config.json does not say its best epoch")
    for scores in (load_scores(record.info.path, SOURCE_SCORES), _source_scores(record)):
        if scores is not None and scores.epoch == best.epoch:
            return StageSide("pretrain", name, best.epoch, scores)
    return StageSide("pretrain", name, best.epoch, None,
                     f"its test scores of epoch {best.epoch} are not kept: the fine-tune predates"
                     f" {SOURCE_SCORES} and the pretrain's folder has none of that epoch")


def _source_scores(record: RunRecord) -> Scores | None:
    path = source_path(record)
    return load_scores(path) if path is not None else None


def stage_scores(record: RunRecord) -> StageScores:
    """A pretrain's test scores at its best epoch; for a fine-tune also its own at its best epoch
    inside the fine-tune stage (its scores.npz), the pretrain's at the epoch it started from."""
    if record.info.stage != "finetune":
        return StageScores(_own_side(record))
    return StageScores(_source_side(record), _own_side(record))
