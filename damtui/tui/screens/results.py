"""Results screen: the leaderboard (`damtui results`), per dataset the best seed group chosen on
validation, its seeds with their intervals, and the MedMNIST v2 reference rows below it; under the
table, for the highlighted dataset, whether its AUCM fine-tunes beat their own CE pretrains
(damtui.analysis.dam_gain, computed in the worker after the listing)."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Static

from damtui.analysis import leaderboard
from damtui.records import INTERVAL_FMT, METRICS, SELECT_BY
from damtui.text import markup, shown
from damtui.tui import messages as msg
from damtui.tui.format import short_run_id
from damtui.tui.widgets.key_footer import KeyFooter

COLUMNS = ("dataset", "row", *(METRICS[m].short for m in leaderboard.SHOWN), "95% tAUC", METRICS[SELECT_BY].label, "runs")
Row = tuple[str, list[Any], str]  # (key, cells, the line shown under the table when highlighted)


class GainsRead(Message):
    """Per dataset, the "does DAM help" line of its best fine-tune seed group."""

    def __init__(self, lines: dict[str, str]) -> None:
        super().__init__()
        self.lines = lines


def _num(value: float | None, metric: str) -> Text:
    """A seed's number with the 3 decimals of the group's mean ± std above it."""
    text = "-" if value is None else f"{value:{INTERVAL_FMT}}"
    return Text(text, justify="right")


def board_rows(board: list[leaderboard.Entry]) -> list[Row]:
    """A dataset's best group, its seeds, then the paper's rows."""
    out: list[Row] = []
    for e in board:
        g = e.group
        if g is not None:
            out.append((f"{e.dataset}:group", [
                Text(e.dataset, style="bold"), Text(f"damtui {g.stage}", style="bold"),
                *(Text(g.stat(m).format(3), justify="right", style="bold") for m in leaderboard.SHOWN),
                "", Text(g.stat(SELECT_BY).format(3), justify="right"), f"{len(g.finished)} seeds"],
                f"{g.label}: best of {e.candidates} seed group(s) by mean val AUC · runs "
                + ", ".join(short_run_id(r.run_id) for r in g.finished)
                + (f" · {len(g.repeats)} repeat(s) of a seed not averaged" if g.repeats else "")))
            for src, run in g.pairs():
                r = run.result
                if run not in g.finished or r is None:
                    continue
                ids = short_run_id(run.run_id) + (f" ← {short_run_id(src.run_id)}" if src else "")
                out.append((f"{e.dataset}:{run.run_id}", [
                    "", f"  seed {run.seed} {r.stage}@{r.epoch}",
                    *(_num(r.value(m), m) for m in leaderboard.SHOWN),
                    leaderboard.interval_text(r, "test_auc"), _num(r.val_auc, "val_auc"), Text(shown(ids))],
                    f"seed {run.seed}: {run.run_id}" + (f" from {src.run_id}" if src else "")
                    + f" · answer at {r.stage} epoch {r.epoch}"))
        if e.benchmark is not None:
            for row in leaderboard.REFERENCE_ROWS:
                refs = [e.reference(row, m) for m in leaderboard.SHOWN]
                name = next((r.label for r in refs if r is not None), row)
                model = next((r.model for r in refs if r is not None), row)
                out.append((f"{e.dataset}:{row}", [
                    "" if g is not None or row != "resnet18" else e.dataset,
                    # the model of the best cell is named on the line below: the column stays narrow
                    Text("best in paper" if row == "best" else model, style="dim"),
                    *(Text("-" if r is None else f"{r.value:.3f}", justify="right", style="dim") for r in refs),
                    "", "", "paper"], f"{name} · {e.benchmark.source}; {e.benchmark.selection}"))
    return out


class ResultsScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "results"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("ctrl+r", "reload", "Reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.board: list[leaderboard.Entry] = []
        self.details: dict[str, str] = {}
        self.notes: list[str] = []
        self.gains: dict[str, str] | None = None  # dataset -> its "does DAM help" line; None until read

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield DataTable(id="results-table", cursor_type="row", zebra_stripes=True)
        yield Static("reading runs…", id="results-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        table = self.query_one("#results-table", DataTable)
        for name in COLUMNS:
            table.add_column(name, key=name)
        table.focus()
        self.action_reload()

    def action_reload(self) -> None:
        self._list_runs()

    @work(thread=True, exclusive=True, group="results")
    def _list_runs(self) -> None:
        from damtui.analysis import dam_gain

        listed = msg.list_runs(self.app.runs_dir)
        self.post_message(listed)
        gains = dam_gain.by_dataset(listed.runs)
        self.post_message(GainsRead({d: f"{d}: does DAM help? {g.line()}" for d, g in gains.items()}))

    def on_gains_read(self, message: GainsRead) -> None:
        self.gains = message.lines
        self._show_info()

    def on_runs_listed(self, message: msg.RunsListed) -> None:
        self.board = leaderboard.leaderboard(message.runs)
        table = self.query_one("#results-table", DataTable)
        table.clear()
        rows = board_rows(self.board)
        self.details = {key: detail for key, _, detail in rows}
        for key, cells, _ in rows:
            table.add_row(*cells, key=key)
        self.notes = ["best seed group per dataset by mean val AUC at the answer epochs; test read there",
                      "mean ± std over seeds · `damtui results --md FILE` writes it"]
        if message.error:
            self.notes.insert(0, f"✗ {message.error}")
        if not self.board:
            self.notes.insert(0, f"no finished runs in {self.app.runs_dir}")
        self._show_info()

    def _show_info(self) -> None:
        table = self.query_one("#results-table", DataTable)
        key = None
        if table.row_count:
            key = str(table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value)
        lines = [markup(" · ".join(self.notes))] + ([markup(self.details[key])] if key in self.details else [])
        dataset = key.split(":")[0] if key else None
        if self.gains and dataset in self.gains:
            lines.append(markup(self.gains[dataset]))
        self.query_one("#results-info", Static).update("\n".join(lines))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_info()

    def action_back(self) -> None:
        self.app.pop_screen()
