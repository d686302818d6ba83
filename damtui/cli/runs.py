"""`damtui runs list | show | curves | compare | export | mistakes`, and the manage actions
(delete, rename, note, tag, log: damtui.cli.manage) on the same `runs` command.

`curves` is the text form of the app's curves view (damtui.analysis.curves): the result's test
numbers with their 95% intervals, ROC/PR summary, the confusion matrices at 0.5 and at the
validation threshold, per-label test AUCs for multi-label sets. `mistakes` prints the test
images the answer gets wrong, text first, pictures on a terminal, `--png FILE` a montage.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from damtui.cli import manage
from damtui.cli.datasets import class_of
from damtui.cli.printers import pictures_per_row, print_pictures, print_table, say
from damtui.errors import DamtuiError

if TYPE_CHECKING:
    from damtui.store.runs import RunRecord


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    r = sub.add_parser("runs", help="list, show, curves, compare, export, delete, rename, note, tag saved runs; a run's log and mistakes")
    r.add_argument("action", nargs="?", default="list", choices=["list", "show", "curves", "compare", "export", "mistakes", *manage.ACTIONS])
    r.add_argument("refs", nargs="*", metavar="RUN")
    manage.add_arguments(r)
    _add_mistakes_options(r)
    r.add_argument("--csv", help="export: write the comparison as CSV here")
    r.add_argument("--md", help="export: write the comparison as Markdown here")
    common(r)


def _add_mistakes_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mistakes (damtui runs mistakes RUN)")
    g.add_argument("--label", help="mistakes: the label of a multi-label run (number or name)")
    g.add_argument("--png", metavar="FILE", help="mistakes: also write a labelled PNG montage")
    g.add_argument("--device", default="auto", help="mistakes: device to score on when no scores are saved")
    g.add_argument("--limit", type=int, default=16, metavar="N", help="mistakes: pictures per kind (0: none)")



def cmd_runs(args: argparse.Namespace) -> int:
    from damtui.analysis import compare, dam_gain
    from damtui.records import METRICS, SELECTED_METRICS
    from damtui.store import results as run_results, runs
    from damtui.store.log import epoch_header, epoch_line

    root = runs.runs_dir(args.runs_dir)
    if args.action in manage.ACTIONS:
        return manage.run(args, root)
    if args.action == "list":
        infos, ignored = runs.list_runs(runs.existing_runs_dir(root))
        shown = [METRICS[k] for k in SELECTED_METRICS if k != "val_acc"]
        print_table(
            ["run", "status", "epochs", "stage@ep", *(m.label for m in shown), "name #tags"],
            [[r.run_id, r.status, f"{r.epochs_done}/{r.epochs_planned}",
              f"{r.result.stage}@{r.result.epoch}" if r.result else "-",
              *(m.format(r.result.value(m.key) if r.result else None) for m in shown), manage.labels(r)]
             for r in infos],
            title=f"{len(infos)} runs in {root}",
        )
        if ignored:
            say(f"ignored (not runs): {', '.join(ignored)}")
        return 0
    if not args.refs:
        raise DamtuiError(f"`damtui runs {args.action}` needs at least one RUN")
    if args.action == "mistakes":
        return cmd_runs_mistakes(args)
    records = [runs.load_run(runs.resolve_run(root, ref)) for ref in args.refs]
    if args.action == "show":
        for rec in records:
            i = rec.info
            say(f"{i.run_id}  {i.dataset} {i.stage} preset={i.preset} status={i.status} "
                  f"epochs={i.epochs_done}/{i.epochs_planned} from={i.from_run or '-'}")
            if i.message:
                say(f"message: {i.message}")
            manage.print_notes(i)
            say(epoch_header())
            best = i.best.epoch if i.best else None
            for row in rec.metrics:
                say(epoch_line(row, row.epoch == best))
            best = run_results.best(rec)
            say(f"best {best.describe()}" if best else "no epoch finished")
            if i.answer is not None and i.answer.stage != i.stage:
                say(f"two-stage answer: {run_results.result(rec).describe()}")
            gain = dam_gain.of_record(rec)
            if gain is not None:
                say(f"does DAM help: {gain.line()}")
        return 0
    if args.action == "curves":
        for rec in records:
            print_curves(rec)
        return 0
    if args.action == "compare":
        say(compare.to_markdown(records) + dam_markdown(records))
        return 0
    if not (args.csv or args.md):
        raise DamtuiError("`damtui runs export` needs --csv FILE and/or --md FILE")
    if args.csv:
        runs.write_text_file(Path(args.csv), compare.to_csv(records))
        say(f"wrote {args.csv}")
    if args.md:
        runs.write_text_file(Path(args.md), compare.to_markdown(records) + dam_markdown(records))
        say(f"wrote {args.md}")
    return 0


def dam_markdown(records: list[RunRecord]) -> str:
    """The compare/export Markdown's section on each fine-tune against its own pretrain ('' when
    no fine-tune is among the runs)."""
    from damtui.analysis import dam_gain

    gains = [g for g in (dam_gain.of_record(r) for r in records) if g is not None]
    if not gains:
        return ""
    return "\n".join(["", "## Does DAM help? Each fine-tune against its own pretrain", "",
                      "Each at its best validation epoch, on the same test images; 95% paired bootstrap.", "",
                      *(f"- `{g.run_id}`: {g.line()}" for g in gains), ""])


def print_curves(record: RunRecord) -> None:
    from damtui.analysis import calibration, curves
    from damtui.records import METRICS
    from damtui.store import results as run_results, runs

    info = record.info
    say(f"{info.run_id}  {info.dataset} {info.stage}")
    if info.status == runs.DAMAGED:
        raise DamtuiError(info.message)  # what is damaged, and what to do
    result = run_results.result(record)
    if result is not None:
        say(f"result at {result.stage} epoch {result.epoch}: "
              + ", ".join(f"{METRICS[k].label} {result.text(k)}" for k in ("test_auc", "test_acc", "test_acc_thr")))
    scores = run_results.result_scores(record)
    if scores is None:
        say("curves: not recorded (no scores.npz of the result epoch; runs trained before damtui saved scores)")
        return
    view = curves.of(scores, info.dataset)
    say(f"{view.roc_title}; {view.pr_title}")
    left, right = view.confusion_05.lines(), view.confusion_thr.lines()
    width = max(len(line) for line in left) + 4
    for a, b in zip(left, right):
        say(f"{a:<{width}}{b}")
    if view.per_label:
        say(f"test AUC per label (mean {METRICS['test_auc'].format(view.auc)}):")
        w = max(len(n) for n, _ in view.per_label)
        for name, auc in view.per_label:
            say(f"  {name:<{w}} {METRICS['test_auc'].format(auc)}")
    say("\n".join(calibration.lines(calibration.of_stages(run_results.stage_scores(record), result))))


def cmd_runs_mistakes(args: argparse.Namespace) -> int:
    from damtui.data import datasets
    from damtui.analysis import gallery, mistakes
    from damtui.store import runs

    if len(args.refs) != 1:
        raise DamtuiError("`damtui runs mistakes RUN` needs exactly one run")
    path = runs.resolve_run(runs.runs_dir(args.runs_dir), args.refs[0])
    record = runs.load_run(path)
    data_root = runs.data_root_of(path, args.data_root)
    s = datasets.spec(record.info.dataset)
    column = (class_of(s, args.label) or 0) if s.multilabel else 0
    answer = mistakes.answer_scores(path, data_root, args.device)
    found = mistakes.run_mistakes(answer, column)
    where = "" if answer.run_dir == path else f" of {answer.run_dir.name}"
    say(f"{path.name}: answer {answer.stage} epoch {answer.epoch}{where}; {answer.note}")
    what = f"label {column} ({dict(gallery.classes(s))[column]})" if s.multilabel else \
        f"class 1 ({s.label_names.get('1', '1')})"
    say(f"{what}: threshold {found.threshold:.4f} (chosen on val); {found.wrong} of"
          f" {found.n_test} test images wrong: {len(found.false_positives)} false positives,"
          f" {len(found.false_negatives)} false negatives")
    images = mistakes.test_images(answer, s.flag, data_root)
    groups = []
    for title, rows in (("false positives (label 0, score above the threshold), most confident first",
                         found.false_positives),
                        ("false negatives (label 1, score at or below it), most confident first",
                         found.false_negatives)):
        say(f"{title}:")
        say("  " + ("  ".join(f"#{m.index} {m.score:.3f}" for m in rows) or "none"))
        shown = [gallery.Sample(m.index, gallery.tile(images[m.index], s.is_3d),
                                f"#{m.index} {m.score:.3f}") for m in rows[:max(0, args.limit)]]
        if shown:
            print_pictures(shown, pictures_per_row(shown[0].picture.shape[1]))
        groups.append((f"{title} ({len(rows)})", shown))
    if args.png:
        sheet = gallery.montage(groups, f"{path.name}: test mistakes at threshold {found.threshold:.4f}",
                                columns=4 if s.is_3d else 8)
        say(f"png: {gallery.write_png(sheet, args.png)}")
    return 0
