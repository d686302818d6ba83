"""Runs screen: every run in the runs dir, sortable, filterable, refreshed while it is open."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.reactive import reactive
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Header, Input, Static

from damtui.analysis import groups as seed_groups
from damtui.store import runs
from damtui.records import METRICS
from damtui.text import markup, shown
from damtui.tui import messages as msg
from damtui.tui.format import clip, duration, short_preset, short_run_id, status_text, timestamp
from damtui.tui.screens.manage import MANAGE_BINDINGS, ManageActions, name_and_tags
from damtui.tui.screens import run_groups
from damtui.tui.screens.resuming import RESUME_BINDINGS, ResumeActions
from damtui.tui.widgets.key_footer import KeyFooter

STATUS_STYLE = {
    runs.RUNNING: "bold cyan",
    runs.FINISHED: "green",
    runs.FAILED: "bold red",
    runs.CANCELLED: "yellow",
    runs.CRASHED: "bold magenta",
    runs.DAMAGED: "bold red reverse",
}

# a run's result (a fine-tune's two-stage answer, else its best epoch): these metrics of it
RESULT_KEYS = ("val_auc", "test_auc", "test_acc")
# (key, header, sort key, default descending); the run's name (or short id) second, so that two runs
# of a group read apart at 80 columns, with the seed beside it
COLUMNS: tuple[tuple[str, str, Callable[[runs.RunInfo], Any], bool], ...] = (
    ("sel", " ", lambda r: 0, False),
    ("run", "run", lambda r: (r.notes.name or short_run_id(r.run_id)).lower(), False),
    ("dataset", "dataset", lambda r: r.dataset, False),
    ("stage", "stage", lambda r: r.stage, False),
    ("status", "status", lambda r: r.status, False),
    ("epochs", "ep", lambda r: (r.epochs_done, r.epochs_planned), True),
    ("seed", "seed", lambda r: r.seed, False),
    *((k, METRICS[k].label, lambda r, k=k: _n(r.result.value(k) if r.result else None), True)
      for k in RESULT_KEYS),
    ("duration", "time", lambda r: r.duration_s, True),
    ("started", "started", lambda r: (r.started, r.run_id), True),
    ("preset", "preset", lambda r: r.preset, False),
    ("tags", "tags", lambda r: " ".join(r.notes.tags), False),
)
SORTABLE = [c[0] for c in COLUMNS if c[0] != "sel"]
OPTIONAL_COLUMNS = [c[0] for c in COLUMNS if c[0] not in ("sel", "run")]  # `f` shows or hides these
NAME_WIDTH = 22  # the run column's cells at most: the full name is on the line under the table
FILTER_FIELDS = ("dataset", "stage", "status", "preset", "run", "name", "tag")


def _n(v: float | None) -> float:
    return -1.0 if v is None else float(v)


def _field(info: runs.RunInfo, name: str) -> str:
    if name in ("name", "tag"):
        return info.notes.name if name == "name" else " ".join(info.notes.tags)
    return info.run_id if name == "run" else str(getattr(info, name, ""))


def matches(info: runs.RunInfo, query: str) -> bool:
    """Every word must match: `word` in dataset/stage/status/preset/id, `key:word` in that one,
    `#word` in the tags (as the list shows them)."""
    for word in query.lower().split():
        if word.startswith("#"):
            if word == "#":  # half typed: filters nothing out yet
                continue
            word = "tag:" + word[1:]
        key, sep, value = word.partition(":")
        if sep and key in FILTER_FIELDS:
            if value not in _field(info, key).lower():
                return False
        elif not any(word in _field(info, f).lower() for f in FILTER_FIELDS):
            return False
    return True


def sort_runs(found: list[runs.RunInfo], column: str, descending: bool) -> list[runs.RunInfo]:
    key = next(c[2] for c in COLUMNS if c[0] == column)
    return sorted(found, key=lambda r: (key(r), r.run_id), reverse=descending)


def row_cells(info: runs.RunInfo, selected: bool) -> list[Any]:
    """One cell per COLUMNS entry."""
    return [
        Text("✓" if selected else " ", style="bold"),
        Text(clip(shown(info.notes.name or short_run_id(info.run_id)), NAME_WIDTH)),
        Text(shown(info.dataset)),  # text, not markup: a hand-edited config may hold anything
        Text(shown(info.stage)),
        Text(status_text(info.status), style=STATUS_STYLE.get(info.status, "")),
        "-" if info.status == runs.DAMAGED else f"{info.epochs_done}/{info.epochs_planned}",
        Text(str(info.seed), justify="right"),
        *(Text(METRICS[k].format(info.result.value(k) if info.result else None), justify="right")
          for k in RESULT_KEYS),
        Text(duration(info.duration_s) if info.started else "-", justify="right"),
        timestamp(info.started),
        Text(shown(short_preset(info.preset, info.dataset, info.stage))),  # dataset and stage are beside it
        Text(shown(" ".join(f"#{t}" for t in info.notes.tags))),
    ]


class RunsTable(DataTable):
    """The runs list: enter opens the highlighted run (named in the footer); home and end go to
    the first and last run (a row cursor has no columns to move along)."""

    BINDINGS = [
        Binding("enter", "select_cursor", "Open"),
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]


class RunsScreen(ManageActions, ResumeActions, Screen):
    TITLE = "damtui"
    SUB_TITLE = "runs"
    AUTO_FOCUS = "#runs-table"  # only when nothing has the focus: `r /` typed fast stays in the filter
    BINDINGS = [
        Binding("space", "toggle", "Select"),
        *RESUME_BINDINGS,
        *MANAGE_BINDINGS,
        Binding("c", "compare", "Compare"),
        Binding("w", "sweeps", "Sweeps", show=False),  # in ? Help and the palette: the 80-column footer is full
        Binding("g", "group", "Group"),
        Binding("slash", "filter", "Filter"),
        Binding("s", "sort", "Sort", show=False),
        Binding("z", "reverse", "Reverse sort", show=False),
        Binding("f", "columns", "Columns", show=False),
        Binding("a", "select_all", "Select all", show=False),
        Binding("u", "unselect_all", "Clear selection", show=False),
        Binding("escape", "back", "Clear filter / back", show=False),
    ]

    grouped: reactive[bool] = reactive(False, init=False)  # fold runs that differ only by seed
    hidden: reactive[frozenset[str]] = reactive(frozenset, init=False)  # columns hidden with `f`

    def __init__(self) -> None:
        super().__init__()
        self.groups: list[seed_groups.SeedGroup] = []
        self.expanded: set[str] = set()  # keys of the seed groups shown open
        self.all_runs: list[runs.RunInfo] = []
        self.ignored: list[str] = []
        self.error = ""
        self.shown: list[runs.RunInfo] = []
        self.selected: list[str] = []  # run ids, in the order they were selected
        self.sort_column = "started"
        self.descending = True
        self._drawn: list[tuple] = []
        self._cursor_row = 0  # where the cursor was: a deleted run's neighbour takes its place
        self.loaded = False

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Input(
            placeholder="/ filter: words match dataset stage status preset id name tags; status:running #good",
            id="runs-filter",
            compact=True,
        )
        yield RunsTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Static("loading runs…", id="runs-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        self._add_columns()
        self.refresh_runs()
        self.set_interval(self.app.poll_interval * 2, self.refresh_runs)

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def _columns(self) -> list[str]:
        return [c[0] for c in COLUMNS if c[0] not in self.hidden]

    def _add_columns(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        table.clear(columns=True)
        for key, label, _, _ in COLUMNS:
            if key not in self.hidden:
                table.add_column(label, key=key)
        self._drawn = []
        self._label_headers()

    def watch_hidden(self) -> None:
        self._add_columns()
        self._draw()

    # ------------------------------------------------------------------ data
    def refresh_runs(self) -> None:
        self._list_runs()

    @work(thread=True, exclusive=True, group="runs")
    def _list_runs(self) -> None:
        self.post_message(msg.list_runs(self.app.runs_dir))

    def on_runs_listed(self, message: msg.RunsListed) -> None:
        self.all_runs, self.ignored, self.error = message.runs, message.ignored, message.error
        known = {r.run_id for r in self.all_runs}
        self.selected = [rid for rid in self.selected if rid in known]
        self.groups = seed_groups.group_runs(self.all_runs, min_size=2)
        self.loaded = True
        self._draw()

    # ------------------------------------------------------------------ drawing
    def _draw(self) -> None:
        query = self.query_one("#runs-filter", Input).value
        self.shown = sort_runs(
            [r for r in self.all_runs if matches(r, query)], self.sort_column, self.descending
        )
        table = self.query_one("#runs-table", DataTable)
        sel = set(self.selected)
        if self.grouped:
            entries = run_groups.entries(self.shown, self.groups, self.expanded,
                                         lambda r: row_cells(r, r.run_id in sel), RESULT_KEYS)
        else:
            entries = [(r.run_id, row_cells(r, r.run_id in sel)) for r in self.shown]
        shown = [i for i, c in enumerate(COLUMNS) if c[0] not in self.hidden]
        entries = [(key, [cells[i] for i in shown]) for key, cells in entries]
        rows = [tuple(str(c) for c in cells) for _, cells in entries]
        keys = [key for key, _ in entries]
        if keys == [str(k.value) for k in table.rows] and len(rows) == len(self._drawn):
            # the same rows: change the cells that changed, so the scroll (across and down) stays put
            columns = self._columns()
            for (key, cells), new, old in zip(entries, rows, self._drawn):
                for column, cell, a, b in zip(columns, cells, new, old):
                    if a != b:
                        table.update_cell(key, column, cell, update_width=True)
            self._drawn = rows
        elif rows != self._drawn or keys != [str(k.value) for k in table.rows]:
            current, at, scroll_x = self.current_run_id(), self._cursor_row, table.scroll_x
            table.clear()
            for key, cells in entries:
                table.add_row(*cells, key=key)
            self._drawn = rows
            if current in keys:
                table.move_cursor(row=keys.index(current), animate=False)
            elif keys:  # the highlighted run went (deleted, filtered out): its neighbour, not the top
                table.move_cursor(row=min(at, len(keys) - 1), animate=False)
            table.scroll_x = scroll_x
        self._show_info()
        self.refresh_bindings()  # R follows the highlighted run's status

    def _label_headers(self) -> None:
        table = self.query_one("#runs-table", DataTable)
        arrow = "▼" if self.descending else "▲"
        for key, label, _, _ in COLUMNS:
            column = table.columns.get(key)  # type: ignore[call-overload]
            if column is not None:
                column.label = Text(f"{label}{arrow}" if key == self.sort_column else label)
        table.refresh()

    def _show_info(self) -> None:
        order = "↓" if self.descending else "↑"
        parts = [
            f"{len(self.shown)} of {len(self.all_runs)} runs in {markup(self.app.runs_dir)}",
            f"sorted by {self.sort_column} {order}",
        ]
        if self.selected:
            parts.append(f"{len(self.selected)} selected")
        if self.grouped:  # the groups the filter shows, not every group in the runs dir
            keys = [k.removeprefix(run_groups.GROUP_PREFIX) for k in self._row_keys()
                    if k.startswith(run_groups.GROUP_PREFIX)]
            shown_open = sum(1 for k in keys if k in self.expanded)
            folded = len(keys) - shown_open
            parts.append(f"{folded} seed group{'' if folded == 1 else 's'} folded"
                         + (f", {shown_open} open" if shown_open else "") + " (g)")
        if self.error:
            parts.append(f"✗ {markup(self.error)}")
        if self.ignored:
            names = markup(", ".join(self.ignored[:3])) + (" …" if len(self.ignored) > 3 else "")
            noun = "entry" if len(self.ignored) == 1 else "entries"
            parts.append(f"ignored {len(self.ignored)} non-run {noun}: {names}")
        if self.loaded and not self.all_runs and not self.error:
            parts.append("no runs yet: n starts one")
        lines = [" · ".join(parts)]
        current = self._info(self.current_run_id() or "")
        if current is not None:
            extra = [
                markup(current.run_id),
                f"started {timestamp(current.started)}",
                f"preset {markup(current.preset or '-')}",
            ]
            if current.from_run:
                extra.append(f"from {markup(Path(current.from_run).name)}")
            if current.message:
                extra.append(markup(current.message))
            extra += [markup(name_and_tags(current, "").strip()), markup(current.notes.first_line)]
            lines.append(" · ".join(e for e in extra if e))
        elif (group := self._group(self.current_run_id() or "")) is not None:
            lines.append(run_groups.group_line(group, seed_groups.pretrain_group(self.groups, group)))
        self.query_one("#runs-info", Static).update("\n".join(lines))

    def _row_keys(self) -> list[str]:
        return [str(k.value) for k in self.query_one("#runs-table", DataTable).rows]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._cursor_row = event.cursor_row
        self._show_info()
        self.refresh_bindings()

    def current_run_id(self) -> str | None:
        table = self.query_one("#runs-table", DataTable)
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key
        except Exception:
            return None
        return str(key.value)

    def _info(self, run_id: str) -> runs.RunInfo | None:
        return next((r for r in self.all_runs if r.run_id == run_id), None)

    def _group(self, row_key: str) -> seed_groups.SeedGroup | None:
        """The seed group of a group row's key (None for a run's row)."""
        if not row_key.startswith(run_groups.GROUP_PREFIX):
            return None
        key = row_key.removeprefix(run_groups.GROUP_PREFIX)
        return next((g for g in self.groups if g.key == key), None)

    def action_group(self) -> None:
        self.grouped = not self.grouped

    def watch_grouped(self, grouped: bool) -> None:
        self._draw()

    # ------------------------------------------------------------------ actions
    def resume_target(self) -> runs.RunInfo | None:
        return self._info(self.current_run_id() or "")

    manage_target = resume_target

    def runs_changed(self) -> None:
        self.refresh_runs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("delete_run", "rename_run", "edit_notes"):  # a run's row, not a group's
            return self.manage_target() is not None
        allowed = self.resume_check(action)
        return True if allowed is None else allowed

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "runs-filter":
            self._draw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            self.set_focus(self.query_one("#runs-table"))

    def action_filter(self) -> None:
        # at once, not after the queued keys (Widget.focus waits a turn): `/bg3` typed fast all lands here
        self.set_focus(self.query_one("#runs-filter", Input))

    def action_back(self) -> None:
        """escape steps back one: out of the filter (clearing it), then back to the screen `r`
        was pressed on (the launch mode: the new-run screen, or the monitor over it)."""
        box = self.query_one("#runs-filter", Input)
        if box.value or box.has_focus:
            box.value = ""
            self.set_focus(self.query_one("#runs-table"))
        else:
            self.app.switch_mode("launch")

    def action_columns(self) -> None:
        """Choose the columns shown (for this session of the app)."""
        from damtui.tui.screens.dialogs import ColumnsScreen

        labels = {c[0]: c[1] for c in COLUMNS}
        choices = [(labels[k], k, k not in self.hidden) for k in OPTIONAL_COLUMNS]

        def answer(shown: list[str] | None) -> None:
            if shown is not None:
                self.hidden = frozenset(k for k in OPTIONAL_COLUMNS if k not in shown)

        self.app.push_screen(ColumnsScreen(choices), answer)

    def action_sort(self) -> None:
        i = SORTABLE.index(self.sort_column)
        self.sort_column = SORTABLE[(i + 1) % len(SORTABLE)]
        self.descending = next(c[3] for c in COLUMNS if c[0] == self.sort_column)
        self._label_headers()
        self._draw()

    def action_reverse(self) -> None:
        self.descending = not self.descending
        self._label_headers()
        self._draw()

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        key = str(event.column_key.value)
        if key not in SORTABLE:
            return
        if key == self.sort_column:
            self.descending = not self.descending
        else:
            self.sort_column = key
            self.descending = next(c[3] for c in COLUMNS if c[0] == key)
        self._label_headers()
        self._draw()

    def action_toggle(self) -> None:
        """Select or unselect the highlighted run; the cursor stays on it."""
        rid = self.current_run_id()
        if rid is None:
            return
        group = self._group(rid)
        if group is not None:  # a group row selects (or unselects) all of its shown members
            ids = [r.run_id for r in self.shown if r.run_id in group.run_ids]
            if all(i in self.selected for i in ids):
                self.selected = [i for i in self.selected if i not in ids]
            else:
                self.selected += [i for i in ids if i not in self.selected]
        elif rid in self.selected:
            self.selected.remove(rid)
        else:
            self.selected.append(rid)
        self._draw()

    def action_select_all(self) -> None:
        for r in self.shown:
            if r.run_id not in self.selected:
                self.selected.append(r.run_id)
        self._draw()

    def action_unselect_all(self) -> None:
        self.selected.clear()
        self._draw()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        group = self._group(str(event.row_key.value))
        if group is not None:
            self.expanded ^= {group.key}
            self._draw()
            return
        info = self._info(str(event.row_key.value))
        if info is not None:
            from damtui.tui.screens.run_view import RunViewScreen

            self.app.push_screen(RunViewScreen(info.path))

    def action_sweeps(self) -> None:
        from damtui.tui.screens.sweeps import SweepsScreen

        self.app.push_screen(SweepsScreen())

    def action_compare(self) -> None:
        chosen = [self._info(rid) for rid in self.selected]
        paths = [i.path for i in chosen if i is not None]
        if len(paths) < 2:
            self.notify("select two or more runs with space, then press c", severity="warning")
            return
        from damtui.tui.screens.compare import CompareScreen

        self.app.push_screen(CompareScreen(paths))
