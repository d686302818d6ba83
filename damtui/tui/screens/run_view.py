"""One saved run: its facts, charts and epoch table; a run still being written is followed live.

Following: every poll reads only the metrics appended since the last byte offset
(runs.read_metrics) and re-reads the status every few polls until the run is no longer running.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Header, Static

from damtui import config as cfgmod
from damtui import runs
from damtui.errors import DamtuiError
from damtui.records import METRICS, best_index
from damtui.tui.format import duration, short_preset, short_run_id, status_text, timestamp
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.run_panel import RunPanel

STATUS_EVERY = 3  # polls between status re-reads while following
RESUMABLE = (runs.CANCELLED, runs.CRASHED, runs.FAILED)


class RunViewScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "run"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("g", "cycle_chart", "Chart"),
        Binding("1", "chart('auc')", "AUC", show=False),
        Binding("2", "chart('acc')", "ACC", show=False),
        Binding("3", "chart('loss')", "loss", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("R", "resume", "Resume"),
    ]

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.record: runs.RunRecord | None = None
        self.rows: list[dict] = []
        self.metrics_offset = 0
        self.following = False
        self._polls = 0
        self._timer = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("", id="run-facts")
        yield Static("", id="run-message", classes="message-line")
        yield RunPanel()
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_reload()
        self._timer = self.set_interval(self.app.poll_interval, self._poll)

    # ------------------------------------------------------------------ data
    def action_reload(self) -> None:
        try:
            self.record = runs.load_run(self.path)
        except DamtuiError as err:
            self._message(f"✗ {err}", "-error")
            return
        self.rows, self.metrics_offset = list(self.record.metrics), self.record.metrics_offset
        self.following = self.record.info.status == runs.RUNNING
        self._show()

    def _poll(self) -> None:
        if not self.following or self.record is None:
            return
        self._polls += 1
        new, self.metrics_offset = runs.read_metrics(self.path, self.metrics_offset)
        changed = bool(new)
        self.rows += new
        if new or self._polls % STATUS_EVERY == 0:
            try:
                record = runs.load_run(self.path)
            except DamtuiError:
                return
            self.record = record
            if record.info.status != runs.RUNNING:
                self.following = False
                more, self.metrics_offset = runs.read_metrics(self.path, self.metrics_offset)
                self.rows += more
            changed = True
        if changed:
            self._show()

    # ------------------------------------------------------------------ drawing
    def _show(self) -> None:
        rec = self.record
        if rec is None:
            return
        info = rec.info
        i = best_index(self.rows)
        best = self.rows[i] if i is not None else None
        live = "  ● following live" if self.following else ""
        lines = [
            f"{info.run_id}",
            f"{status_text(info.status)}{live}  {info.dataset} {info.stage}"
            f"  preset {short_preset(info.preset, info.dataset, info.stage)}  seed {info.seed}"
            + (f"  from {short_run_id(Path(info.from_run).name)}" if info.from_run else ""),
            f"epochs {len(self.rows)}/{info.epochs_planned}  started {timestamp(info.started)}"
            f"  time {duration(info.duration_s)}  {rec.runtime.get('device', '')}",
        ]
        if best is not None:
            val = METRICS["val_auc"]
            lines.append(f"best {val.label} {val.format(best.val_auc)} @ ep {best.epoch}; there: " + "  ".join(
                f"{METRICS[k].label} {METRICS[k].format(best.value(k))}" for k in ("test_auc", "test_acc")))
            lines.append(f"{METRICS['test_acc_thr'].label} {METRICS['test_acc_thr'].format(best.test_acc_thr)}")
        if info.answer is not None and info.answer.stage != info.stage:
            lines.append(f"two-stage answer: {info.answer.describe()}")
        self.query_one("#run-facts", Static).update("\n".join(lines))
        if (
            info.message
            and info.message != info.status
            and info.status in (runs.FAILED, runs.CANCELLED)
        ):
            self._message(
                f"{status_text(info.status)}: {info.message}",
                "-error" if info.status == runs.FAILED else "-warning",
            )
        elif info.status == runs.DAMAGED:
            self._message(
                f"{status_text(info.status)}: {info.message}; it is not resumed or rewritten",
                "-error",
            )
        elif info.status == runs.CRASHED:
            self._message(
                "! crashed: the process writing this run is gone; R resumes it", "-warning"
            )
        else:
            self._message("", "")
        self.refresh_bindings()
        self.query_one(RunPanel).show(
            self.rows, best.epoch if best else None, info.epochs_planned
        )

    def _message(self, text: str, kind: str) -> None:
        box = self.query_one("#run-message", Static)
        box.update(text)
        for cls in ("-error", "-warning", "-success"):
            box.set_class(cls == kind, cls)
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ actions
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "resume":  # a run that stopped before its last epoch
            rec = self.record
            return rec is not None and rec.info.status in RESUMABLE
        return True

    def action_resume(self) -> None:
        """Continue this run in this app (engine.train(..., resume=path)), on the monitor."""
        rec = self.record
        if rec is None or rec.info.status not in RESUMABLE:
            return
        try:
            config = cfgmod.validate(dict(rec.config), f"{self.path / runs.CONFIG}")
        except DamtuiError as err:
            self._message(f"✗ cannot resume: {err}", "-error")
            return
        self.app.start_training(config, device="auto", resume=self.path)

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_cycle_chart(self) -> None:
        self.query_one(RunPanel).cycle_chart()

    def action_chart(self, chart: str) -> None:
        self.query_one(RunPanel).select_chart(chart)
