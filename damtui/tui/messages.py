"""Textual messages: how worker threads hand results to the app's handlers.

Workers never touch widgets; they post one of these to the app (post_message is thread-safe) and
the handlers on the app and screens own every piece of UI state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message


class EngineEvent(Message):
    """One event of training session `session`, read from its run folder (an engine event, or a
    progress record), with the rows already there when it started following (RunStarted)."""

    def __init__(self, session: int, event: Any, prior_rows: list[Any] | None = None) -> None:
        super().__init__()
        self.session = session
        self.event = event
        self.prior_rows = prior_rows


class EngineError(Message):
    """The training process ended before it wrote its run (bad input, a bug), or could not start."""

    def __init__(self, session: int, message: str, detail: str = "") -> None:
        super().__init__()
        self.session = session
        self.message = message
        self.detail = detail


class EngineDone(Message):
    """The follow worker has returned (the run ended, or the app is leaving); a new run may start."""

    def __init__(self, session: int) -> None:
        super().__init__()
        self.session = session


class LiveRunFound(Message):
    """At start: a run an earlier app started that is still training (its folder, config, when its
    current process started), to follow live."""

    def __init__(self, run_dir: Path, config: Any, started: float) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.config = config
        self.started = started


class ResumeRun(Message):
    """A screen asks the app to continue a saved run: `epochs` None resumes it to its planned
    epochs, a number extends it (a finished run) to that many in all; `force` trains it further
    although fine-tunes started from it (the user confirmed)."""

    def __init__(self, path: Path, epochs: int | None = None, force: bool = False) -> None:
        super().__init__()
        self.path = Path(path)
        self.epochs = epochs
        self.force = force


class ResumeChecked(Message):
    """resume.resume_config's answer from a worker: the config to continue with, or the error
    (`users`: the fine-tunes that started from the run, when that is why it was refused)."""

    def __init__(self, path: Path, config: Any, error: str = "", epochs: int | None = None, force: bool = False,
                 users: list[str] | None = None) -> None:
        super().__init__()
        self.path = path
        self.config = config
        self.error = error
        self.epochs = epochs
        self.force = force
        self.users = users or []


class RunRead(Message):
    """A run folder read in a worker: its record (None with `error`) and the files' stamp."""

    def __init__(self, record: Any, stamp: tuple, error: str = "") -> None:
        super().__init__()
        self.record = record
        self.stamp = stamp
        self.error = error


class ProgressRead(Message):
    """A followed run's progress.json read in a worker (None: there is none yet)."""

    def __init__(self, progress: Any) -> None:
        super().__init__()
        self.progress = progress


class DatasetStatusReady(Message):
    def __init__(self, status: Any) -> None:
        super().__init__()
        self.status = status


class DevicesReady(Message):
    def __init__(self, devices: list[tuple[str, str]], error: str = "") -> None:
        super().__init__()
        self.devices = devices
        self.error = error


class RunsListed(Message):
    """Result of runs.list_runs done in a worker thread."""

    def __init__(self, runs: list[Any], ignored: list[str], error: str = "") -> None:
        super().__init__()
        self.runs = runs
        self.ignored = ignored
        self.error = error


def list_runs(runs_dir: Any) -> RunsListed:
    """runs.list_runs for a worker thread, as the message its screen handles."""
    from damtui.store import runs
    from damtui.errors import DamtuiError

    try:
        found, ignored = runs.list_runs(runs_dir)
    except (OSError, DamtuiError) as err:
        return RunsListed([], [], str(err))
    return RunsListed(found, ignored)


class DataRootChecked(Message):
    """The folder the datasets are read from (resolved: --data-root, $DAMTUI_DATA or medmnist's)."""

    def __init__(self, root: Path, exists: bool) -> None:
        super().__init__()
        self.root = root
        self.exists = exists


class DatasetFlags(Message):
    """The dataset flags damtui knows, before their (slower) status checks arrive."""

    def __init__(self, flags: list[str], error: str = "") -> None:
        super().__init__()
        self.flags = flags
        self.error = error
