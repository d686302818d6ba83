"""The process that trains a run the app started: `damtui train` as a child in its own session.

The child is started with `start_new_session=True`, its stdin closed and its output in the run's
`.launch/output.txt` (damtui.store.launch), so neither the app's end (ctrl+q, a crash, SIGKILL)
nor the SIGHUP of a dropped SSH connection reaches it; the app follows the run folder it writes
(damtui.store.follow) like any other run. Stopping it is Ctrl+C's SIGINT: it finishes the batch,
saves, and marks the run cancelled, resumable.

`EngineThread` runs an engine function in this process instead (tests drive the app with a fake
engine that writes the run folder): it cannot outlive the app, so leaving it stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from damtui.config import Config
from damtui.errors import DamtuiError
from damtui.store import launch
from damtui.sweeps.command import TrainCommand

TRAIN_PROGRAM = (sys.executable, "-m", "damtui.cli", "train")


def train_args(run_dir: Path, config: Config, preset_file: Path | None, device: str, data_root: Path | None,
               from_run: Path | None, resume: Path | None, epochs: int | None = None,
               force: bool = False) -> list[str]:
    """`damtui train`'s arguments for the run: a new run by its preset file and name, or a resume
    (`epochs`: the new total of an extension)."""
    command = TrainCommand(runs_dir=str(Path(run_dir).parent), device=device,
                           data_root=str(data_root) if data_root else None)
    if resume is not None:
        return [*replace(command, resume=str(resume)).args(), *(["--epochs", str(epochs)] if epochs else []),
                *(["--force"] if force else [])]
    assert preset_file is not None
    return replace(command, dataset=config.dataset, stage=config.stage, preset=str(preset_file),
                   seeds=(config.seed,), names=(Path(run_dir).name,),
                   from_runs=(str(from_run),) if from_run else ()).args()


class TrainingProcess:
    """A run's own `damtui train` process."""

    outlives = True

    def __init__(self, run_dir: Path, proc: subprocess.Popen, output_start: int) -> None:
        self.run_dir, self.proc, self.output_start = Path(run_dir), proc, output_start
        self._stopped = False

    @classmethod
    def start(cls, run_dir: Path, config: Config, *, device: str = "auto", data_root: Path | None = None,
              from_run: Path | None = None, resume: Path | None = None, epochs: int | None = None,
              force: bool = False, program: Sequence[str] | None = None) -> TrainingProcess:
        """Start training `config` into `run_dir` (a new run's folder, or the run to resume);
        `program` replaces `python -m damtui.cli train` (tests)."""
        preset, out, start = launch.prepare(run_dir, None if resume is not None else config)
        args = train_args(run_dir, config, preset, device, data_root, from_run, resume, epochs, force)
        argv = [*(program or TRAIN_PROGRAM), *args]
        try:
            with out:
                proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        except OSError as err:
            launch.forget_unstarted(run_dir)
            raise DamtuiError(f"cannot start the training process ({err.strerror}): {argv[0]}") from None
        launch.record(run_dir, proc.pid, argv)
        return cls(run_dir, proc, start)

    def poll(self) -> int | None:
        """The exit code once the process has ended (it is reaped here), else None."""
        return self.proc.poll()

    def stop(self) -> None:
        """Ctrl+C: stop after the current batch, save, mark the run cancelled. Once only: a second
        Ctrl+C would abort the process without saving."""
        if not self._stopped and self.proc.poll() is None:
            self._stopped = True
            try:
                self.proc.send_signal(signal.SIGINT)
            except OSError:
                pass

    def detach(self) -> None:
        """The app is leaving: the process trains on (it is in its own session)."""

    def failure(self) -> tuple[str, str]:
        """Why the process ended without a run to show: its error line, and the output's tail."""
        message, detail = launch.failure(self.run_dir, self.output_start)
        launch.forget_unstarted(self.run_dir)
        return message, detail


EngineFn = Callable[..., Any]


class EngineThread:
    """`engine(config, emit, stop_event, ...)` (engine.train's signature) in a thread of this process."""

    outlives = False

    def __init__(self, engine: EngineFn, run_dir: Path, config: Config, **kwargs: Any) -> None:
        self.run_dir = Path(run_dir)
        self.stop_event = threading.Event()
        self.error: tuple[str, str] | None = None
        self._thread = threading.Thread(target=self._run, args=(engine, config, kwargs), name="damtui-engine")
        self._thread.start()

    def _run(self, engine: EngineFn, config: Config, kwargs: dict[str, Any]) -> None:
        resume = kwargs.get("resume")
        try:
            engine(config, lambda event: None, self.stop_event, run_name=None if resume else self.run_dir.name,
                   runs_dir=self.run_dir.parent, **kwargs)
        except DamtuiError as err:
            self.error = (str(err), "")
        except Exception as err:  # a bug in the engine must not take the app down
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self.error = (f"{type(err).__name__}: {first}", traceback.format_exc())

    def poll(self) -> int | None:
        if self._thread.is_alive():
            return None
        return 1 if self.error else 0

    def stop(self) -> None:
        self.stop_event.set()

    def detach(self) -> None:
        """A thread cannot outlive the app: stop it (the run is marked cancelled, resumable)."""
        self.stop_event.set()

    def failure(self) -> tuple[str, str]:
        return self.error or ("the engine returned without writing the run", "")
