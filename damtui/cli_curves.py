"""`damtui runs curves RUN...`: the text form of the app's curves view (damtui.curves): the
result's test numbers with their 95% intervals, ROC/PR summary, the confusion matrices at 0.5
and at the validation threshold, per-label test AUCs for multi-label sets."""

from __future__ import annotations

from damtui import curves, run_results, runs
from damtui.records import METRICS


def print_curves(record: runs.RunRecord) -> None:
    info = record.info
    print(f"{info.run_id}  {info.dataset} {info.stage}")
    result = run_results.result(record)
    if result is not None:
        print(f"result at {result.stage} epoch {result.epoch}: "
              + ", ".join(f"{METRICS[k].label} {result.text(k)}" for k in ("test_auc", "test_acc", "test_acc_thr")))
    scores = run_results.result_scores(record)
    if scores is None:
        print("curves: not recorded (no scores.npz of the result epoch; runs trained before damtui saved scores)")
        return
    view = curves.of(scores, info.dataset)
    print(f"{view.roc_title}; {view.pr_title}")
    left, right = view.confusion_05.lines(), view.confusion_thr.lines()
    width = max(len(line) for line in left) + 4
    for a, b in zip(left, right):
        print(f"{a:<{width}}{b}")
    if view.per_label:
        print("test AUC per label:")
        w = max(len(n) for n, _ in view.per_label)
        for name, auc in view.per_label:
            print(f"  {name:<{w}} {METRICS['test_auc'].format(auc)}")
