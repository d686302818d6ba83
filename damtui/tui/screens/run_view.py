"""One saved run: its facts, charts and epoch table, always as its files are now.

The page re-reads the run in a worker when it is shown and whenever its files change (a stat of
them each poll; runs.folder_stamp). A run being written is followed live; one resumed elsewhere,
or by this app, shows its new state the next time the page is looked at.
"""

from __future__ import annotations

import time
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Static
from textual.worker import get_current_worker

from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.store.progress import Progress
from damtui.records import METRICS, EpochRow, best_index
from damtui.text import markup
from damtui.tui import messages as msg
from damtui.tui.format import duration, short_preset, short_run_id, status_text, timestamp
from damtui.tui.screens.manage import MANAGE_BINDINGS, ManageActions, name_and_tags
from damtui.tui.screens.curves import CurvesScreen, ResultRead, result_line
from damtui.tui.screens.mistakes import MistakesScreen
from damtui.tui.screens.resuming import RESUME_BINDINGS, ResumeActions
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.progress_line import ProgressLine
from damtui.tui.widgets.chart_plan import Pretrain
from damtui.tui.widgets.run_panel import CHART_BINDINGS, ChartActions, PretrainRead, RunPanel

STATUS_EVERY = 3  # polls between reads of a running run whose files did not change (crash check)


