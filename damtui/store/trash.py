"""Deleting runs, part of the run store: a run is moved to <runs>/.trash/, never removed, and
only when no process writes it. A run that fine-tunes name as their `--from` source is refused
unless the caller forces it (the CLI's --force, the app's confirmation that names them): a
fine-tune that must start over reads its source's checkpoint again.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from damtui.errors import DamtuiError
from damtui.store.files import CONFIG, RUNNING, RunLock, free_name, is_run_dir, read_json, real_dir, run_folder

TRASH_DIR = ".trash"  # under the runs dir; dot-named, so `runs.list_runs` ignores it


def trash_dir(root: Path) -> Path:
    return Path(root) / TRASH_DIR


def fine_tunes_of(path: Path) -> list[str]:
    """The runs beside `path` whose config names it as their `--from` source (by resolved path,
    or by folder name for runs that recorded only the name)."""
    path = Path(path)
    target = path.resolve()
    out = []
    for entry in sorted(path.parent.iterdir()):
        if entry.name.startswith(".") or entry == path or not is_run_dir(entry):
            continue
        try:
            runtime = read_json(entry / CONFIG).get("runtime") or {}
        except (OSError, ValueError, AttributeError):
            continue
        if not isinstance(runtime, dict):
            continue
        source_path, source = runtime.get("from_run_path"), runtime.get("from_run")
        if source_path:
            if Path(str(source_path)).resolve() == target:
                out.append(entry.name)
        elif source is not None and Path(str(source)).name == path.name:
            out.append(entry.name)
    return out


def check_deletable(path: Path, force: bool = False) -> list[str]:
    """The fine-tunes that use the run as their source; raises DamtuiError when the run may not
    be deleted: a process writes it (its writer lock, or a live status on another host) or,
    unless `force`, other runs name it as their source."""
    lock = _lock(path)
    try:
        return _check(path, force)
    finally:
        lock.release()


def delete_run(path: Path, force: bool = False) -> Path:
    """Move the run to <runs>/.trash/<name>-<time> (refused as check_deletable says) and return
    where it went; moving it back restores it."""
    path = Path(path)
    lock = _lock(path)
    try:
        _check(path, force)
        try:
            folder = real_dir(trash_dir(path.parent), create=True)  # a link there would move runs elsewhere
            dest = free_name(folder / f"{path.name}-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, dest)  # one rename on the same file system: the run is whole in one place
        except DamtuiError:
            raise
        except OSError as err:
            raise DamtuiError(f"cannot move {path.name} to {trash_dir(path.parent)} ({err.strerror})") from None
    finally:
        lock.release()
    return dest


TRASHED = re.compile(r"^(?P<name>.+)-\d{8}-\d{6}(~\d+)?$")  # <run name>-<time deleted>[~n]


@dataclass(frozen=True)
class Trashed:
    """A run in the trash: where it lies, the name it had and when it was deleted."""

    path: Path
    name: str
    deleted: float  # the folder's change time: the move into the trash


def trashed_runs(root: Path) -> list[Trashed]:
    """The runs in <root>/.trash/, newest deletion first."""
    folder = trash_dir(root)
    if not folder.is_dir():
        return []
    out = []
    for entry in folder.iterdir():
        m = TRASHED.match(entry.name)
        if m and entry.is_dir() and is_run_dir(entry):
            out.append(Trashed(entry, m.group("name"), entry.stat().st_ctime))
    return sorted(out, key=lambda t: (-t.deleted, t.name))


def restore_run(trashed: Path) -> Path:
    """Move a run from the trash back to the runs dir under the name it had; refused when a run of
    that name is there again."""
    trashed = Path(trashed)
    m = TRASHED.match(trashed.name)
    if m is None or trashed.parent.name != TRASH_DIR or not is_run_dir(trashed):
        raise DamtuiError(f"{trashed} is not a run in the trash")
    dest = trashed.parent.parent / m.group("name")
    if dest.exists():
        raise DamtuiError(f"{dest} exists; rename or delete it first, then restore {trashed.name}")
    try:
        os.replace(trashed, dest)  # one rename on the same file system, as the delete was
    except OSError as err:
        raise DamtuiError(f"cannot move {trashed.name} back to {dest.parent} ({err.strerror})") from None
    return dest


def _lock(path: Path) -> RunLock:
    run_folder(path)
    if not is_run_dir(path):
        raise DamtuiError(f"{path} is not a damtui run; `damtui runs` lists runs")
    return RunLock.acquire(path)  # refuses a run being written, naming the process


def _check(path: Path, force: bool) -> list[str]:
    from damtui.store.runs import load_run

    info = load_run(path).info
    if info.status == RUNNING:
        raise DamtuiError(f"{path.name} is running (pid {info.pid}, another host); stop it before deleting it")
    users = fine_tunes_of(path)
    if users and not force:
        names = ", ".join(users[:3]) + (f" and {len(users) - 3} more" if len(users) > 3 else "")
        raise DamtuiError(f"{path.name} is the --from source of {names}; delete those first, or add --force"
                          f" (it moves to {trash_dir(path.parent)}, from where it can be moved back)")
    return users
