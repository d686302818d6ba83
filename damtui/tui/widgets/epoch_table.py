"""The table of finished epochs; rows are added as epochs finish, the best-val row is marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from damtui.tui.format import duration, num, short_float

COLUMNS: tuple[tuple[str, str, int], ...] = (  # (key, label, width)
    ("epoch", "ep", 4),
    ("train_loss", "loss", 6),
    ("train_auc", "trAUC", 6),
    ("val_auc", "vaAUC", 6),
    ("val_acc", "vaACC", 6),
    ("test_auc", "teAUC", 6),
    ("test_acc", "teACC", 6),
    ("lr", "lr", 7),
    ("epoch_s", "time", 6),
)


def _cells(row: dict[str, Any], best: bool) -> list[Any]:
    out: list[Any] = []
    for key, _, _ in COLUMNS:
        v = row.get(key)
        if key == "epoch":
            text = f"{v}*" if best else f"{v} "
        elif key == "lr":
            text = short_float(v)
        elif key == "epoch_s":
            text = duration(v) if v is not None else "-"
        elif key == "train_loss":
            text = num(v, 3)
        else:
            text = num(v, 3)
        out.append(Text(text, style="bold" if best else ""))
    return out


class EpochTable(DataTable):
    """Epoch rows keyed by epoch number; `show` adds new rows and moves the best marker."""

    DEFAULT_CSS = """
    EpochTable { height: 9; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="none", zebra_stripes=True)
        self._shown: dict[int, tuple[dict[str, Any], bool]] = {}
        self._best: int | None = None

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, rows: Sequence[dict[str, Any]], best_epoch: int | None) -> None:
        follow = self.scroll_y >= self.max_scroll_y - 1  # at the bottom: keep the newest in view
        wanted = {int(r["epoch"]): r for r in rows if r.get("epoch") is not None}
        if any(e not in wanted for e in self._shown):
            self.clear()
            self._shown.clear()
        for epoch in sorted(wanted):
            row, best = wanted[epoch], epoch == best_epoch
            old = self._shown.get(epoch)
            if old is None:
                self.add_row(*_cells(row, best), key=str(epoch))
            elif old != (row, best):
                for (key, _, _), cell in zip(COLUMNS, _cells(row, best)):
                    self.update_cell(str(epoch), key, cell)
            self._shown[epoch] = (row, best)
        self._best = best_epoch
        if follow and self.row_count:
            self.call_after_refresh(self.scroll_end, animate=False)
