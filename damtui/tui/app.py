"""The damtui Textual app: launch, monitor, runs, compare.

Start it with `run_app(runs_dir, data_root)`. Each run the app starts trains in its own process
(`damtui train`, damtui.tui.training): quitting the app, killing it or losing the SSH connection
does not stop it. A thread worker follows the run folder (damtui.store.follow) and posts what
changed as engine events; the handlers update the Session and the monitor redraws. ctrl+q with a
run training asks whether to leave it running, stop it (resumable) or stay; an app opened later
shows a run it started that is still training, live.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ScreenStackError, SystemCommand
from textual.binding import Binding
from textual.events import Key
from textual.screen import ModalScreen, Screen
from textual.signal import Signal
from textual.widgets import Input, TextArea

from damtui import events
from damtui.store import runs
from damtui.config import Config, validate
from damtui.errors import DamtuiError
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui.heavy import HEAVY_IMPORTS
from damtui.tui import session as ss
from damtui.tui.screens.dialogs import ConfirmScreen, QuitScreen
from damtui.tui.screens.help import HelpScreen
from damtui.tui.screens.launch import LaunchScreen
from damtui.tui.screens.monitor import MonitorScreen
from damtui.tui.screens.runs import RunsScreen

EngineFn = Callable[..., object]


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
        trainer: Sequence[str] | None = None,
    ) -> None:
        """
        Args:
            runs_dir: where runs are saved and listed (default: runs.runs_dir()).
            data_root: MedMNIST folder (default: DAMTUI_DATA, else medmnist's).
            engine: callable with engine.train's signature, run in a thread of the app instead of
                a training process (tests; such a run stops when the app quits).
            devices: callable returning [(id, label)] (default: devices.available_devices).
            clock: monotonic clock for elapsed times (tests freeze it).
            poll_interval: seconds between reads of runs written by other processes.
            start: first screen, "launch" or "runs".
            export_dir: default folder for comparison exports (default: current directory).
            gpu_probe: device -> gpu.GpuSample | None for the monitor (default: damtui.train.gpu.probe).
            trainer: the command a run is started with, before `damtui train`'s arguments
                (default: this Python's `-m damtui.cli train`; tests give a script taking the same).
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
        self._trainer = tuple(trainer) if trainer else None
        self.session: ss.Session | None = None
        self.quit_choice = ""  # "leave" or "stop": what ctrl+q did with the run training
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
        self._find_live_run()

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
        epochs: int | None = None,
        force: bool = False,
    ) -> bool:
        """Start the run's own training process and show it on the monitor; False if one is
        followed already. `epochs` is an extension's new total, `force` extends a run fine-tunes
        started from."""
        if self.training_busy():
            return False
        run_dir = Path(resume) if resume is not None else self.runs_dir / runs.new_run_name(config.dataset, config.stage)
        self._sessions += 1
        self.session = ss.Session(self._sessions, config, device, started_at=self.clock(), run_dir=str(run_dir),
                                  from_run=from_run, resume=resume, epochs_asked=epochs, force=force,
                                  launched=time.time())
        self._follow(self.session)
        self.refresh_bindings()
        self.action_monitor()
        return True

    def training_busy(self) -> bool:
        """True (and says so) while a run is followed: the monitor shows one run at a time."""
        if self.session is not None and self.session.active:
            self.notify("a run is already training: cancel it first (m shows it)", severity="error")
            return True
        return False

    def on_resume_run(self, message: msg.ResumeRun) -> None:
        """R on a saved run (runs list, run page, monitor): the config as `damtui train --resume
        RUN [--epochs N]` makes it, read in a worker, then training on the monitor."""
        if not self.training_busy():
            self._resume_config(message.path, message.epochs, message.force)

    @work(thread=True, exclusive=True, group="resume", exit_on_error=False)
    def _resume_config(self, path: Path, epochs: int | None, force: bool) -> None:
        from damtui.train.resume import SourceInUse, resume_config

        try:
            self.post_message(msg.ResumeChecked(path, resume_config(path, epochs, force=force), epochs=epochs,
                                                force=force))
        except SourceInUse as err:
            self.post_message(msg.ResumeChecked(path, None, str(err), epochs=epochs, users=err.users))
        except DamtuiError as err:
            self.post_message(msg.ResumeChecked(path, None, str(err), epochs=epochs))

    def on_resume_checked(self, message: msg.ResumeChecked) -> None:
        if message.users:
            self._confirm_source_extension(message)
        elif message.error:
            self.notify(f"cannot resume: {markup(message.error)}", severity="error", timeout=10)
        else:
            self.start_training(message.config, device="auto", resume=message.path, epochs=message.epochs,
                                force=message.force)

    def _confirm_source_extension(self, message: msg.ResumeChecked) -> None:
        """Training a pretrain further moves its best.pt, which its fine-tunes started from: ask, naming them."""
        users = message.users
        names = markup(", ".join(users[:3])) + (f" and {len(users) - 3} more" if len(users) > 3 else "")

        def answer(yes: bool | None) -> None:
            if yes:
                self.post_message(msg.ResumeRun(message.path, message.epochs, force=True))

        self.push_screen(ConfirmScreen(
            f"Train {markup(message.path.name)} further?",
            f"Fine-tunes started from its best checkpoint: {names}. Training it further can replace that"
            " checkpoint, so they would no longer match the run they name as their source.",
            yes="Train it further", no="Keep it as it is"), answer)

    def _start_process(self, s: ss.Session) -> Any:
        """The run's training process (an in-process engine thread when the app was given one)."""
        from damtui.tui.training import EngineThread, TrainingProcess

        run_dir = Path(s.run_dir)
        if self._engine is not None:
            return EngineThread(self._engine, run_dir, s.config, data_root=self.data_root,
                                device=s.device_request, from_run=s.from_run, resume=s.resume)
        return TrainingProcess.start(run_dir.absolute(), s.config, device=s.device_request,
                                     data_root=self.data_root.absolute() if self.data_root else None,
                                     from_run=s.from_run.absolute() if s.from_run else None,
                                     resume=s.resume.absolute() if s.resume else None, epochs=s.epochs_asked,
                                     force=s.force, program=self._trainer)

    @work(thread=True, group="follow", exit_on_error=False)
    def _follow(self, s: ss.Session) -> None:
        """Worker: start the session's process (unless it follows a run found training), then post
        what the run folder says, every poll interval, until the run ends or the app leaves."""
        from damtui.store.follow import RunFollower

        number = s.number
        if s.launched is not None:
            try:
                s.process = self._start_process(s)
            except DamtuiError as err:
                self.post_message(msg.EngineError(number, str(err)))
                self.post_message(msg.EngineDone(number))
                return
            if s.stop_requested:
                s.process.stop()
        follower = RunFollower(Path(s.run_dir), since=s.launched)
        while True:
            exited = s.process.poll() if s.process is not None else None  # before the files: its last writes count
            for update in follower.poll():
                prior = follower.prior if isinstance(update, events.RunStarted) else None
                self.post_message(msg.EngineEvent(number, update, prior))
            if follower.ended or s.leaving.is_set():
                break
            if exited is not None:  # ended without a final status: it failed before its run existed
                message, detail = s.process.failure()
                self.post_message(msg.EngineError(number, message, detail))
                break
            s.leaving.wait(self.poll_interval)
        self.post_message(msg.EngineDone(number))

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
        s.finish_following(self.clock())
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
        """Stop the run like Ctrl+C (after its batch; cancelled, resumable), in a worker."""
        s = self.session
        if s is not None and s.training and not s.stop_requested:
            s.request_cancel()
            self._changed("state")
            self._stop_worker(s)

    @work(thread=True, group="stop", exit_on_error=False)
    def _stop_worker(self, s: ss.Session) -> None:
        try:
            self._stop(s)
        except DamtuiError as err:
            self.call_from_thread(self.notify, f"cannot stop it: {err}", severity="error", timeout=10)

    def _stop(self, s: ss.Session) -> None:
        """The app's own process gets SIGINT through its handle (set once it started; the follow
        worker stops it right after starting it otherwise); a run found training, through the pid
        its folder names as its live writer (damtui.store.stopping checks it is that process)."""
        if s.process is not None:
            s.process.stop()
        elif s.launched is None:
            from damtui.store.stopping import stop_writer

            stop_writer(Path(s.run_dir))

    # ------------------------------------------------------------------ live runs found at start
    @work(thread=True, exclusive=True, group="live", exit_on_error=False)
    def _find_live_run(self) -> None:
        """Worker: a run an earlier app started that is still training, to show it live again."""
        from damtui.store import launch

        for found in launch.running(self.runs_dir):
            try:
                record = runs.load_run(found.run_dir)
                config = validate(record.config, str(found.run_dir / runs.CONFIG))
            except DamtuiError:
                continue
            # elapsed counts from the current process's start, as for a run started in this app
            self.post_message(msg.LiveRunFound(found.run_dir, config, found.started))
            return

    def on_live_run_found(self, message: msg.LiveRunFound) -> None:
        if self.session is not None:
            return
        self._sessions += 1
        since = max(0.0, time.time() - message.started)
        self.session = ss.Session(self._sessions, message.config, "", started_at=self.clock() - since,
                                  run_dir=str(message.run_dir))
        self._follow(self.session)
        self.refresh_bindings()
        if isinstance(self._shown_screen(), LaunchScreen):
            self.action_monitor()
        self.notify(f"{markup(message.run_dir.name)} is still training (started from damtui earlier): shown live",
                    timeout=6)

    # ------------------------------------------------------------------ quitting
    async def action_quit(self) -> None:
        """With a run training, ask: leave it running (default), stop it (resumable), or stay."""
        s = self.session
        if s is None or not s.training:
            self.exit()
            return
        if isinstance(self.screen, QuitScreen):  # ctrl+q again: the default answer
            self.screen.dismiss("leave")
            return
        self.push_screen(QuitScreen(s.run_id, outlives=s.process is None or s.process.outlives), self._quit)

    def _quit(self, answer: str | None) -> None:
        s = self.session
        if answer == "stop" and s is not None:
            s.request_cancel()
            try:
                self._stop(s)
            except DamtuiError as err:
                self.notify(f"cannot stop it: {err}", severity="error", timeout=10)
                return
        if answer in ("stop", "leave"):
            self.quit_choice = answer
            self.exit()

    def exit(self, *args: Any, **kwargs: Any) -> None:
        self._leave()  # before the follow worker is waited for at shutdown
        super().exit(*args, **kwargs)

    def _leave(self) -> None:
        """Stop following; the run's own process trains on (an in-process engine cannot: it stops)."""
        s = self.session
        if s is not None:
            s.leaving.set()
            if s.process is not None:
                s.process.detach()

    def on_unmount(self) -> None:
        self._leave()

    def on_key(self, event: Key) -> None:
        """A letter that reaches the app unhandled while a text field has the focus was routed to
        the screen shown before a switch (`r` `/` `bg3` typed fast): give it to that field."""
        focused = self.focused
        if event.is_printable and isinstance(focused, (Input, TextArea)):
            event.stop()
            focused.post_message(Key(event.key, event.character))

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

    def action_trash(self) -> None:
        from damtui.tui.screens.trash import TrashScreen

        if not isinstance(self.screen, TrashScreen):
            self.push_screen(TrashScreen())

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
            if self.session.training:
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
        yield SystemCommand("Trash", "Runs deleted with D; U restores one", self.action_trash)
        yield SystemCommand("Help", "Keys and concepts", self.action_help)
        yield from super().get_system_commands(screen)


def run_app(
    runs_dir: Path | str | None = None, data_root: Path | str | None = None, **kwargs: Any
) -> None:
    """Open the app; returns when the user quits.

    SIGTERM and SIGHUP (the SSH connection dropped) close the app like ctrl+q -> leave running: a
    run being trained is its own process and trains on; `damtui` shows it again.
    kwargs go to DamtuiApp (engine, devices, clock, poll_interval, start, export_dir, trainer).
    """
    import asyncio
    import signal

    app = DamtuiApp(runs_dir, data_root, **kwargs)

    def quit_on_signal(signum: int, frame: Any) -> None:
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
    try:
        if app.quit_choice == "stop" and s is not None:
            print(f"damtui: asked {s.run_id} to stop after its current batch; it is marked cancelled and"
                  f" `damtui train --resume {s.run_id}` (or R in damtui) continues it", flush=True)
        elif app.quit_choice == "leave" and s is not None:
            print(f"damtui: {s.run_id} is still training; `damtui` shows it live again,"
                  f" `damtui runs log {s.run_id}` prints its log", flush=True)
        if os.environ.get("DAMTUI_DEBUG") and s is not None and s.detail:
            print(s.detail)
    except OSError:  # the terminal is gone (SIGHUP)
        pass
