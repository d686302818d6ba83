"""The table of finished epochs; rows are added as epochs finish, the best-val row is marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from damtui.records import METRICS, EpochRow, Metric

# (metric, column width); heads, formats and labels come from the metrics spec
COLUMNS: tuple[tuple[Metric, int], ...] = tuple((METRICS[k], w) for k, w in (
    ("epoch", 4), ("train_loss", 6), ("train_auc", 6), ("val_auc", 6), ("val_acc", 6), ("test_auc", 6),
    ("test_acc", 6), ("lr", 7), ("epoch_s", 6),
))


def _cells(row: EpochRow, best: bool) -> list[Any]:
    out: list[Any] = []
    for m, _ in COLUMNS:
        text = m.format(row.value(m.key))
        if m.key == "epoch":
            text += "*" if best else " "
        out.append(Text(text, style="bold" if best else ""))
    return out


class EpochTable(DataTable):
    """Epoch rows keyed by epoch number; `show` adds new rows and moves the best marker."""

    DEFAULT_CSS = """
    EpochTable { height: 9; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="none", zebra_stripes=True)
        self._shown: dict[int, tuple[EpochRow, bool]] = {}
        self._best: int | None = None

    def on_mount(self) -> None:
        for m, width in COLUMNS:
            self.add_column(m.short, key=m.key, width=width)

    def show(self, rows: Sequence[EpochRow], best_epoch: int | None) -> None:
        """Rows in epoch order. A long run's page slides a window of its newest epochs: rows that
        left it are removed and new ones appended, so an epoch costs one row's measuring, not the
        whole table's; only rows that must go before ones shown make the table be filled again."""
        follow = self.scroll_y >= self.max_scroll_y - 1  # at the bottom: keep the newest in view
        wanted = {r.epoch: r for r in rows}
        gone = [e for e in self._shown if e not in wanted]
        last = max((e for e in self._shown if e in wanted), default=0)
        if any(e not in self._shown and e < last for e in wanted):  # would land out of order: refill
            self.clear()
            self._shown.clear()
        else:
            for epoch in gone:
                self.remove_row(str(epoch))
                del self._shown[epoch]
        for epoch in sorted(wanted):
            row, best = wanted[epoch], epoch == best_epoch
            old = self._shown.get(epoch)
            if old is None:
                self.add_row(*_cells(row, best), key=str(epoch))
            elif old != (row, best):
                for (m, _), cell in zip(COLUMNS, _cells(row, best)):
                    self.update_cell(str(epoch), m.key, cell)
            self._shown[epoch] = (row, best)
        self._best = best_epoch
        if follow and self.row_count:
            self.call_after_refresh(self.scroll_end, animate=False)
