"""Crash-safe file replacement: after a SIGKILL at any instant the old or the new file remains."""

from __future__ import annotations

import os
from pathlib import Path

from damtui.errors import DamtuiError


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_exclusive(tmp: Path) -> int:
    """A new temp file that is nobody's link: whatever sits at that name (a stale temp file, or
    a symbolic link planted in a folder received from someone else) is removed, never followed."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(tmp, flags, 0o644)
    except FileExistsError:
        os.unlink(tmp)  # unlinks a link itself, not its target
        return os.open(tmp, flags, 0o644)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write temp file + fsync + rename; on failure remove the temp file and keep the old one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with os.fdopen(_create_exclusive(tmp), "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)  # replaces a link at `path` itself, never what it points to
    except OSError as err:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise DamtuiError(
            f"could not write {path} ({err.strerror or err}); the previous version is intact:"
            " free disk space or choose a writable folder"
        ) from None
    _fsync_dir(path.parent)
