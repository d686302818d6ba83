"""Runs grouped by sweep: progress counts and, per configuration, mean ± std over seeds."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from damtui.text import markup, shown
from damtui.tui.widgets.key_footer import KeyFooter


class SweepsListed(Message):
    def __init__(self, groups: list[dict[str, Any]], error: str = "") -> None:
        super().__init__()
        self.groups, self.error = groups, error


def group_rows(groups: list[dict[str, Any]]) -> list[list[Any]]:
    """Table rows: one line per sweep with its counts, then one per configuration."""
    rows: list[list[Any]] = []
    for g in groups:
        waiting = g.get("waiting")
        counts = f"{g['done']} done  {g['running']} running  {g['failed']} failed" + (
            f"  {waiting} waiting" if waiting is not None else "")
        rows.append([Text(shown(g["sweep"]), style="bold"), Text(counts), "", "", "", ""])
        for c in g["configs"]:  # names and labels from the runs' and plans' files: text, not markup
            rows.append([
                Text(shown(f"  {c['label']}")), Text(shown(f"{c['dataset']} {c['stage']}")), str(c["n"]),
                c["test_auc"].format(3), c["test_acc"].format(3), c["test_acc_thr"].format(3),
            ])
    return rows


class SweepsScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "sweeps"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield DataTable(id="sweeps-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading sweeps…", id="sweeps-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("sweep / configuration", "runs", "seeds", "test AUC", "ACC@0.5", "ACC@val-thr")
        self.refresh_groups()
        self.set_interval(self.app.poll_interval * 2, self.refresh_groups)
        table.focus()

    @work(thread=True, exclusive=True, group="sweeps")
    def refresh_groups(self) -> None:
        from damtui.store import runs
        from damtui import sweeps
        from damtui.errors import DamtuiError

        try:
            infos, _ = runs.list_runs(self.app.runs_dir)
            groups = sweeps.sweep_groups(infos, sweeps.load_plans(self.app.runs_dir))
        except (OSError, DamtuiError) as err:
            self.post_message(SweepsListed([], str(err)))
            return
        self.post_message(SweepsListed(groups))

    def on_sweeps_listed(self, message: SweepsListed) -> None:
        table = self.query_one(DataTable)
        table.clear()
        for row in group_rows(message.groups):
            table.add_row(*row)
        info = self.query_one("#sweeps-info", Static)
        if message.error:
            info.update(f"! {markup(message.error)}")
        elif not message.groups:
            info.update("no sweeps in this runs dir: start one with `damtui sweep FILE` (docs/SWEEPS.md)")
        else:
            info.update(f"{len(message.groups)} sweeps; test metrics at each run's best-validation epoch,"
                        " mean ± std over finished seeds")
