"""Textual messages: how worker threads hand results to the app's handlers.

Workers never touch widgets; they post one of these to the app (post_message is thread-safe) and
the handlers on the app and screens own every piece of UI state.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.message import Message

from damtui import events
from damtui.records import RunSummary


class EngineEvent(Message):
    """One engine event of training session `session`."""

    def __init__(
        self, session: int, event: events.Event, prior_rows: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__()
        self.session = session
        self.event = event
        self.prior_rows = prior_rows  # metrics of the epochs before a resume


class BatchProgressEvent(EngineEvent):
    """High-rate progress: a queue of these folds into the newest one."""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, BatchProgressEvent) and message.session == self.session


class EngineError(Message):
    """engine.train raised (a DamtuiError before the run started, or a bug)."""

    def __init__(self, session: int, message: str, detail: str = "") -> None:
        super().__init__()
        self.session = session
        self.message = message
        self.detail = detail


class EngineDone(Message):
    """The worker thread has returned; a new run may start."""

    def __init__(self, session: int, summary: RunSummary | None) -> None:
        super().__init__()
        self.session = session
        self.summary = summary


class ResumeRun(Message):
    """A screen asks the app to continue a saved run: `epochs` None resumes it to its planned
    epochs, a number extends it (a finished run) to that many in all."""

    def __init__(self, path: Path, epochs: int | None = None) -> None:
        super().__init__()
        self.path = Path(path)
        self.epochs = epochs


class ResumeChecked(Message):
    """resume.resume_config's answer from a worker: the config to continue with, or the error."""

    def __init__(self, path: Path, config: Any, error: str = "") -> None:
        super().__init__()
        self.path = path
        self.config = config
        self.error = error


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
