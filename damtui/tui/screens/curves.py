"""Curves of one run: ROC and precision-recall of the test scores at its result epoch, the
confusion matrices at 0.5 and at the validation threshold, per-label test AUCs for multi-label
sets, and the reliability diagram of both stages (pretrain, and a fine-tune at its own best epoch)
with their validation thresholds and ECE (damtui.analysis.calibration): where AUCM shifts the
scores off 0.5. Everything comes from the runs' scores.npz (computed in a worker); a run from
before scores were saved shows "not recorded". Pushed from the run view with `c`.
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

from damtui.analysis import calibration, curves
from damtui.store import results as run_results, runs
from damtui.errors import DamtuiError
from damtui.records import Selected
from damtui.text import markup
from damtui.tui.format import short_run_id
from damtui.tui.widgets.key_footer import KeyFooter

NOT_RECORDED = "not recorded (this run was trained before damtui saved its scores)"


class CurvesRead(Message):
    """A run's curves computed in a worker: the view (None when not recorded) and a title line."""

    def __init__(self, view: curves.Curves | None, title: str, sides: tuple[calibration.Side, ...] = ()) -> None:
        super().__init__()
        self.view = view
        self.title = title
        self.sides = sides  # the stages' calibration, pretrain first


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
        sides = tuple(calibration.of_stages(run_results.stage_scores(record), info.result))
    except DamtuiError as err:
        return CurvesRead(None, f"✗ {markup(err)}")
    if scores is None:
        return CurvesRead(None, f"{markup(short_run_id(info.run_id))}: {NOT_RECORDED}", sides)
    stage = info.result.stage if whose == "result" and info.result else info.stage
    return CurvesRead(curves.of(scores, info.dataset),
                      markup(f"{short_run_id(info.run_id)} {info.dataset}: test scores at {stage} epoch"
                             f" {scores.epoch} ({whose})"), sides)


SIDE_COLORS = ("cyan", "orange")  # pretrain, fine-tune: the same in the plot and in its legend


def calibration_text(sides: tuple[calibration.Side, ...], narrow: bool = False) -> str:
    """The reliability plot's legend: per stage its ECE, validation threshold and share of test
    scores above 0.5 (what ACC at 0.5 calls positive), beside the share of label 1. `narrow`:
    ECE only (a multi-label set's thresholds are per label; the legend heads its per-label list)."""
    if narrow:
        rows = ["calibration (pooled)"] + [f"[{c}]━[/] {markup(s.short):<8} " + (
            f"ECE {s.reliability.ece:.3f}" if s.reliability else "not recorded") for s, c in zip(sides, SIDE_COLORS)]
        return "\n".join(rows)
    rows = ["calibration  ECE   thr  >0.5"]
    for side, color in zip(sides, SIDE_COLORS):
        r = side.reliability
        cells = (f"{r.ece:5.3f} " + (f"{side.threshold:5.3f}" if side.threshold is not None else "  -  ")
                 + f" {r.above_half:4.0%}") if r else "not recorded"
        rows.append(f"[{color}]━[/] {markup(side.short):<8} {cells}")
    shown = [s.reliability for s in sides if s.reliability]
    if shown:
        rows.append(f"label 1: {shown[0].positive_share:.0%}" + ("  *answer" if len(sides) > 1 else ""))
    return "\n".join(rows)


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
        self.sides: tuple[calibration.Side, ...] = ()

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("reading the run's scores…", id="curves-title")
        with Horizontal(id="curves-plots"):
            yield PlotextPlot(id="roc-plot")
            yield PlotextPlot(id="pr-plot")
            yield PlotextPlot(id="calibration-plot")
        with Horizontal(id="curves-tables"):
            yield Static("", id="confusion-05", classes="confusion")
            yield Static("", id="confusion-thr", classes="confusion")
            yield Static("", id="calibration", classes="confusion")
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
        self.sides = message.sides
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
        self._plot("#pr-plot", v.pr if v else ([], []), v.pr_title if v else "PR: not recorded",
                   "recall", "precision")
        c05 = "\n".join(v.confusion_05.lines()) if v else "confusion at 0.5:\nnot recorded"
        cthr = "\n".join(v.confusion_thr.lines()) if v else "confusion at val threshold:\nnot recorded"
        self.query_one("#confusion-05", Static).update(c05)
        self.query_one("#confusion-thr", Static).update(cthr)
        self._draw_calibration()
        multilabel = bool(v and v.multilabel)
        self.query_one("#calibration", Static).update(calibration_text(self.sides))
        self.query_one("#calibration").display = not multilabel  # there, it heads the per-label list
        self.query_one("#per-label-box").display = multilabel
        if v and v.multilabel:
            w = max(len(n) for n, _ in v.per_label)
            self.query_one("#per-label", Static).update(f"{calibration_text(self.sides, narrow=True)}\ntest AUC {v.auc:.3f} = mean of\n"
                                                        + "\n".join(f"{n:<{w}} {a:.3f}" for n, a in v.per_label))

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

    def _draw_calibration(self) -> None:
        """Mean score against the share of label 1 per bin, one line per stage, the diagonal of
        perfect calibration, and each stage's validation threshold as a vertical line."""
        widget = self.query_one("#calibration-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        shown = [(s, c) for s, c in zip(self.sides, SIDE_COLORS) if s.reliability is not None]
        drawn = any(s.threshold is not None for s, _ in shown)
        plt.title(("reliability, | val thr" if drawn else "reliability (pooled)") if shown else "reliability: not recorded")
        plt.xlabel("mean score")
        plt.ylabel("share of 1")
        if shown:
            plt.plot([0, 1], [0, 1], color="gray", marker="dot")
        for side, color in shown:
            filled = side.reliability.filled
            plt.plot([b.mean_score for b in filled], [b.positive_rate for b in filled], color=color, marker="braille")
            if side.threshold is not None:
                plt.vline(side.threshold, color)
        plt.xlim(0, 1)
        plt.ylim(0, 1.02)
        widget.refresh()

    def action_back(self) -> None:
        self.app.pop_screen()
