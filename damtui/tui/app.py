"""The damtui Textual app: launch, monitor, runs, compare.

Start it with `run_app(runs_dir, data_root)`. Training runs in a Textual *thread* worker that calls
`engine.train(config, emit, stop_event, ...)`; `emit` posts messages to the app, whose handlers
update the Session and ask the monitor screen to redraw. Quitting sets the stop event first, so
the engine stops within one batch and the process exits (Textual cannot kill a thread).
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.signal import Signal

from damtui import events
from damtui.store import runs
from damtui.config import Config
from damtui.errors import DamtuiError
from damtui.records import RunSummary
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui.heavy import HEAVY_IMPORTS
from damtui.tui import session as ss
from damtui.tui.screens.help import HelpScreen
from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.runs import RunsScreen

EngineFn = Callable[..., dict]


def _default_engine() -> EngineFn:
    from damtui.train.engine import train  # heavy (torch): imported in the worker thread

    return train


def _default_devices() -> list[tuple[str, str]]:
    from damtui.train.devices import available_devices

    return available_devices()


class DamtuiApp(App[None]):
    CSS_PATH = Path(__file__).parent / "damtui.tcss"
    TITLE = "damtui"
    MODES = {"launch": LaunchScreen, "runs": RunsScreen}
    DEFAULT_MODE = "launch"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("n", "new_run", "New run"),
        Binding("r", "runs", "Runs"),
        Binding("m", "monitor", "Monitor"),
        Binding("L", "results", "Results", show=False),
    ]

    def __init__(
        self,
        runs_dir: Path | str | None = None,
        data_root: Path | str | None = None,
        *,
        engine: EngineFn | None = None,
        devices: Callable[[], list[tuple[str, str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_interval: float = 1.0,
        start: str = "launch",
        export_dir: Path | str | None = None,
        gpu_probe: Callable[[str], Any] | None = None,
    ) -> None:
        """
        Args:
            runs_dir: where runs are saved and listed (default: runs.runs_dir()).
            data_root: MedMNIST folder (default: DAMTUI_DATA, else medmnist's).
            engine: callable with engine.train's signature (default: damtui.train.engine.train, lazily).
            devices: callable returning [(id, label)] (default: devices.available_devices).
            clock: monotonic clock for elapsed times (tests freeze it).
            poll_interval: seconds between reads of runs written by other processes.
            start: first screen, "launch" or "runs".
            export_dir: default folder for comparison exports (default: current directory).
            gpu_probe: device -> gpu.GpuSample | None for the monitor (default: damtui.train.gpu.probe).
        """
        super().__init__()
        self.runs_dir = runs.runs_dir(runs_dir)
        self.data_root = Path(data_root) if data_root else None
        self._engine = engine
        self._devices = devices or _default_devices
        self.clock = clock
        self.poll_interval = poll_interval
        self.start_mode = start if start in self.MODES else "launch"
        self.export_dir = Path(export_dir) if export_dir else Path.cwd()
        self._gpu_probe = gpu_probe
        self.session: ss.Session | None = None
        self.stopped_on_quit = False
        self._sessions = 0
        # what changed in the session ("started", "batch", "epoch", "ended", ...): monitors subscribe
        self.session_signal: Signal[str] = Signal(self, "session")
        # caches filled by the launch screen's workers, kept for the app's lifetime
        self.dataset_flags: list[str] = []
        self.dataset_status: dict[str, Any] = {}
        self.data_folder: tuple[Path, bool] | None = None  # the resolved data root; does it exist
        self.devices: list[tuple[str, str]] = []

    def on_mount(self) -> None:
        if self.start_mode != self.DEFAULT_MODE:
            self.switch_mode(self.start_mode)

    def gpu_probe(self, device: str) -> Any:
        """Called from a worker thread (imports torch): the GPU line's sample."""
        if self._gpu_probe is not None:
            return self._gpu_probe(device)
        from damtui.train.gpu import probe

        with HEAVY_IMPORTS:
            return probe(device)

    def find_devices(self) -> list[tuple[str, str]]:
        """Called from a worker thread (imports torch)."""
        with HEAVY_IMPORTS:
            return self._devices()

    # ------------------------------------------------------------------ training
    def start_training(
        self,
        config: Config,
        device: str = "auto",
        from_run: Path | None = None,
        resume: Path | None = None,
    ) -> bool:
        """Start engine.train in a thread worker and show the monitor; False if one is running."""
        if self.training_busy():
            return False
        self._sessions += 1
        self.session = ss.Session(
            self._sessions,
            config,
            device,
            started_at=self.clock(),
            from_run=from_run,
            resume=resume,
        )
        self.run_worker(
            partial(self._train_thread, self.session),
            thread=True,
            group="train",
            name=f"train-{self._sessions}",
            exit_on_error=False,
        )
        self.refresh_bindings()
        self.action_monitor()
        return True

    def training_busy(self) -> bool:
        """True (and says so) while a run trains: the app trains one run at a time."""
        if self.session is not None and self.session.active:
            self.notify("a run is already training: cancel it first (m shows it)", severity="error")
            return True
        return False

    def on_resume_run(self, message: msg.ResumeRun) -> None:
        """R on a saved run (runs list, run page, monitor): the config as `damtui train --resume
        RUN [--epochs N]` makes it, read in a worker, then training on the monitor."""
        if not self.training_busy():
            self._resume_config(message.path, message.epochs)

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def _resume_config(self, path: Path, epochs: int | None) -> None:
        from damtui.train.resume import resume_config

        try:
            self.post_message(msg.ResumeChecked(path, resume_config(path, epochs)))
        except DamtuiError as err:
            self.post_message(msg.ResumeChecked(path, None, str(err)))

    def on_resume_checked(self, message: msg.ResumeChecked) -> None:
        if message.error:
            self.notify(f"cannot resume: {markup(message.error)}", severity="error", timeout=10)
        else:
            self.start_training(message.config, device="auto", resume=message.path)

    def _train_thread(self, session: ss.Session) -> None:
        """Runs in the worker thread: touches no widget; of the session it reads the fixed inputs
        and uses only stop_event and progress_box."""
        number = session.number

        def emit(event: events.Event) -> None:
            if isinstance(event, events.BatchProgress):
                # at most one in flight; the handler reads the newest from the mailbox
                if session.progress_box.offer(event):
                    self.post_message(msg.BatchProgressEvent(number, event))
                return
            prior = None
            if isinstance(event, events.RunStarted) and event.start_epoch > 0:
                rows, _ = runs.read_metrics(Path(event.run_dir), epochs=event.epochs)
                prior = [r for r in rows if r.epoch <= event.start_epoch]
            self.post_message(msg.EngineEvent(number, event, prior))

        summary = None
        try:
            with HEAVY_IMPORTS:
                engine = self._engine or _default_engine()
            summary = engine(
                session.config,
                emit,
                session.stop_event,
                runs_dir=self.runs_dir,
                data_root=self.data_root,
                device=session.device_request,
                from_run=session.from_run,
                resume=session.resume,
            )
        except DamtuiError as err:
            self.post_message(msg.EngineError(number, str(err)))
        except Exception as err:  # a bug in the engine must not take the app down
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            self.post_message(
                msg.EngineError(number, f"{type(err).__name__}: {first}", traceback.format_exc())
            )
        finally:
            self.post_message(
                msg.EngineDone(number, summary if isinstance(summary, RunSummary) else None)
            )

    def _current(self, number: int) -> ss.Session | None:
        s = self.session
        return s if s is not None and s.number == number else None

    def _changed(self, kind: str) -> None:
        self.session_signal.publish(kind)

    def _shown_screen(self) -> Screen | None:
        """The active screen, or None while the app is starting or shutting down."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def on_engine_event(self, message: msg.EngineEvent) -> None:
        s = self._current(message.session)
        if s is not None:
            kind = s.apply(message.event, self.clock(), message.prior_rows)
            self._changed(kind)
            if kind == "ended":
                self._notify_end(s)

    def on_batch_progress_event(self, message: msg.BatchProgressEvent) -> None:
        s = self._current(message.session)
        if s is not None:
            newest = s.progress_box.take() or message.event
            self._changed(s.apply(newest, self.clock()))

    def on_engine_error(self, message: msg.EngineError) -> None:
        s = self._current(message.session)
        if s is None:
            return
        s.fail(message.message, message.detail, self.clock())
        if message.detail:
            self.log.error(message.detail)
        self._changed("ended")
        if self._shown_screen() is not None and not isinstance(self._shown_screen(), MonitorScreen):
            self.notify(f"run failed: {markup(message.message)}", severity="error", timeout=10)

    def on_engine_done(self, message: msg.EngineDone) -> None:
        s = self._current(message.session)
        if s is None:
            return
        was_ended = s.ended
        s.finish_worker(message.summary, self.clock())
        self._changed("ended")
        if not was_ended and s.ended:
            self._notify_end(s)

    def _notify_end(self, s: ss.Session) -> None:
        shown = self._shown_screen()
        if shown is None or isinstance(shown, MonitorScreen):
            return
        severity = {"finished": "information", "cancelled": "warning"}.get(s.state, "error")
        self.notify(markup(f"run {s.run_id or s.config.dataset} {s.state}"), severity=severity, timeout=6)

    def cancel_training(self) -> None:
        if self.session is not None and self.session.active:
            self.session.request_cancel()
            self._changed("state")

    def stop_training(self) -> None:
        if self.session is not None and self.session.active:
            self.session.stop_event.set()
            self.stopped_on_quit = True

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        self.stop_training()
        self.exit()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self.stop_training()  # before the worker thread is joined at shutdown
        super().exit(*args, **kwargs)

    def on_unmount(self) -> None:
        self.stop_training()

    # ------------------------------------------------------------------ navigation
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Hide the keys that would lead to the screen already shown (under any dialog)."""
        base = next((s for s in reversed(self.screen_stack) if not isinstance(s, ModalScreen)), None)
        if action == "new_run":
            return not isinstance(base, LaunchScreen)
        if action == "runs":
            return not isinstance(base, RunsScreen)
        if action == "monitor":
            return self.session is not None and not isinstance(base, MonitorScreen)
        return True

    def _show_mode(self, mode: str) -> None:
        if self.current_mode != mode:
            self.switch_mode(mode)

    def action_new_run(self) -> None:
        self._show_mode("launch")
        while len(self.screen_stack) > 1 and not isinstance(self.screen, LaunchScreen):
            self.pop_screen()

    def action_runs(self) -> None:
        """The runs list itself, not the run page or comparison last open in this mode."""
        self._show_mode("runs")
        while len(self.screen_stack) > 1 and not isinstance(self.screen, RunsScreen):
            self.pop_screen()

    def action_monitor(self) -> None:
        if self.session is None:
            self.notify("no run started yet: n opens the launch screen", severity="warning")
            return
        self._show_mode("launch")
        if not isinstance(self.screen, MonitorScreen):
            self.push_screen(MonitorScreen())

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_results(self) -> None:
        from damtui.tui.screens.results import ResultsScreen

        if not isinstance(self.screen, ResultsScreen):
            self.push_screen(ResultsScreen())

    def action_sweeps(self) -> None:
        from damtui.tui.screens.sweeps import SweepsScreen

        if not isinstance(self.screen, SweepsScreen):
            self.push_screen(SweepsScreen())

    def action_compare(self) -> None:
        self._show_mode("runs")
        screen = next((s for s in self.screen_stack if isinstance(s, RunsScreen)), None)
        if screen is not None:
            while self.screen is not screen:
                self.pop_screen()
            screen.action_compare()

    def action_cancel_run(self) -> None:
        self.action_monitor()
        if isinstance(self.screen, MonitorScreen):
            self.screen.action_cancel_run()

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield SystemCommand(
            "New run", "Choose dataset, stage and preset; start training", self.action_new_run
        )
        yield SystemCommand("Runs", "Browse saved runs and runs being written", self.action_runs)
        yield SystemCommand(
            "Compare selected runs",
            "Overlay curves and summaries of the runs selected with space on the runs screen",
            self.action_compare,
        )
        if self.session is not None:
            yield SystemCommand("Monitor", "The run this app is training", self.action_monitor)
            if self.session.active:
                yield SystemCommand(
                    "Cancel run", "Stop training after the current batch", self.action_cancel_run
                )
        yield SystemCommand(
            "Results", "Leaderboard: best seed group per dataset (chosen on validation) vs MedMNIST v2",
            self.action_results,
        )
        yield SystemCommand(
            "Sweeps", "Sweeps: state, trials and best configuration; a sweep's live trials", self.action_sweeps
        )
        yield SystemCommand("Help", "Keys and concepts", self.action_help)
        yield from super().get_system_commands(screen)


def run_app(
    runs_dir: Path | str | None = None, data_root: Path | str | None = None, **kwargs: Any
) -> None:
    """Open the app; returns when the user quits (after a running engine has stopped).

    SIGTERM and SIGHUP (the SSH connection dropped) quit like ctrl+q: a run being trained is
    stopped after its current batch and marked cancelled, so `R` on the runs screen resumes it.
    kwargs go to DamtuiApp (engine, devices, clock, poll_interval, start, export_dir).
    """
    import asyncio
    import signal

    app = DamtuiApp(runs_dir, data_root, **kwargs)

    def quit_on_signal(signum: int, frame: Any) -> None:
        app.stop_training()  # sets a threading.Event: safe in a signal handler
        try:  # the handler runs in the main thread, inside the app's running event loop
            loop = asyncio.get_running_loop()
        except RuntimeError:  # before the app started or after it ended: nothing to exit
            return
        loop.call_soon_threadsafe(app.exit)

    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None:
            try:
                previous[sig] = signal.signal(sig, quit_on_signal)
            except (ValueError, OSError):  # not the main thread
                pass
    try:
        app.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    s = app.session
    if app.stopped_on_quit and s is not None and s.run_dir:
        print(f"damtui: training stopped on quit; run saved in {s.run_dir}", flush=True)
    if os.environ.get("DAMTUI_DEBUG") and s is not None and s.detail:
        print(s.detail)
