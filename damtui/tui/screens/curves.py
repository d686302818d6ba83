"""Curves of one run: ROC and precision-recall of the test scores at its result epoch, the
confusion matrices at 0.5 and at the validation threshold, per-label test AUCs for multi-label
sets. Everything comes from the run's scores.npz (damtui.analysis.curves computes it, in a worker); a run
from before scores were saved shows "not recorded". Pushed from the run view with `c`.
"""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Header, Static
from textual_plotext import PlotextPlot

from damtui.analysis import curves
from damtui.store import results as run_results, runs
from damtui.errors import DamtuiError
from damtui.records import Selected
from damtui.text import markup
from damtui.tui.format import short_run_id
from damtui.tui.widgets.key_footer import KeyFooter

NOT_RECORDED = "not recorded (this run was trained before damtui saved its scores)"


class CurvesRead(Message):
    """A run's curves computed in a worker: the view (None when not recorded) and a title line."""

    def __init__(self, view: curves.Curves | None, title: str) -> None:
        super().__init__()
        self.view = view
        self.title = title


class ResultRead(Message):
    """A run's result and its stage's best with their test intervals (run_results), read in a worker."""

    def __init__(self, result: Selected | None, best: Selected | None = None) -> None:
        super().__init__()
        self.result = result
        self.best = best


def result_line(result: Selected | None, best: Selected | None = None) -> str:
    """The run view's lines of the result's test numbers with their 95% intervals, and of the
    stage's own best when that is another epoch ('' where none was recorded)."""
    lines = []
    other = best is not None and (result is None or (best.stage, best.epoch) != (result.stage, result.epoch))
    for s in (result, best if other else None):
        if s is not None and s.intervals:
            lines.append(f"test 95% CI, {s.stage}@{s.epoch}: AUC {s.text('test_auc')}  ACC {s.text('test_acc')}")
    return "\n".join(lines)


def read_curves(path: Path) -> CurvesRead:
    """The curves of a run's result epoch: its scores, or for a fine-tune answered by its
    pretrain's epoch the pretrain's scores; the stage's own best when the result's are missing."""
    try:  # a damaged scores.npz is said in one line, never a screen that waits for ever
        record = runs.load_run(path)
        info = record.info
        if info.status == runs.DAMAGED:
            raise DamtuiError(info.message)
        scores, whose = run_results.result_scores(record), "result"
        if scores is None:
            scores, whose = runs.load_scores(path), "this stage's best"
    except DamtuiError as err:
        return CurvesRead(None, f"✗ {markup(err)}")
    if scores is None:
        return CurvesRead(None, f"{markup(short_run_id(info.run_id))}: {NOT_RECORDED}")
    stage = info.result.stage if whose == "result" and info.result else info.stage
    return CurvesRead(curves.of(scores, info.dataset),
                      markup(f"{short_run_id(info.run_id)} {info.dataset}: test scores at {stage} epoch"
                             f" {scores.epoch} ({whose})"))


class CurvesScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "curves"
    BINDINGS = [Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    CurvesScreen #curves-title { height: auto; padding: 0 1; }
    CurvesScreen #curves-plots { height: 1fr; min-height: 8; }
    CurvesScreen #curves-plots PlotextPlot { width: 1fr; }
    CurvesScreen #curves-tables { height: auto; max-height: 45%; }
    CurvesScreen .confusion { width: auto; height: auto; padding: 0 2 0 1; }
    CurvesScreen #per-label-box { width: 1fr; height: auto; max-height: 16; }
    """

    view: reactive[curves.Curves | None] = reactive(None, init=False)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("reading the run's scores…", id="curves-title")
        with Horizontal(id="curves-plots"):
            yield PlotextPlot(id="roc-plot")
            yield PlotextPlot(id="pr-plot")
        with Horizontal(id="curves-tables"):
            yield Static("", id="confusion-05", classes="confusion")
            yield Static("", id="confusion-thr", classes="confusion")
            with VerticalScroll(id="per-label-box"):
                yield Static("", id="per-label")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="curves", exit_on_error=False)
    def _read(self) -> None:
        self.post_message(read_curves(self.path))

    def on_curves_read(self, message: CurvesRead) -> None:
        self.query_one("#curves-title", Static).update(message.title)
        self.view = message.view
        if message.view is None:
            self._draw()
        self.loaded = True

    def watch_view(self) -> None:
        self._draw()

    def _draw(self) -> None:
        v = self.view
        self._plot("#roc-plot", v.roc if v else ([], []), v.roc_title if v else "ROC: not recorded",
                   "FPR", "TPR", diagonal=True)
        self._plot("#pr-plot", v.pr if v else ([], []), v.pr_title if v else "precision-recall: not recorded",
                   "recall", "precision")
        c05 = "\n".join(v.confusion_05.lines()) if v else "confusion at 0.5:\nnot recorded"
        cthr = "\n".join(v.confusion_thr.lines()) if v else "confusion at val threshold:\nnot recorded"
        self.query_one("#confusion-05", Static).update(c05)
        self.query_one("#confusion-thr", Static).update(cthr)
        self.query_one("#per-label-box").display = bool(v and v.multilabel)
        if v and v.multilabel:
            w = max(len(n) for n, _ in v.per_label)
            self.query_one("#per-label", Static).update("test AUC per label\n" + "\n".join(f"{n:<{w}} {a:.3f}" for n, a in v.per_label))

    def _plot(self, selector: str, xy: tuple[list[float], list[float]], title: str, xlabel: str, ylabel: str,
              diagonal: bool = False) -> None:
        widget = self.query_one(selector, PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(title)
        plt.xlabel(xlabel)
        plt.ylabel(ylabel)
        if xy[0]:
            if diagonal:
                plt.plot([0, 1], [0, 1], color="gray", marker="dot")
            plt.plot(*xy, color="green", marker="braille")
        plt.xlim(0, 1)  # clear_data resets the limits: set them after every clear
        plt.ylim(0, 1.02)
        widget.refresh()

    def action_back(self) -> None:
        self.app.pop_screen()
