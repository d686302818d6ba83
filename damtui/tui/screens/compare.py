"""Compare screen: overlay one metric of several runs, the config keys that differ and the
summary side by side (best marked), seed groups as mean ± std, export to CSV and Markdown."""

from __future__ import annotations

import math
import time
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import DataTable, Header, Label, Select, Static
from textual_plotext import PlotextPlot

from damtui import compare, runs
from damtui.errors import DamtuiError
from damtui.records import METRICS
from damtui.tui.format import short_run_id
from damtui.tui.screens.dialogs import ExportScreen
from damtui.tui.widgets.key_footer import KeyFooter

COLOURS = ("cyan", "orange", "green", "magenta", "blue", "red", "yellow", "white")
MARKERS = ("o", "x", "+", "*", "#", "@", "%", "&")
IDENTITY_ROWS = tuple(c for c in compare.IDENTITY_COLUMNS if c != "run")


def legend_name(record: runs.RunRecord, width: int = 28) -> str:
    name = compare.run_label(record)
    return name if len(name) <= width else name[: width - 1] + "…"


def clip(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class CompareScreen(Screen):
    TITLE = "damtui"
    SUB_TITLE = "compare"
    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("e", "export", "Export CSV+MD"),
        Binding("left_square_bracket", "metric(-1)", "Metric", key_display="[ ]"),
        Binding("right_square_bracket", "metric(1)", "Next metric", show=False),
        Binding("ctrl+r", "reload", "Reload", show=False),
    ]

    def __init__(self, paths: list[Path]) -> None:
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.records: list[runs.RunRecord] = []
        self.problems: list[str] = []
        self.rows: list[dict] = []
        self.paired: list[str] = []

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
        yield PlotextPlot(id="compare-plot")
        yield DataTable(id="compare-table", cursor_type="none", zebra_stripes=True)
        yield Static("", id="compare-info")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.action_reload()
        self.query_one("#compare-table").focus()
        self.set_interval(self.app.poll_interval * 2, self._follow)

    def _follow(self) -> None:
        """Runs still being written are re-read, so their curves grow while this is open."""
        if any(rec.info.status == runs.RUNNING for rec in self.records):
            self.action_reload()

    def action_reload(self) -> None:
        self.records, self.problems = [], []
        for path in self.paths:
            try:
                self.records.append(runs.load_run(path))
            except DamtuiError as err:
                self.problems.append(str(err))
        # read once per reload: results with intervals and the paired differences read scores files
        self.rows = compare.comparison_rows(self.records) if self.records else []
        self.paired = compare.paired_lines(self.records)
        self._draw_plot()
        self._draw_table()
        self._show_info()

    @property
    def metric(self) -> str:
        value = self.query_one("#metric", Select).value
        return value if isinstance(value, str) else "val_auc"

    def on_select_changed(self, event: Select.Changed) -> None:
        if event.select.id == "metric":
            self._draw_plot()

    # ------------------------------------------------------------------ plot
    def _draw_plot(self) -> None:
        widget = self.query_one("#compare-plot", PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        mono = bool(getattr(self.app, "no_color", False))
        metric = self.metric
        values: list[float] = []
        hi_x = 2
        for i, rec in enumerate(self.records):
            xs, ys = compare.curve(rec, metric)
            hi_x = max(hi_x, rec.info.epochs_planned or 0, *(xs or [0]))
            if not xs:
                continue
            values += ys
            kw = dict(
                label=legend_name(rec),
                color=COLOURS[i % len(COLOURS)],
                marker=MARKERS[i % len(MARKERS)] if mono else ("braille" if len(xs) > 1 else "o"),
            )
            if mono or len(xs) == 1:  # without colour, runs differ by their marker: epochs only
                plt.scatter(xs, ys, **kw)
            else:
                plt.plot(xs, ys, **kw)
        plt.title(f"{METRICS[metric].label} per epoch")
        plt.xlim(1, hi_x)
        step = max(1, math.ceil(hi_x / 6))
        plt.xticks(list(range(1, hi_x + 1, step)))
        if values:
            lo, hi = min(values), max(values)
            pad = max(0.02 if hi <= 1.5 else 0.0, (hi - lo) * 0.1)
            plt.ylim(lo - pad, hi + pad if hi + pad > lo - pad else lo + 1)
        widget.refresh()

    # ------------------------------------------------------------------ table
    def _draw_table(self) -> None:
        table = self.query_one("#compare-table", DataTable)
        table.clear(columns=True)
        if not self.records:
            return
        rows = self.rows
        best = compare.best_runs(rows)
        groups = compare.seed_groups(self.records)
        table.add_column("", key="key")
        for rec in self.records:
            table.add_column(short_run_id(rec.info.run_id), key=rec.info.run_id)
        for g in groups:
            table.add_column(f"mean±std n={g['n']}", key=f"group-{g['runs'][0]}")
        keys: list[str] = []
        for row in rows:
            keys += [k for k in row if k not in keys and k != "run" and k not in compare.INTERVAL_COLUMNS]
        diff = [k for k in keys if k not in IDENTITY_ROWS and k not in compare.SUMMARY_COLUMNS]
        # the scores first (what a comparison is for), then what differs, then the identities
        order = list(compare.SUMMARY_COLUMNS) + diff + [k for k in IDENTITY_ROWS if k in keys]
        for key in order:
            cells: list[object] = [Text(compare.column_label(key), style="bold")]
            for i, row in enumerate(rows):
                text = clip(compare.cell(row, key))
                if i in best.get(key, set()) and len(rows) > 1:
                    cells.append(Text(f"{text}*", style="bold reverse"))
                else:
                    cells.append(Text(f"{text} "))
            for g in groups:
                stat = g["metrics"].get(key)
                cells.append(stat.format() if stat else "")
            table.add_row(*cells, key=key)

    def _show_info(self, extra: str = "") -> None:
        parts = []
        if len(self.records) < 2:
            parts.append("✗ fewer than two runs could be read")
        parts += [f"✗ {p}" for p in self.problems]
        diff = compare.differing_keys(self.records) if self.records else []
        parts.append("config differs in: " + (", ".join(diff) if diff else "nothing"))
        parts.append("* best; test read at best val epoch")
        if compare.has_intervals(self.rows):
            parts.append(compare.INTERVAL_NOTE)
        parts += self.paired
        if extra:
            parts.append(extra)
        self.query_one("#compare-info", Static).update(" · ".join(parts))

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
            self.notify(f"export failed: {err}", severity="error", timeout=8)
            self._show_info(f"✗ export failed: {err}")
            return []
        self.notify(f"wrote {out[0]} and {out[1].name}", timeout=6)
        self._show_info(f"exported {out[0].name}, {out[1].name}")
        return out
