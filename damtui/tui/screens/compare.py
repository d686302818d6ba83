"""Compare screen: overlay one metric of several runs, the config keys that differ and the
summary side by side (best marked), seed groups as mean ± std, export to CSV and Markdown."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Select, Static
from textual.worker import get_current_worker

from damtui.analysis import compare
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.records import METRICS, format_difference
from damtui.text import markup, shown
from damtui.tui.format import clip, short_run_id
from damtui.tui.screens.dialogs import ExportScreen
from damtui.tui.widgets.chart_plan import View, has_references, overlay_chart, reference_metric, references
from damtui.tui.widgets.charts import PlanPlot
from damtui.tui.widgets.key_footer import KeyFooter

COLOURS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "white")
MARKERS = ("o", "x", "+", "*", "#", "@", "%", "&")
IDENTITY_ROWS = tuple(c for c in compare.IDENTITY_COLUMNS if c != "run")
GROUP_WIDTH = 13  # a seed group's mean ± std with 3 decimals


def legend_name(record: runs.RunRecord, width: int = 28) -> str:
    return clip(compare.run_label(record), width)


class CompareTable(DataTable):
    """The comparison table: a column cursor; enter makes the run under it the baseline of the
    paired differences."""

    BINDINGS = [Binding("enter", "select_cursor", "Baseline")]


class CompareScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "compare"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("right_square_bracket", "metric(1)", "Metric", key_display="[ ]"),
        Binding("left_square_bracket", "metric(-1)", "Previous metric", show=False),
        Binding("b", "toggle_refs", "Benchmark"),
        Binding("y", "log_scale", "Log y-axis", show=False),
        Binding("plus,equals_sign", "smooth(1)", "Smooth more", key_display="+", show=False),
        Binding("minus", "smooth(-1)", "Smooth less", key_display="-", show=False),
        Binding("e", "export", "Export CSV+MD"),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    view: reactive[View] = reactive(View, init=False)  # benchmark lines (b), log y (y), smoothing (+ -)
    baseline: reactive[int] = reactive(0, init=False)  # the run the paired differences are against

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.records: list[runs.RunRecord] = []
        self.problems: list[str] = []
        self.rows: list[dict] = []
        self.paired: list[str] = []
        self.loaded = False  # the first read has arrived
        self.intervals_shown = True  # the table's cells have room for their 95% intervals

    @property
    def show_refs(self) -> bool:
        return self.view.show_refs

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        with Horizontal(id="compare-bar"):
            yield Label("Metric")
            yield Select(
                [(METRICS[m].label, m) for m in compare.CURVE_METRICS],
                value="val_auc",
                allow_blank=False,
                compact=True,
                id="metric",
            )
        yield PlanPlot(id="compare-plot")
        yield CompareTable(id="compare-table", cursor_type="column", zebra_stripes=True)
        yield Static("", id="compare-info")
        yield KeyFooter()

    class Read(Message):
        """The runs as a worker read them: records, and one line per run that could not be read."""

        def __init__(self, records: list[runs.RunRecord], problems: list[str], rows: list[dict],
                     paired: list[str]) -> None:
            super().__init__()
            self.records, self.problems, self.rows, self.paired = records, problems, rows, paired

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#compare-table").focus()
        self.set_interval(self.app.poll_interval * 2, self._follow)

    def _follow(self) -> None:
        """Runs still being written are re-read, so their curves grow while this is open."""
        if any(rec.info.status == runs.RUNNING for rec in self.records):
            self.action_reload()

    def action_reload(self) -> None:
        self._read()

    @work(thread=True, exclusive=True, group="compare-read", exit_on_error=False)
    def _read(self) -> None:
        """Worker: the run folders, off the event loop."""
        records, problems = [], []
        for path in self.paths:
            try:
                records.append(runs.load_run(path))
            except DamtuiError as err:
                problems.append(str(err))
        # results with intervals and the paired differences read scores files: here, off the loop
        rows = compare.comparison_rows(records) if records else []
        paired = [f"{short_run_id(rid)} {format_difference(d.diff, d.lo, d.hi, d.resolved)}"
                  for rid, _, d in compare.paired_differences(records, self.baseline)]
        if not get_current_worker().is_cancelled:
            self.post_message(self.Read(records, problems, rows, paired))

    def on_compare_screen_read(self, message: Read) -> None:
        self.records, self.problems = message.records, message.problems
        self.rows, self.paired = message.rows, message.paired
        self.loaded = True
        self._draw_plot()
        self._draw_table()
        self._show_info()
        self.refresh_bindings()  # b: benchmark rows exist only for a MedMNIST set

    def on_resize(self) -> None:
        if self.loaded:
            self._draw_plot()
            self._draw_table()
            self._show_info()

    def watch_baseline(self) -> None:
        self._read()  # the paired differences read the scores again: in the worker

    def on_data_table_column_selected(self, event: DataTable.ColumnSelected) -> None:
        ids = [rec.info.run_id for rec in self.records]
        key = str(event.column_key.value)
        if key in ids:
            self.baseline = ids.index(key)
            self.notify(f"baseline: {markup(short_run_id(key))}", timeout=2)

    @property
    def metric(self) -> str:
        value = self.query_one("#metric", Select).value
        return value if isinstance(value, str) else "val_auc"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "metric":
            self._draw_plot()

    # ------------------------------------------------------------------ plot
    def _draw_plot(self) -> None:
        """The metric of every run over the epochs they have; the legend in the chart's border,
        the benchmark lines (b) on test AUC/ACC when all runs share one MedMNIST set."""
        metric = self.metric
        # the legend shares the title line: each run's name gets its share of the width
        room = (self.size.width or 80) - len(METRICS[metric].label) - 12
        width = max(6, room // max(1, len(self.records)) - 3)
        curves = [(legend_name(rec, width), *compare.curve(rec, metric)) for rec in self.records]
        refs = references(self._dataset(), reference_metric(metric))
        self.query_one("#compare-plot", PlanPlot).draw(
            overlay_chart(curves, metric, COLOURS, MARKERS, refs, view=self.view))

    def _dataset(self) -> str:
        """The one dataset of every run compared ('' when they differ)."""
        flags = {rec.info.dataset for rec in self.records}
        return flags.pop() if len(flags) == 1 else ""

    def watch_view(self) -> None:
        self._draw_plot()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_refs":  # none for synthetic sets or runs of different datasets
            return has_references(self._dataset())
        return True

    def action_toggle_refs(self) -> None:
        self.view = replace(self.view, show_refs=not self.view.show_refs)
        self.notify(f"MedMNIST v2 benchmark lines {'shown' if self.show_refs else 'hidden'} (test AUC/ACC)",
                    timeout=2)

    def action_log_scale(self) -> None:
        self.view = replace(self.view, log_y=not self.view.log_y)
        self.notify(f"y-axis {'log' if self.view.log_y else 'linear'}", timeout=2)

    def action_smooth(self, step: int) -> None:
        self.view = self.view.smoother(step)
        self.notify(f"smoothing {self.view.smoothing:g}" if self.view.smoothing else "no smoothing", timeout=2)

    # ------------------------------------------------------------------ table
    def _draw_table(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        cursor = table.cursor_column
        table.clear(columns=True)
        if not self.records:
            return
        rows = self.rows
        self.intervals_shown = True
        best = compare.best_runs(rows)
        groups = compare.seed_groups(self.records)
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys and k != "run" and k not in compare.INTERVAL_COLUMNS]
        # every run's column within the width: the label column, then an equal share each (a
        # column pads its cells by one on each side; the "*" of the best takes one more)
        label_w = max(len(compare.column_label(k)) for k in keys) + 2
        room = (self.size.width or 80) - label_w - 2 - len(groups) * (GROUP_WIDTH + 2)
        width = max(7, min(22, room // max(1, len(self.records)) - 3))
        table.add_column("", key="key")
        for rec in self.records:
            table.add_column(Text(shown(short_run_id(rec.info.run_id))), key=rec.info.run_id)
        for g in groups:
            table.add_column(f"mean±std n={g['n']}", key=f"group-{g['runs'][0]}")
        diff = [k for k in keys if k not in IDENTITY_ROWS and k not in compare.SUMMARY_COLUMNS]
        # the scores first (what a comparison is for), then what differs, then the identities
        order = list(compare.SUMMARY_COLUMNS) + diff + [k for k in IDENTITY_ROWS if k in keys]
        for key in order:
            cells: list[object] = [Text(compare.column_label(key), style="bold")]
            for i, row in enumerate(rows):
                text = shown(compare.cell(row, key))  # values from the runs' files, shown as text
                if len(text) > width and " [" in text:  # the value whole rather than a cut interval
                    text = text.split(" [")[0]
                    self.intervals_shown = False
                text = clip(text, width)
                if i in best.get(key, set()) and len(rows) > 1:
                    cells.append(Text(f"{text}*", style="bold reverse"))
                else:
                    cells.append(Text(f"{text} "))
            for g in groups:
                stat = g["metrics"].get(key)
                cells.append(stat.format(3) if stat else "")  # 0.835 ± 0.007: GROUP_WIDTH
            table.add_row(*cells, key=key)
        table.move_cursor(column=max(1, cursor) if cursor else 1 + self.baseline, animate=False)

    def _show_info(self, extra: str = "") -> None:
        parts = []
        if len(self.records) < 2:
            parts.append("✗ fewer than two runs could be read")
        parts += [f"✗ {p}" for p in self.problems]
        diff = compare.differing_keys(self.records) if self.records else []
        parts.append("config differs in: " + (", ".join(diff) if diff else "nothing"))
        groups = compare.seed_groups(self.records) if self.records else []
        if len(groups) > 1 or any(g["repeats"] for g in groups):  # which is which, and what is not averaged
            for g in groups:
                repeats = f", {len(g['repeats'])} repeat(s) of a seed not averaged" if g["repeats"] else ""
                parts.append(f"mean±std n={g['n']}: {g['label']} (newest finished run per seed{repeats})")
        parts.append("* best; test read at best val epoch")
        if compare.has_intervals(self.rows):
            parts.append(compare.INTERVAL_NOTE if self.intervals_shown else
                         "95% intervals: in a wider terminal and in the export (e)")
        if len(self.records) > 1 and self.paired:  # one line: 80x24 keeps rows for the table
            base = short_run_id(self.records[min(self.baseline, len(self.records) - 1)].info.run_id)
            parts.append(f"test AUC paired against {base} (enter on a run's column picks another): "
                         + "; ".join(self.paired))
        if extra:
            parts.append(extra)
        self.query_one("#compare-info", Static).update(markup(" · ".join(parts)))  # names and paths in it

    # ------------------------------------------------------------------ actions
    def action_back(self) -> None:
        self.app.pop_screen()

    def action_metric(self, step: int) -> None:
        names = list(compare.CURVE_METRICS)
        i = names.index(self.metric) if self.metric in names else 0
        self.query_one("#metric", Select).value = names[(i + step) % len(names)]

    def action_export(self) -> None:
        if not self.records:
            self.notify("nothing to export", severity="warning")
            return
        stem = Path(self.app.export_dir) / f"damtui-compare-{time.strftime('%Y%m%d-%H%M%S')}"

        def write(value: str | None) -> None:
            if value:
                self.export(Path(value))

        self.app.push_screen(ExportScreen(str(stem)), write)

    def export(self, stem: Path) -> list[Path]:
        """Write STEM.csv and STEM.md through runs.write_text_file; report on screen."""
        if stem.suffix in (".csv", ".md"):
            stem = stem.with_suffix("")
        out = [stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".md")]
        try:
            runs.write_text_file(out[0], compare.to_csv(self.records))
            runs.write_text_file(out[1], compare.to_markdown(self.records))
        except (DamtuiError, OSError) as err:
            self.notify(f"export failed: {markup(err)}", severity="error", timeout=8)
            self._show_info(f"✗ export failed: {err}")
            return []
        self.notify(markup(f"wrote {out[0]} and {out[1].name}"), timeout=6)
        self._show_info(f"exported {out[0].name}, {out[1].name}")
        return out