class GainRead(Message):
    """A fine-tune's paired comparison with its own pretrain, as one line (read in a worker)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class RunViewScreen(ChartActions, ResumeActions, ManageActions, Screen):
    TITLE = "damtui"
    SUB_TITLE = "run"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        *CHART_BINDINGS,
        Binding("ctrl+r", "reload", "Reload", show=False),
        Binding("o", "log", "Log"),
        Binding("p", "curves", "ROC/PR"),
        Binding("x", "mistakes", "Mistakes"),
        *RESUME_BINDINGS,
        *(b for b in MANAGE_BINDINGS if b.action != "delete_run"),  # rename, tags and notes
    ]

    record: reactive[runs.RunRecord | None] = reactive(None, init=False)
    error: reactive[str] = reactive("", init=False)
    progress: reactive[Progress | None] = reactive(None, init=False)  # of a followed run
    result_text: reactive[str] = reactive("", init=False)  # the result's 95% intervals (curves.result_line)
    gain_text: reactive[str] = reactive("", init=False)  # a fine-tune against its own pretrain (dam_gain)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._stamp: tuple | None = None
        self._polls = 0
        self._timer = None
        self.pretrain_rows: list[EpochRow] | None = None  # a fine-tune's source epochs, once read

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("", id="run-facts")
        yield Static("", id="run-message", classes="message-line")
        yield ProgressLine(id="run-progress")
        yield RunPanel()
        yield KeyFooter()

    def on_mount(self) -> None:
        self._timer = self.set_interval(self.app.poll_interval, self._poll)

    def on_screen_resume(self) -> None:
        """Shown again (back from another screen or mode): read what the files say now."""
        if self._timer is not None:
            self._timer.resume()
        self.action_reload()

    def on_screen_suspend(self) -> None:
        if self._timer is not None:
            self._timer.pause()

    # ------------------------------------------------------------------ data
    @property
    def rows(self) -> list[dict]:
        return self.record.metrics if self.record is not None else []

    @property
    def following(self) -> bool:
        return self.record is not None and self.record.info.status == runs.RUNNING

    def action_reload(self) -> None:
        self._read(None)

    def _poll(self) -> None:
        self._polls += 1
        force = self.following and self._polls % STATUS_EVERY == 0
        self._read(None if force else self._stamp)
        if self.following:
            self._read_progress()

    @work(thread=True, exclusive=True, group="run-progress", exit_on_error=False)
    def _read_progress(self) -> None:
        """Worker: the followed run's batch progress (the writer replaces it every second)."""
        progress = runs.read_progress(self.path)
        if not get_current_worker().is_cancelled:
            self.post_message(msg.ProgressRead(progress))

    def on_progress_read(self, message: msg.ProgressRead) -> None:
        self.progress = message.progress

    @work(thread=True, exclusive=True, group="run-view", exit_on_error=False)
    def _read(self, known: tuple | None) -> None:
        """Worker: the run's files again, unless their stamp is still `known`."""
        stamp = runs.folder_stamp(self.path)
        if stamp == known:
            return
        try:
            record, error = runs.load_run(self.path, since=self.record), ""
        except DamtuiError as err:
            record, error = None, str(err)
        if not get_current_worker().is_cancelled:
            self.post_message(msg.RunRead(record, stamp, error))

    def on_run_read(self, message: msg.RunRead) -> None:
        self._stamp = message.stamp
        self.error = message.error
        if message.record is not None:
            self.record = message.record
            self._read_result(message.record)
            if self.pretrain_rows is None and message.record.info.stage == "finetune":
                self._read_pretrain(message.record)

    @work(thread=True, exclusive=True, group="run-pretrain", exit_on_error=False)
    def _read_pretrain(self, record: runs.RunRecord) -> None:
        """Worker: the source's epochs, drawn before the fine-tune's own as one curve."""
        from damtui.store import results as run_results

        self.post_message(PretrainRead(run_results.source_rows(record)))

    def on_pretrain_read(self, message: PretrainRead) -> None:
        self.pretrain_rows = message.rows
        self._show()

    @work(thread=True, exclusive=True, group="run-result", exit_on_error=False)
    def _read_result(self, record: runs.RunRecord) -> None:
        """Worker: the result's intervals (summary.json, else computed from scores.npz)."""
        from damtui.store import results as run_results

        self.post_message(ResultRead(run_results.result(record), run_results.best(record)))
        if record.info.stage == "finetune":
            from damtui.analysis import dam_gain

            gain = dam_gain.of_record(record)
            if gain is not None and not get_current_worker().is_cancelled:
                self.post_message(GainRead(f"does DAM help? {gain.line(short=True)}"))

    def on_result_read(self, message: ResultRead) -> None:
        self.result_text = result_line(message.result, message.best)

    def on_gain_read(self, message: GainRead) -> None:
        self.gain_text = message.text

    def watch_result_text(self) -> None:
        self._show()

    def watch_gain_text(self) -> None:
        self._show()

    def watch_record(self) -> None:
        self._show()
        self._show_progress()

    def watch_progress(self) -> None:
        self._show_progress()

    def _show_progress(self) -> None:
        """The followed run's progress line; hidden for a run no process is writing."""
        line = self.query_one("#run-progress", ProgressLine)
        line.set_class(self.following and self.progress is not None, "-shown")
        if self.following:
            line.show(self.progress, self.rows, runs.RUNNING, time.time())

    def watch_error(self, error: str) -> None:
        if error:
            self._message(f"✗ {markup(error)}", "-error")
        else:
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
        lines = [markup(line) for line in (  # names, preset and device come from the run's files
            f"{info.run_id}",
            f"{status_text(info.status)}{live}  {info.dataset} {info.stage}"
            f"  preset {short_preset(info.preset, info.dataset, info.stage)}  seed {info.seed}"
            + (f"  from {short_run_id(Path(info.from_run).name)}" if info.from_run else ""),
            f"epochs {len(self.rows)}/{info.epochs_planned}  started {timestamp(info.started)}"
            f"  time {duration(info.duration_s)}  {rec.runtime.get('device', '')}",
        )]
        val = METRICS["val_auc"]
        if best is not None:
            whose = "fine-tune best" if info.stage == "finetune" else "best"  # not the answer (below)
            lines.append(f"{whose} {val.label} {val.format(best.val_auc)} @ ep {best.epoch}: " + " ".join(
                f"{METRICS[k].short} {METRICS[k].format(best.value(k))}" for k in ("test_auc", "test_acc",
                                                                               "test_acc_thr")))
        answer = info.answer
        if answer is not None and answer.stage != info.stage:  # its test numbers: the 95% CI line below
            lines.append(f"answer (best of both stages): {val.label} {val.format(answer.val_auc)} @ {answer.stage}"
                         f" ep {answer.epoch}" + ("" if self.result_text else ": " + " ".join(
                             f"{METRICS[k].short} {METRICS[k].format(answer.value(k))}"
                             for k in ("test_auc", "test_acc", "test_acc_thr"))))
        if self.result_text:
            lines.append(self.result_text)
        if self.gain_text:
            lines.append(markup(self.gain_text))
        if info.notes:
            lines.append(markup(" · ".join(x for x in (name_and_tags(info, ""), info.notes.first_line) if x.strip())))
        self.query_one("#run-facts", Static).update("\n".join(lines))
        if (
            info.message
            and info.message != info.status
            and info.status in (runs.FAILED, runs.CANCELLED)
        ):
            self._message(
                f"{status_text(info.status)}: {markup(info.message)}",
                "-error" if info.status == runs.FAILED else "-warning",
            )
        elif info.status == runs.DAMAGED:
            self._message(
                f"{status_text(info.status)}: {markup(info.message)}; it is not resumed or rewritten",
                "-error",
            )
        elif info.status == runs.CRASHED:
            self._message(
                "! crashed: the process writing this run is gone; R resumes it", "-warning"
            )
        else:
            self._message("", "")
        pretrain = None
        if self.pretrain_rows:
            answer = (info.answer.stage, info.answer.epoch) if info.answer is not None else None
            pretrain = Pretrain(tuple(self.pretrain_rows), answer)
        self.query_one(RunPanel).show(
            self.rows, best.epoch if best else None, info.epochs_planned, info.dataset, pretrain
        )
        self.refresh_bindings()  # after the panel knows the dataset: b needs benchmark rows

    def _message(self, text: str, kind: str) -> None:
        box = self.query_one("#run-message", Static)
        box.update(text)
        for cls in ("-error", "-warning", "-success"):
            box.set_class(cls == kind, cls)
        box.set_class(bool(text), "-shown")

    # ------------------------------------------------------------------ actions
    def resume_target(self) -> runs.RunInfo | None:
        return self.record.info if self.record is not None else None

    manage_target = resume_target

    def runs_changed(self) -> None:
        self.action_reload()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        for check in (self.resume_check, self.chart_check):
            allowed = check(action)
            if allowed is not None:
                return allowed
        return True

    def action_mistakes(self) -> None:
        self.app.push_screen(MistakesScreen(self.path))

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_curves(self) -> None:
        self.app.push_screen(CurvesScreen(self.path))

    def action_log(self) -> None:
        from damtui.tui.screens.log_view import LogScreen

        self.app.push_screen(LogScreen(self.path))
