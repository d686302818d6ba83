"""`R` on a saved run, the same on the runs list and the run page: a stopped run (cancelled,
crashed, failed) resumes to its planned epochs; a finished one is extended after a dialog asks
for the new epoch count. The app turns the request into a config with resume.resume_config, the
function behind `damtui train --resume RUN [--epochs N]`."""

from __future__ import annotations

from textual.binding import Binding
from textual.screen import Screen

from damtui.store import runs
from damtui.tui import messages as msg
from damtui.tui.screens.dialogs import EpochsScreen

RESUMABLE = (runs.CANCELLED, runs.CRASHED, runs.FAILED)

# one key, two actions: check_action enables the one that fits, so the footer names it
RESUME_BINDINGS = [
    Binding("R", "resume", "Resume"),
    Binding("R", "extend", "Extend"),
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
