"""Crash-safe file replacement: after a SIGKILL at any instant the old or the new file remains."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from damtui.errors import DamtuiError

_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


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


def _hint(err: OSError) -> str:
    if err.errno in _FULL:
        return "free disk space or choose another folder"
    if err.errno in _DENIED:
        return "choose a writable folder"
    return "choose another file name"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write temp file + fsync + rename; on failure remove the temp file and keep the old one.
    A file replaced keeps its permissions (a 0600 file stays 0600)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        old = os.lstat(path)
    except OSError:
        old = None
    try:
        with os.fdopen(_create_exclusive(tmp), "wb") as fh:
            if old is not None and stat.S_ISREG(old.st_mode):
                os.fchmod(fh.fileno(), stat.S_IMODE(old.st_mode))
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
            f"could not write {path} ({err.strerror or err}); the previous version is intact: {_hint(err)}"
        ) from None
    _fsync_dir(path.parent)


def write_output(path: str | os.PathLike[str], data: bytes) -> Path:
    """A file the user named (--csv, --md, --png, the app's exports), written atomically: its
    folder is made when missing, a file it replaces keeps its permissions, and a name that is a
    folder (`/`, `.`, an existing folder), a FIFO or a device is refused with one line."""
    path = Path(path).expanduser()
    if path.name in ("", ".", ".."):
        raise DamtuiError(f"{os.fspath(path)!r} is a folder, not a file name: name a file in it, e.g. {path / 'NAME'}")
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as err:
        raise DamtuiError(f"cannot write {path} ({err.strerror}); choose another file name") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise DamtuiError(f"{path} is a folder: name a file in it, e.g. {path / 'NAME'}")
    if mode is not None and not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise DamtuiError(f"{path} is not a regular file (a FIFO, device or socket); choose another file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DamtuiError(f"cannot make the folder {path.parent} ({err.strerror}); choose another file name") from None
    atomic_write_bytes(path, data)
    return path
