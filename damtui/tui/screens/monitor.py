"""Monitor screen: the run the app follows, live (it trains in its own process). Renders from the
app's Session."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static

from damtui.records import METRICS, EpochRow
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui import session as ss
from damtui.tui.format import duration, short_preset, status_text
from damtui.tui.screens.dialogs import ConfirmScreen
from damtui.tui.widgets.gpu_line import GpuLine
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.progress_line import ProgressLine
from damtui.tui.widgets.chart_plan import Pretrain
from damtui.tui.widgets.run_panel import CHART_BINDINGS, ChartActions, PretrainRead, RunPanel


def status_lines(s: ss.Session, now: float, pretrain: Sequence[EpochRow] = ()) -> tuple[str, str]:
    """The monitor's two status lines. Elapsed counts the epochs before a resume too. A fine-tune
    shows ONE answer: the best validation epoch of both stages (its `pretrain` rows up to the
    checkpoint it started from), named by stage, as the finished line below names it."""
    c = s.config
    preset = short_preset(c.preset, c.dataset, c.stage)
    device = s.device or s.device_request
    first = markup(f"{status_text(s.state)}  {c.dataset} {c.stage}  preset {preset}  {device}")
    before = sum(r.epoch_s or 0.0 for r in s.rows if r.epoch <= s.start_epoch)  # trained before a resume
    parts = [f"epoch {s.current_epoch}/{s.epochs}", f"elapsed {duration(before + s.elapsed(now))}"]
    best, stage = s.best_row, ""
    if c.stage == "finetune" and pretrain:
        answer = Pretrain(tuple(pretrain)).answer_of(s.rows, s.best_epoch)
        if answer is not None and answer[0] == "pretrain":
            best, stage = pretrain[-1], "pretrain "
        elif best is not None:
            stage = "finetune "
    if best is not None:
        val, test = METRICS["val_auc"], METRICS["test_auc"]
        label = "answer" if stage else "best"
        parts.append(f"{label} {val.label} {val.format(best.val_auc)} @ {stage}ep {best.epoch}")
        parts.append(f"{test.label} {test.format(best.test_auc)}")
    return first, "  ".join(parts)


def set_text(box: Static, text: str, layout: bool = True) -> None:
    """Static.update lays the whole screen out again (and so re-renders the epoch table) even for
    the same text; while a run streams most updates repeat the text, so skip those. Text whose
    lines keep their lengths (the elapsed time ticking) takes the room it had: no layout pass."""
    old = str(box.content)
    if old != text:
        same_shape = [len(line) for line in old.splitlines()] == [len(line) for line in text.splitlines()]
        box.update(text, layout=layout and not same_shape)


class MonitorScreen(ChartActions, Screen):
    TITLE = "damtui"
    SUB_TITLE = "monitor"
    BINDINGS = [
        Binding("X", "cancel_run", "Cancel run"),
        Binding("R", "resume", "Resume"),
        *CHART_BINDINGS,
        Binding("escape", "back", "Back"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.pretrain: list[EpochRow] = []  # a fine-tune's source epochs, read once in a worker
        self._pretrain_of: Path | None = None

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
        """The elapsed time, when no event has redrawn the status in the last second (progress
        arrives about once a second: then the status is redrawn in the same frame as it), and the
        ETA, which counts down from the progress record's time while an epoch is evaluated (no
        progress comes then: it stood still, `evaluating… ETA 0:09` for 6 s)."""
        s = self.session
        if s is not None and not s.ended and time.monotonic() - self._status_at >= 0.9:
            self._show_status()
            self.query_one(ProgressLine).show(s.progress, s.rows, s.state, time.time())

    _status_at = 0.0  # time.monotonic() of the last status redraw

    def _show_status(self) -> None:
        self._status_at = time.monotonic()
        s = self.session
        if s is None:
            set_text(self.query_one("#monitor-status", Static), "no run yet: press n for a new run")
            return
        first, second = status_lines(s, self.app.clock(), self.pretrain)
        set_text(self.query_one("#monitor-status", Static), f"{first}\n{second}")

    def session_changed(self, kind: str) -> None:
        """The app's session_signal: it applied an engine event to the session."""
        s = self.session
        if s is None:
            self._show_status()
            return
        if kind in ("batch", "all", "started", "epoch", "ended"):
            self.query_one(ProgressLine).show(s.progress, s.rows, s.state, time.time())
        if s.from_run is not None and self._pretrain_of != s.from_run:
            self._pretrain_of = s.from_run
            self._read_pretrain(s.from_run)
        if kind in ("epoch", "started", "all", "ended"):
            self._show_panel(s)
        self._show_status()
        if kind != "batch":
            self._show_message()
            self.refresh_bindings()
            self.query_one(GpuLine).sample()  # hidden at once when the run ends, not at the next timer

    def _show_panel(self, s: ss.Session) -> None:
        pretrain = Pretrain(tuple(self.pretrain)) if self.pretrain and s.config.stage == "finetune" else None
        self.query_one(RunPanel).show(s.rows, s.best_epoch, s.epochs, s.config.dataset, pretrain)

    @work(thread=True, exclusive=True, group="monitor-pretrain", exit_on_error=False)
    def _read_pretrain(self, source: Path) -> None:
        """Worker: the source's epochs up to its best (the checkpoint the fine-tune starts from)."""
        from damtui.store.results import pretrain_rows

        self.post_message(PretrainRead(pretrain_rows(source)))

    def on_pretrain_read(self, message: PretrainRead) -> None:
        self.pretrain = list(message.rows)
        s = self.session
        if s is not None:
            self._show_panel(s)
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
            from damtui.train.health import saturation_warning  # numpy: once a run shows, not at start

            warning = saturation_warning(s.rows, s.config.stage)
            if warning and not text:
                text, kind = warning, "-warning"
        set_text(box, text)
        for cls in ("-error", "-warning", "-success"):
            box.set_class(cls == kind, cls)
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        allowed = self.chart_check(action)
        if allowed is not None:
            return allowed
        if action == "cancel_run":  # only while a run trains
            s = self.session
            return s is not None and s.training
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
        if s is None or not s.training:
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
