"""Sweeps screen: one row per sweep (its state, runs, trials and best configuration so far);
enter opens the sweep's page (damtui.tui.screens.sweep_page).

The table is refreshed in place while sweeps run: rows are updated, not cleared, so the cursor
and the scroll position stay where the user put them (a cleared table snapped back to the top
every poll).
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

from damtui.records import METRICS
from damtui.text import markup, shown
from damtui.tui.screens.sweep_table import STATE_STYLE, Row, SweepTable, fill_table, runs_text
from damtui.tui.widgets.key_footer import KeyFooter

@dataclass
class SweepsListed(Message):
    """A worker read the runs dir: every sweep's group (report.sweep_groups) and trials."""

    groups: list[dict[str, Any]]
    trials: dict[str, list[Any]]  # sweep -> report.Trial list
    error: str = ""


def sweep_rows(groups: list[dict[str, Any]], trials: dict[str, list[Any]]) -> list[Row]:
    """One row per sweep: name, state, trials, runs, its best trial's val and test AUC, its values."""
    from damtui.sweeps.report import winners

    rows: list[Row] = []
    for g in groups:
        state = g.get("state") or "-"
        mine = trials.get(g["sweep"], [])
        done = sum(t.state in ("complete", "pruned", "failed") for t in mine)
        budget = g["trials"][1] if g.get("trials") else len(mine)
        best = winners(mine)
        top = max(best, key=lambda t: t.value) if best else None
        rows.append((g["sweep"], [
            Text(shown(g["sweep"]), style="bold"),  # names from the plans' files: text, not markup
            Text(state, style=STATE_STYLE.get(state, "")),
            Text(f"{done}/{budget}", justify="right"),
            Text(METRICS["val_auc"].format(top.metrics["val_auc"].mean) if top else "-", justify="right"),
            Text(METRICS["test_auc"].format(top.metrics["test_auc"].mean) if top else "-", justify="right"),
            runs_text(g),
            Text(shown((f"{top.dataset} " if len(best) > 1 else "") + (top.label if top else "-"))),
        ]))
    return rows


class SweepsScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "sweeps"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[dict[str, Any]] = []
        self.loaded = False
        self.refreshed = 0  # listings shown so far

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield SweepTable(id="sweeps-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading sweeps…", id="sweeps-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("sweep", "state", "trials", "best val AUC", "its test AUC", "runs", "best values")
        self.refresh_groups()
        self.set_interval(self.app.poll_interval * 2, self.refresh_groups)
        table.focus()

    @work(thread=True, exclusive=True, group="sweeps")
    def refresh_groups(self) -> None:
        from damtui import sweeps
        from damtui.errors import DamtuiError
        from damtui.store import runs
        from damtui.sweeps.report import sweep_trials

        try:
            infos, _ = runs.list_runs(self.app.runs_dir)
            plans = sweeps.load_plans(self.app.runs_dir)
            groups = sweeps.sweep_groups(infos, plans)
            trials = {g["sweep"]: sweep_trials(infos, plans.get(g["sweep"], {}), g["sweep"]) for g in groups}
        except (OSError, DamtuiError) as err:
            self.post_message(SweepsListed([], {}, str(err)))
            return
        self.post_message(SweepsListed(groups, trials))

    def on_sweeps_listed(self, message: SweepsListed) -> None:
        self.groups = message.groups
        self.loaded = True
        self.refreshed += 1
        fill_table(self.query_one(DataTable), sweep_rows(message.groups, message.trials))
        self._show_info(message.error)

    def current(self) -> dict[str, Any] | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
        return next((g for g in self.groups if g["sweep"] == key), None)

    def _show_info(self, error: str = "") -> None:
        info = self.query_one("#sweeps-info", Static)
        if error:
            info.update(f"! {markup(error)}")
            return
        if not self.groups:
            info.update("no sweeps in this runs dir: start one with `damtui sweep FILE` (docs/SWEEPS.md)")
            return
        lines = [f"{len(self.groups)} sweeps · best: validation AUC over seeds at each run's result; test"
                 " AUC at the same epochs · enter opens a sweep"]
        g = self.current()
        if g is not None and g.get("message"):
            lines.append(markup(f"{g['sweep']} {g['state']}: {g['message']}"))
        info.update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self.loaded:
            self._show_info()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        from damtui.tui.screens.sweep_page import SweepPage

        g = self.current()
        if g is not None:
            self.app.push_screen(SweepPage(g["sweep"]))
