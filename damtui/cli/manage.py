"""`damtui runs delete | rename | note | tag | log`: managing saved runs from the shell, and the
name/tags/notes the other `runs` commands print. Wired into the `runs` command (damtui.cli.runs)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from damtui.cli.printers import say
from damtui.errors import DamtuiError

ACTIONS = ("delete", "rename", "note", "tag", "log")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--yes", action="store_true", help="delete: do not ask for confirmation")
    p.add_argument("--force", action="store_true", help="delete: also a run that fine-tunes use as their source")
    p.add_argument("--remove", action="store_true", help="tag: remove these tags instead of adding them")


def labels(info: object) -> str:
    """The name and tags cell of `runs list`: 'name #tag1 #tag2', or '-'."""
    notes = getattr(info, "notes")
    text = " ".join([notes.name, *(f"#{t}" for t in notes.tags)]).strip()
    return text or "-"


def print_notes(info: object) -> None:
    """`runs show`: the user's name, tags and notes, when there are any."""
    notes = getattr(info, "notes")
    if notes.name:
        say(f"name: {notes.name}")
    if notes.tags:
        say(f"tags: {', '.join(notes.tags)}")
    if notes.text:
        say("notes: " + notes.text.replace("\n", "\n       "))


def run(args: argparse.Namespace, root: Path) -> int:
    from damtui.store import log as run_log, notes as run_notes, runs

    if not args.refs:
        raise DamtuiError(f"`damtui runs {args.action}` needs a RUN")
    path = runs.resolve_own_run(root, args.refs[0])  # exactly, and in the runs folder only
    rest = args.refs[1:]
    if args.action == "delete":
        return _delete(path, rest, args.yes, args.force)
    if args.action == "rename":
        if len(rest) != 1:
            raise DamtuiError("`damtui runs rename RUN NAME` takes one NAME (quote a name with spaces; '' clears it)")
        notes = run_notes.rename_run(path, rest[0])
        say(f"{path.name}: name {notes.name!r}" if notes.name else f"{path.name}: name cleared")
        return 0
    if args.action == "note":
        notes = run_notes.set_notes(path, " ".join(rest))
        say(f"{path.name}: notes {'saved' if notes.text else 'cleared'}")
        return 0
    if args.action == "tag":
        notes = run_notes.tag_run(path, rest, remove=args.remove)
        say(f"{path.name}: tags {', '.join(notes.tags) or '(none)'}")
        return 0
    lines = run_log.read_log(path)
    if lines is None:
        raise DamtuiError(f"{path.name} has no log.txt (runs trained before damtui wrote logs have none);"
                          f" `damtui runs show {path.name}` shows its epochs")
    for line in lines[0]:
        say(line)  # a log line holding ESC sequences shows them, never runs them
    return 0


def _delete(path: Path, rest: list[str], yes: bool, force: bool) -> int:
    from damtui.store import trash

    if rest:
        raise DamtuiError("`damtui runs delete RUN` deletes one run at a time")
    users = trash.check_deletable(path, force)  # refuses a running run, or a source unless --force
    if not yes:
        if not sys.stdin.isatty():
            raise DamtuiError(f"deleting {path.name} needs confirmation: add --yes")
        used = f" (the source of {', '.join(users)})" if users else ""
        answer = input(f"move run {path.name}{used} to {trash.trash_dir(path.parent)}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            say("not deleted")
            return 1
    dest = trash.delete_run(path, force=force)
    say(f"deleted {path.name}: moved to {dest} (move it back to restore it)")
    return 0
