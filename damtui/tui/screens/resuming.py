"""`R` on a saved run, the same on the runs list and the run page: a stopped run (cancelled,
crashed, failed) resumes to its planned epochs; a finished one is extended after a dialog asks
for the new epoch count. The app turns the request into a config with resume.resume_config, the
function behind `damtui train --resume RUN [--epochs N]`. `X` stops a run that is training (in
another process too: `nohup damtui train`, a sweep, an earlier app) the way Ctrl+C does."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.binding import Binding
from textual.screen import Screen

from damtui.errors import DamtuiError
from damtui.store import runs
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui.screens.dialogs import ConfirmScreen, EpochsScreen

RESUMABLE = (runs.CANCELLED, runs.CRASHED, runs.FAILED)

# one key, two actions: check_action enables the one that fits, so the footer names it
RESUME_BINDINGS = [
    Binding("R", "resume", "Resume"),
    Binding("R", "extend", "Extend"),
    Binding("X", "stop_run", "Stop run"),
]


class ResumeActions:
    """Mixed into a Screen that shows saved runs; it says which run `R` is about."""

    def resume_target(self) -> runs.RunInfo | None:
        raise NotImplementedError

    def resume_check(self, action: str) -> bool | None:
        """check_action's answer for the two R actions (None for other actions)."""
        info = self.resume_target()
        if action == "resume":
            return info is not None and info.status in RESUMABLE
        if action == "extend":
            return info is not None and info.status == runs.FINISHED
        if action == "stop_run":
            return info is not None and info.status == runs.RUNNING
        return None

    def action_resume(self) -> None:
        """Continue a stopped run in this app, on the monitor."""
        assert isinstance(self, Screen)
        info = self.resume_target()
        if info is None or info.status not in RESUMABLE or self.app.training_busy():
            return
        self.post_message(msg.ResumeRun(info.path))

    def action_extend(self) -> None:
        """Ask for a larger epoch count, then continue the finished run to it."""
        assert isinstance(self, Screen)
        info = self.resume_target()
        if info is None or info.status != runs.FINISHED or self.app.training_busy():
            return
        screen = self

        def answer(epochs: int | None) -> None:
            if epochs:
                screen.post_message(msg.ResumeRun(info.path, epochs))

        self.app.push_screen(EpochsScreen(info.run_id, info.epochs_done), answer)

    def action_stop_run(self) -> None:
        """Ask, then stop the highlighted run like Ctrl+C: after its batch, cancelled, resumable."""
        assert isinstance(self, Screen)
        info = self.resume_target()
        if info is None or info.status != runs.RUNNING:
            return
        screen = self
        s = getattr(self.app, "session", None)
        # the run the app follows is stopped through the session, as x on the monitor does
        own = s is not None and s.training and Path(s.run_dir).resolve() == info.path.resolve()

        def answer(yes: bool | None) -> None:
            if yes and own:
                screen.app.cancel_training()
            elif yes:
                screen._stop_elsewhere(info.path)

        self.app.push_screen(ConfirmScreen(
            f"Stop {markup(info.run_id)}?",
            f"It is trained by process {info.pid}. Like Ctrl+C there, it stops after its current batch, is"
            " marked cancelled and keeps its last checkpoint, so R resumes it.",
            yes="Stop it", no="Keep training"), answer)

    @work(thread=True, group="stop-run", exit_on_error=False)
    def _stop_elsewhere(self, path: Path) -> None:
        """Worker: signal the run's live writer (damtui.store.stopping checks it is that process)."""
        from damtui.store.stopping import stop_writer

        assert isinstance(self, Screen)
        try:
            pid = stop_writer(path)
        except DamtuiError as err:
            self.app.call_from_thread(self.app.notify, f"not stopped: {markup(err)}", severity="error", timeout=10)
            return
        self.app.call_from_thread(self.app.notify, f"asked process {pid} to stop {markup(path.name)} after its batch",
                                  timeout=6)
