"""A sweep's page: its trials live (validation first, test after), the best value so far, and the
winner's hyper-parameters. Enter on a trial opens its first run.

A trial is a search trial, or a configuration of a grid's last stage (damtui.sweeps.report.Trial).
Its score is the sweep's metric (validation AUC unless the search says val_acc), the mean over its
finished seeds at each run's result; test metrics are at the same epochs, shown, never chosen on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from damtui.text import markup, shown
from damtui.records import METRICS
from damtui.tui.screens.sweep_table import STATE_STYLE, Row, SweepTable, fill_table, runs_text
from damtui.tui.widgets.chart_plan import Line, Plan, x_axis
from damtui.tui.widgets.charts import PlanPlot
from damtui.tui.widgets.key_footer import KeyFooter

METRIC_COLUMNS = ("val_auc", "val_acc", "test_auc", "test_acc")  # validation first: it is what chose
TRIAL_STYLE = {"complete": "green", "running": "bold cyan", "pruned": "yellow", "failed": "bold red",
               "cancelled": "yellow", "interrupted": "yellow", "waiting": "dim", "not started": "dim"}


@dataclass
class SweepRead(Message):
    """A worker read one sweep: its group (report.sweep_groups), trials and metric."""

    group: dict[str, Any] | None
    trials: list[Any]
    metric: str
    search: dict[str, Any] | None
    error: str = ""


def trial_rows(trials: list[Any], best: set[int]) -> list[Row]:
    """Number, state, the validation then test metrics (mean over seeds), seeds, its values."""
    rows: list[Row] = []
    for t in trials:
        mark = "★" if t.number in best else " "
        n = t.metrics["val_auc"].n
        rows.append((str(t.number), [
            Text(f"{mark}{t.number}", style="bold" if t.number in best else ""),
            Text(t.state, style=TRIAL_STYLE.get(t.state, "")),
            *(Text(t.metrics[k].format(3) if k == "val_auc" else t.metrics[k].format(3).split(" ")[0],
                   justify="right") for k in METRIC_COLUMNS),
            Text(f"{n}/{len(t.runs)}", justify="right"),
            Text(shown(t.label)),  # values from the sweep's files: text, not markup
        ]))
    return rows


def best_plan(trials: list[Any], metric: str) -> Plan:
    """Each completed trial's value by trial number, and the best so far as a line (Optuna's
    optimization history)."""
    from damtui.sweeps.report import best_so_far

    points = best_so_far(trials)
    title = f"{METRICS[metric].label} by trial"
    if not points:
        return Plan(title, (), (), (0.0, 1.0), (0, 1), (0.0, 1.0), note="no trial has finished yet")
    xs = tuple(t.number for t, _ in points)
    values = tuple(float(t.value) for t, _ in points)
    best = tuple(b for _, b in points)
    xlim, xt = x_axis(list(xs))
    lo, hi = min(values), max(values)
    pad = max((hi - lo) * 0.15, 0.002)  # trials of a search differ in the third decimal: show that
    ylim = (max(0.0, lo - pad), min(1.0, hi + pad))
    top = max(points, key=lambda p: p[1])[0]
    return Plan(title, (Line(xs, values, "gray", "o"), Line(xs, best, "green", "+")),
                (("trial", "gray", "o"), ("best so far", "green", "+")),
                xlim, xt, ylim, note=f"best: trial {top.number}, {top.value:.4f}")


def winner_text(trials: list[Any], metric: str) -> str:
    """The winner (of each dataset): its score, its test metrics at the same epochs, its values."""
    from damtui.sweeps.report import winners

    found = winners(trials)
    if not found:
        return "winner: none yet (no trial has finished)"
    lines = []
    for w in found:
        ds = f" ({w.dataset})" if len(found) > 1 else ""
        lines.append(f"[b]winner{ds}: trial {w.number}[/b] · {METRICS[metric].label} {w.metrics[metric].format(3)}"
                     f" · then test AUC {w.metrics['test_auc'].format(3)}, ACC {w.metrics['test_acc'].format(3)}"
                     f" · {len(w.runs)} seed(s)")
        lines.append("  " + markup(w.label))
    return "\n".join(lines)


class SweepPage(Screen):
    """One sweep, followed while it runs."""

    TITLE = "damtui"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    SweepPage #sweep-summary { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    SweepPage #sweep-winner { height: auto; padding: 0 1; }
    SweepPage #sweep-chart { height: 1fr; min-height: 7; max-height: 14; }
    SweepPage #sweep-trials { height: 1fr; min-height: 4; }
    SweepPage #sweep-info { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    """

    def __init__(self, sweep: str) -> None:
        super().__init__()
        self.sweep = sweep
        self.sub_title = f"sweep {sweep}"
        self.trials: list[Any] = []
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static("loading…", id="sweep-summary")
        yield Static("", id="sweep-winner")
        yield PlanPlot(id="sweep-chart")
        yield SweepTable(id="sweep-trials", cursor_type="row", zebra_stripes=True)
        yield Static("", id="sweep-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("trial", "state", *(METRICS[k].short for k in METRIC_COLUMNS), "seeds", "values")
        self.read_sweep()
        self.set_interval(self.app.poll_interval * 2, self.read_sweep)
        table.focus()

    @work(thread=True, exclusive=True, group="sweep-page")
    def read_sweep(self) -> None:
        from damtui import sweeps
        from damtui.errors import DamtuiError
        from damtui.store import runs
        from damtui.sweeps.report import sweep_metric, sweep_trials

        try:
            infos, _ = runs.list_runs(self.app.runs_dir)
            plan = sweeps.load_plans(self.app.runs_dir).get(self.sweep, {})
            group = next((g for g in sweeps.sweep_groups(infos, {self.sweep: plan} if plan else {})
                          if g["sweep"] == self.sweep), None)
            trials = sweep_trials(infos, plan, self.sweep)
        except (OSError, DamtuiError) as err:
            self.post_message(SweepRead(None, [], "val_auc", None, str(err)))
            return
        search = plan.get("search") if isinstance(plan.get("search"), dict) else None
        self.post_message(SweepRead(group, trials, sweep_metric(plan), search))

    def on_sweep_read(self, message: SweepRead) -> None:
        from damtui.sweeps.report import winners

        self.trials = message.trials
        self.loaded = True
        best = {w.number for w in winners(message.trials)}
        fill_table(self.query_one(DataTable), trial_rows(message.trials, best))
        self.query_one("#sweep-summary", Static).update(self._summary(message))
        self.query_one("#sweep-winner", Static).update(winner_text(message.trials, message.metric))
        self.query_one(PlanPlot).draw(best_plan(message.trials, message.metric))
        self._show_info()

    def _summary(self, message: SweepRead) -> Text:
        g, s = message.group, message.search
        if message.error:
            return Text(shown(f"! {message.error}"), style="bold red")
        if g is None:
            return Text(f"no sweep {self.sweep!r} in {self.app.runs_dir}")
        state = g.get("state") or "-"
        out = Text(f"{self.sweep} ", style="bold")
        out.append(state, style=STATE_STYLE.get(state, ""))
        ended = sum(t.state in ("complete", "pruned", "failed") for t in message.trials)
        if s is not None:
            out.append(f" · {s.get('method')} · {ended}/{s.get('trials')} trials")
            if s.get("prune") not in (None, "none"):
                out.append(f" ({sum(t.state == 'pruned' for t in message.trials)} pruned, {s.get('prune')})")
        else:
            out.append(f" · grid · {ended}/{len(message.trials)} configurations")
        out.append(f" · runs {runs_text(g)}")
        if g.get("message"):
            out.append(f"\n{g['message']}", style="italic")
        return out

    def current(self) -> Any | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return next((t for t in self.trials if str(t.number) == key), None)

    def _show_info(self) -> None:
        t = self.current()
        if t is None:
            self.query_one("#sweep-info", Static).update("")
            return
        text = f"trial {t.number}" + (f": {t.message}" if t.message else "")
        text += f" · {t.dataset} · runs {', '.join(t.runs) or '-'}"
        self.query_one("#sweep-info", Static).update(markup(text))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.loaded:
            self._show_info()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_open_run(self) -> None:
        t = self.current()
        if t is None:
            return
        path = next((self.app.runs_dir / n for n in t.runs if (self.app.runs_dir / n).is_dir()), None)
        if path is None:
            self.notify(f"trial {t.number} has no run yet", severity="warning")
            return
        from damtui.tui.screens.run_view import RunViewScreen

        self.app.push_screen(RunViewScreen(path))
