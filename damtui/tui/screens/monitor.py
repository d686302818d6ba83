"""Monitor screen: the run the app is training, live. Renders from the app's Session."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Header, ProgressBar, Static

from damtui.records import METRICS
from damtui.tui import messages as msg
from damtui.tui import session as ss
from damtui.tui.format import duration, eta, short_preset, status_text
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.widgets.gpu_line import GpuLine
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.run_panel import RunPanel


def status_lines(s: ss.Session, now: float) -> tuple[str, str]:
    c = s.config
    preset = short_preset(c.preset, c.dataset, c.stage)
    device = s.device or s.device_request
    first = f"{status_text(s.state)}  {c.dataset} {c.stage}  preset {preset}  {device}"
    parts = [f"epoch {s.current_epoch}/{s.epochs}", f"elapsed {duration(s.elapsed(now))}"]
    best = s.best_row
    if best is not None:
        val, test = METRICS["val_auc"], METRICS["test_auc"]
        parts.append(f"best {val.label} {val.format(best.val_auc)} @ ep {s.best_epoch}")
        parts.append(f"{test.label} {test.format(best.test_auc)}")
    return first, "  ".join(parts)


def run_eta(s: ss.Session) -> float | None:
    """Seconds left in the run: this epoch's ETA plus the mean epoch time for the ones after."""
    p = s.progress
    times = [r.epoch_s for r in s.rows if r.epoch_s is not None]
    if p is None or not times:
        return None
    return max(0.0, p.eta_s) + max(0, s.epochs - p.epoch) * (sum(times) / len(times))


def set_text(box: Static, text: str, layout: bool = True) -> None:
    """Static.update lays the whole screen out again (and so re-renders the epoch table) even for
    the same text; while a run streams most updates repeat the text, so skip those."""
    if box.content != text:
        box.update(text, layout=layout)


def progress_text(s: ss.Session) -> str:
    p = s.progress
    if p is None:
        return "loading data…" if s.state == ss.STARTING else ""
    text = f"ep {p.epoch} batch {p.batch}/{p.batches}  {p.images_per_s:,.0f} img/s"
    done = bool(s.rows) and s.rows[-1].epoch == p.epoch
    if p.batch >= p.batches and not done and not s.ended:
        return text + "  evaluating…"
    text += f"  ETA {eta(p.eta_s)}"
    left = run_eta(s)
    if left is not None and not s.ended and s.epochs > p.epoch:
        text += f" (run {eta(left)})"
    return text


class MonitorScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "monitor"
    BINDINGS = [
        Binding("x", "cancel_run", "Cancel run"),
        Binding("R", "resume", "Resume"),
        Binding("g", "cycle_chart", "Chart"),
        Binding("1", "chart('auc')", "AUC", show=False),
        Binding("2", "chart('acc')", "ACC", show=False),
        Binding("3", "chart('loss')", "loss", show=False),
        Binding("escape", "back", "Back"),
    ]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("", id="monitor-status")
        with Horizontal(id="progress-row"):
            yield ProgressBar(total=None, show_eta=False, id="batch-progress")
            yield Static("", id="progress-text")
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
        if kind in ("batch", "all", "started", "ended"):
            bar = self.query_one("#batch-progress", ProgressBar)
            p = s.progress
            if s.ended and s.state == ss.FINISHED:
                bar.update(total=1, progress=1)
            elif p is not None:
                bar.update(total=p.batches, progress=p.batch)
            # its size is fixed by the stylesheet (1 row, 1fr): no layout pass per batch
            set_text(self.query_one("#progress-text", Static), progress_text(s), layout=False)
        if kind in ("epoch", "started", "all", "ended"):
            self.query_one(RunPanel).show(s.rows, s.best_epoch, s.epochs)
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
                text, kind = f"✗ run failed: {s.message}", "-error"
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
                text = (f"✓ finished: {result.describe() if result else 'no epoch scored'}"
                        "   (n new run, r runs)")
                kind = "-success"
            if s.ended and s.run_dir:
                text += f"\nrun folder: {s.run_dir}"
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

    def action_cycle_chart(self) -> None:
        self.query_one(RunPanel).cycle_chart()

    def action_chart(self, chart: str) -> None:
        self.query_one(RunPanel).select_chart(chart)

    def action_back(self) -> None:
        s = self.session
        if s is not None and not s.done:
            self.notify("training continues in the background; m returns here", timeout=3)
        self.app.pop_screen()
