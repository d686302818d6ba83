"""`damtui datasets show` and `damtui runs mistakes`: the images, headless.

Text first (counts, statistics, indices and scores), so the output reads in a log; on a terminal
the pictures follow (damtui.pictures); `--png FILE` writes a labelled montage either way.
"""

from __future__ import annotations

import argparse

from damtui.errors import DamtuiError


def add_show_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("show (damtui datasets show FLAG)")
    g.add_argument("--split", default="train", choices=["train", "val", "test"], help="show: which split")
    g.add_argument("--label", help="show: only this class or label (number or name); mistakes: the label")
    g.add_argument("--png", metavar="FILE", help="show, mistakes: also write a labelled PNG montage")
    g.add_argument("--augmented", action="store_true", help="show: the training augmentation's view")
    g.add_argument("--per-class", type=int, default=8, metavar="N", help="show: samples per class")
    g.add_argument("--offset", type=int, default=0, metavar="K", help="show: 3D slices K planes off the middle")


def add_mistakes_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("mistakes (damtui runs mistakes RUN)")
    g.add_argument("--label", help="mistakes: the label of a multi-label run (number or name)")
    g.add_argument("--png", metavar="FILE", help="mistakes: also write a labelled PNG montage")
    g.add_argument("--device", default="auto", help="mistakes: device to score on when no scores are saved")
    g.add_argument("--limit", type=int, default=16, metavar="N", help="mistakes: pictures per kind (0: none)")


def _print_pictures(samples: list, per_row: int) -> None:
    """Pictures in rows with captions, only on a terminal (a log gets the text alone)."""
    from rich.console import Console
    from rich.table import Table

    from damtui.pictures import renderable

    console = Console()
    if not console.is_terminal or not samples:
        return
    for start in range(0, len(samples), per_row):
        row = samples[start:start + per_row]
        grid = Table.grid(padding=(0, 1))
        for _ in row:
            grid.add_column()
        grid.add_row(*[renderable(s.picture) for s in row])
        grid.add_row(*[s.caption for s in row])
        console.print(grid)


def _per_row(picture_width: int) -> int:
    import shutil

    return max(1, shutil.get_terminal_size((80, 24)).columns // (picture_width + 1))


def _label(spec, ref: str | None) -> int | None:
    from damtui import gallery

    return None if ref is None else gallery.resolve_class(spec, ref)


def cmd_datasets_show(args: argparse.Namespace) -> int:
    from damtui import datasets, gallery

    if len(args.flags) != 1:
        raise DamtuiError("`damtui datasets show FLAG` needs exactly one dataset flag")
    data = datasets.load(args.flags[0], args.data_root)
    s = data.spec
    key = _label(s, args.label)
    kind = ("3D" if s.is_3d else "2D") + (" multi-label" if s.multilabel else " binary")
    print(f"{s.flag} ({kind}) from {datasets.dataset_path(s.flag, datasets.data_root(args.data_root))}")
    word = "label (positives)" if s.multilabel else "class"
    print(f"{word:<28} " + " ".join(f"{sp:>7}" for sp in datasets.SPLITS))
    for c in gallery.class_counts(data):
        print(f"{c.key:>2} {c.name[:25]:<25} " + " ".join(f"{c.counts[sp]:>7}" for sp in datasets.SPLITS))
    print("pixels (0-255)   mean    std  min  max")
    for p in gallery.pixel_stats(data):
        print(f"{p.split:<14} {p.mean:6.1f} {p.std:6.1f} {p.low:4d} {p.high:4d}")
    groups = gallery.browse(data, args.split, None if key is None else [key], max(0, args.per_class),
                            args.offset, args.augmented)
    view = "augmented (training view, batched path)" if args.augmented else "original"
    planes = f", planes {'/'.join(gallery.PLANES)} at middle{args.offset:+d}" if s.is_3d else ""
    for g in groups:
        print(f"{args.split} samples of {g.key} {g.name} ({len(g.samples)} of {g.total}, {view}{planes}):"
              f" {' '.join(f'#{x.index}' for x in g.samples)}")
        if g.samples:
            _print_pictures(g.samples, _per_row(g.samples[0].picture.shape[1]))
    if args.png:
        title = f"{s.flag} {args.split} · {view}{planes}"
        sheet = gallery.montage([(f"{g.key} {g.name} ({g.total})", g.samples) for g in groups], title,
                                columns=4 if s.is_3d else 8)
        print(f"png: {gallery.write_png(sheet, args.png)}")
    return 0


def cmd_runs_mistakes(args: argparse.Namespace) -> int:
    from damtui import datasets, gallery, mistakes, runs

    if len(args.refs) != 1:
        raise DamtuiError("`damtui runs mistakes RUN` needs exactly one run")
    path = runs.resolve_run(runs.runs_dir(args.runs_dir), args.refs[0])
    record = runs.load_run(path)
    s = datasets.spec(record.info.dataset)
    column = (_label(s, args.label) or 0) if s.multilabel else 0
    answer = mistakes.answer_scores(path, args.data_root, args.device)
    found = mistakes.run_mistakes(answer, column)
    where = "" if answer.run_dir == path else f" of {answer.run_dir.name}"
    print(f"{path.name}: answer {answer.stage} epoch {answer.epoch}{where}; {answer.note}")
    what = f"label {column} ({dict(gallery.classes(s))[column]})" if s.multilabel else \
        f"class 1 ({s.label_names.get('1', '1')})"
    print(f"{what}: threshold {found.threshold:.4f} (chosen on val); {found.wrong} of"
          f" {found.n_test} test images wrong: {len(found.false_positives)} false positives,"
          f" {len(found.false_negatives)} false negatives")
    data = datasets.load(s.flag, args.data_root)
    groups = []
    for title, rows in (("false positives (label 0, score above the threshold), most confident first",
                         found.false_positives),
                        ("false negatives (label 1, score at or below it), most confident first",
                         found.false_negatives)):
        print(f"{title}:")
        print("  " + ("  ".join(f"#{m.index} {m.score:.3f}" for m in rows) or "none"))
        shown = [gallery.Sample(m.index, gallery.tile(data.images["test"][m.index], s.is_3d),
                                f"#{m.index} {m.score:.3f}") for m in rows[:max(0, args.limit)]]
        if shown:
            _print_pictures(shown, _per_row(shown[0].picture.shape[1]))
        groups.append((f"{title} ({len(rows)})", shown))
    if args.png:
        sheet = gallery.montage(groups, f"{path.name}: test mistakes at threshold {found.threshold:.4f}",
                                columns=4 if s.is_3d else 8)
        print(f"png: {gallery.write_png(sheet, args.png)}")
    return 0
