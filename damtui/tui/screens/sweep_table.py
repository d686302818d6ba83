"""What the sweeps screen and a sweep's page share: a table refreshed in place, the run counts."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding
from textual.widgets import DataTable

Row = tuple[str, list[Any]]  # (row key, cells)
STATE_STYLE = {"running": "bold cyan", "finished": "green", "failed": "bold red", "interrupted": "yellow"}


class SweepTable(DataTable):
    """A sweeps table: enter opens the highlighted row (named in the footer)."""

    BINDINGS = [Binding("enter", "select_cursor", "Open")]


def fill_table(table: DataTable, rows: list[Row]) -> None:
    """Show `rows` in `table` without moving the user's cursor or scroll: cells are updated in
    place when the rows are the same ones, else the table is refilled and the cursor put back on
    its row and the scroll offsets restored."""
    keys = [k for k, _ in rows]
    if keys == [str(k.value) for k in table.rows]:
        columns = list(table.columns)
        for key, cells in rows:
            for column, cell in zip(columns, cells):
                if str(table.get_cell(key, column)) != str(cell):
                    table.update_cell(key, column, cell)
        return
    current = None
    if table.row_count:
        current = str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)
    x, y = table.scroll_x, table.scroll_y
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if current in keys:
        table.move_cursor(row=keys.index(current), animate=False)
    table.call_after_refresh(table.scroll_to, x, y, animate=False)  # once the new rows have a size


def runs_text(g: dict[str, Any]) -> str:
    """`3 done 1 running 1 pruned 2 waiting`: only the counts that are not zero."""
    parts = [f"{g[k]} {k}" for k in ("done", "running", "failed", "cancelled", "pruned") if g.get(k)]
    if g.get("waiting"):
        parts.append(f"{g['waiting']} waiting")
    if g.get("not_started"):
        parts.append(f"{g['not_started']} not started")
    return " ".join(parts) or "no runs yet"
