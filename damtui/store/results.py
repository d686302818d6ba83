"""A run's result with its uncertainty: the selected epoch's intervals, the scores behind them
(a fine-tune whose answer is its pretrain's epoch answers with the pretrain's scores.npz), and
the paired difference of two runs scored on the same test images. Shared by the recorder (which
stores the intervals in summary.json), the CLI, compare and the app; files are read only through
damtui.store.files; no Textual.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from damtui.analysis import uncertainty
from damtui.records import RunSummary, Selected
from damtui.store.files import read_summary
from damtui.store.scores import Scores, load_scores
from damtui.store.runs import RunRecord


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
