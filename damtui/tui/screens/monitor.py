"""Monitor screen: the run the app is training, live. Renders from the app's Session."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static

from damtui.train.health import saturation_warning
from damtui.records import METRICS
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui import session as ss
from damtui.store.progress import Progress, of_event
from damtui.tui.format import duration, short_preset, status_text
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.widgets.gpu_line import GpuLine
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.progress_line import ProgressLine
from damtui.tui.widgets.run_panel import CHART_BINDINGS, ChartActions, RunPanel


def status_lines(s: ss.Session, now: float) -> tuple[str, str]:
    c = s.config
    preset = short_preset(c.preset, c.dataset, c.stage)
    device = s.device or s.device_request
    first = markup(f"{status_text(s.state)}  {c.dataset} {c.stage}  preset {preset}  {device}")
    parts = [f"epoch {s.current_epoch}/{s.epochs}", f"elapsed {duration(s.elapsed(now))}"]
    best = s.best_row
    if best is not None:
        val, test = METRICS["val_auc"], METRICS["test_auc"]
        parts.append(f"best {val.label} {val.format(best.val_auc)} @ ep {s.best_epoch}")
        parts.append(f"{test.label} {test.format(best.test_auc)}")
    return first, "  ".join(parts)


def set_text(box: Static, text: str, layout: bool = True) -> None:
    """Static.update lays the whole screen out again (and so re-renders the epoch table) even for
    the same text; while a run streams most updates repeat the text, so skip those."""
    if box.content != text:
        box.update(text, layout=layout)


def session_progress(s: ss.Session) -> Progress | None:
    """The session's newest batch event as the progress record every front end renders."""
    if s.progress is None:
        return None
    return of_event(s.progress, s.epochs, s.sizes.get("val", 0) + s.sizes.get("test", 0))


class MonitorScreen(ChartActions, Screen):
    TITLE = "damtui"
    SUB_TITLE = "monitor"
    BINDINGS = [
        Binding("x", "cancel_run", "Cancel run"),
        Binding("R", "resume", "Resume"),
        *CHART_BINDINGS,
        Binding("escape", "back", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("", id="monitor-status")
        yield ProgressLine(id="progress-row")
        yield Static("", id="monitor-message", classes="message-line")
        yield GpuLine(id="monitor-gpu")
        yield RunPanel()
        yield KeyFooter()

    def on_mount(self) -> None:
        # immediate: redrawn in the handler that applied the event, not one message later
        self.app.session_signal.subscribe(self, self.session_changed, immediate=True)
        self.set_interval(1.0, self._tick)
        self.session_changed("all")

    def on_unmount(self) -> None:
        self.app.session_signal.unsubscribe(self)

    @property
    def session(self) -> ss.Session | None:
        return self.app.session

    def _tick(self) -> None:
        if self.session is not None and not self.session.ended:
            self._show_status()

    def _show_status(self) -> None:
        s = self.session
        if s is None:
            set_text(self.query_one("#monitor-status", Static), "no run yet: press n for a new run")
            return
        first, second = status_lines(s, self.app.clock())
        set_text(self.query_one("#monitor-status", Static), f"{first}\n{second}")

    def session_changed(self, kind: str) -> None:
        """The app's session_signal: it applied an engine event to the session."""
        s = self.session
        if s is None:
            self._show_status()
            return
        if kind in ("batch", "all", "started", "epoch", "ended"):
            self.query_one(ProgressLine).show(session_progress(s), s.rows, s.state)
        if kind in ("epoch", "started", "all", "ended"):
            self.query_one(RunPanel).show(s.rows, s.best_epoch, s.epochs, s.config.dataset)
        if kind == "batch":
            self._show_status_cheap()
        else:
            self._show_status()
            self._show_message()
            self.refresh_bindings()

    def _show_status_cheap(self) -> None:
        """Status text changes with each batch only via the epoch number; redraw when it moves."""
        s = self.session
        if s is not None and getattr(self, "_epoch_shown", None) != s.current_epoch:
            self._epoch_shown = s.current_epoch
            self._show_status()

    def _show_message(self) -> None:
        s = self.session
        box = self.query_one("#monitor-message", Static)
        text, kind = "", ""
        if s is not None:
            if s.state == ss.FAILED:
                text, kind = f"✗ run failed: {markup(s.message)}", "-error"
            elif s.state == ss.CANCELLING:
                text, kind = "stopping after the current batch…", "-warning"
            elif s.state == ss.CANCELLED:
                text, kind = (
                    f"■ cancelled after epoch {s.rows[-1].epoch if s.rows else 0}; "
                    "R resumes it (here or on the runs screen)",
                    "-warning",
                )
            elif s.state == ss.FINISHED:
                result = s.summary.result if s.summary else None
                described = result.describe() if result else "no epoch scored"
                text = "✓ finished: " + described.replace(": ", "\n  ", 1)  # two lines within 80 columns
                kind = "-success"
            if s.ended and s.run_dir:
                text += f"\nrun folder: {markup(s.run_dir)}"
            warning = saturation_warning(s.rows, s.config.stage)
            if warning and not text:
                text, kind = warning, "-warning"
        set_text(box, text)
        for cls in ("-error", "-warning", "-success"):
            box.set_class(cls == kind, cls)
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "cancel_run":  # only while a run trains
            s = self.session
            return s is not None and not s.ended and not s.done
        if action == "resume":  # the stopped run, once its worker has let go of the folder
            s = self.session
            return s is not None and s.done and s.state == ss.CANCELLED and bool(s.run_dir)
        return True

    def action_resume(self) -> None:
        s = self.session
        if s is not None and s.done and s.state == ss.CANCELLED and s.run_dir:
            self.post_message(msg.ResumeRun(Path(s.run_dir)))

    def action_cancel_run(self) -> None:
        s = self.session
        if s is None or s.ended or s.done:
            self.notify("no run is training", severity="warning")
            return
        if s.state == ss.CANCELLING:
            self.notify("already stopping", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if yes:
                self.app.cancel_training()

        self.app.push_screen(
            ConfirmScreen(
                "Cancel this run?",
                "Training stops after the current batch. The run is marked cancelled and keeps "
                "its last checkpoint, so it can be resumed.",
                yes="Cancel run",
                no="Keep training",
            ),
            answer,
        )

    def action_back(self) -> None:
        s = self.session
        if s is not None and not s.done:
            self.notify("training continues in the background; m returns here", timeout=3)
        self.app.pop_screen()
