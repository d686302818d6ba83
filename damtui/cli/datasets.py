"""`damtui datasets list | fetch FLAG | show FLAG`: the datasets' state, a download on request,
and the images headless.

`show` prints text first (counts, statistics, indices), so the output reads in a log; on a
terminal the pictures follow (damtui.analysis.pictures); `--png FILE` writes a labelled montage.
"""

from __future__ import annotations

import argparse
from typing import Callable

from damtui.cli.printers import print_pictures, print_table, pictures_per_row
from damtui.errors import DamtuiError


def add_parser(sub: argparse._SubParsersAction, common: Callable[[argparse.ArgumentParser], None]) -> None:
    d = sub.add_parser("datasets", help="list datasets and their state; fetch one")
    d.add_argument("action", nargs="?", default="list", choices=["list", "fetch", "show"])
    d.add_argument("flags", nargs="*", metavar="FLAG")
    add_show_options(d)
    common(d)


def cmd_datasets(args: argparse.Namespace) -> int:
    from damtui.data import datasets

    if args.action == "show":
        return cmd_datasets_show(args)
    if args.action == "fetch":
        if not args.flags:
            raise DamtuiError("`damtui datasets fetch FLAG` needs a dataset flag")
        for flag in args.flags:
            path = datasets.fetch(flag, args.data_root)
            print(f"{flag}: {path} ({'generated' if datasets.spec(flag).synthetic else 'MD5 ok'})")
        return 0
    rows = []
    for flag in args.flags or datasets.all_flags():
        s = datasets.status(flag, args.data_root)
        sizes = "/".join(str(s.sizes[k]) for k in datasets.SPLITS)
        share = "-" if s.positive_share is None else f"{s.positive_share:.3f}"
        kind = ("3D" if s.is_3d else "2D") + (" multi-label" if s.multilabel else "")
        rows.append([s.flag, s.state, s.md5, sizes, share, kind, s.error or str(s.path)])
    folder = datasets.data_root(args.data_root)
    print(f"data root: {folder}" + ("" if folder.is_dir() else " (no such folder)"))
    print_table(["dataset", "state", "MD5", "train/val/test", "label-1 share", "kind", "file / problem"], rows)
    return 0


def add_show_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("show (damtui datasets show FLAG)")
    g.add_argument("--split", default="train", choices=["train", "val", "test"], help="show: which split")
    g.add_argument("--label", help="show: only this class or label (number or name); mistakes: the label")
    g.add_argument("--png", metavar="FILE", help="show, mistakes: also write a labelled PNG montage")
    g.add_argument("--augmented", action="store_true", help="show: the training augmentation's view")
    g.add_argument("--per-class", type=int, default=8, metavar="N", help="show: samples per class")
    g.add_argument("--offset", type=int, default=0, metavar="K", help="show: 3D slices K planes off the middle")


def class_of(spec, ref: str | None) -> int | None:
    from damtui.analysis import gallery

    return None if ref is None else gallery.resolve_class(spec, ref)


def cmd_datasets_show(args: argparse.Namespace) -> int:
    from damtui.data import datasets
    from damtui.analysis import gallery

    if len(args.flags) != 1:
        raise DamtuiError("`damtui datasets show FLAG` needs exactly one dataset flag")
    data = datasets.load(args.flags[0], args.data_root)
    s = data.spec
    key = class_of(s, args.label)
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
            print_pictures(g.samples, pictures_per_row(g.samples[0].picture.shape[1]))
    if args.png:
        title = f"{s.flag} {args.split} · {view}{planes}"
        sheet = gallery.montage([(f"{g.key} {g.name} ({g.total})", g.samples) for g in groups], title,
                                columns=4 if s.is_3d else 8)
        print(f"png: {gallery.write_png(sheet, args.png)}")
    return 0
