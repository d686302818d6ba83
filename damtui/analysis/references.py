"""The MedMNIST v2 benchmark numbers, shipped as data (damtui/data/medmnist_v2.toml), so charts,
the leaderboard and docs compare a run with the published rows instead of numbers typed by hand."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

FILE = Path(__file__).parents[1] / "data" / "medmnist_v2.toml"
METRICS = ("auc", "acc")  # the paper's two test metrics; damtui's keys are test_auc / test_acc


@dataclass(frozen=True)
class Reference:
    """One published cell: a model's test AUC or ACC on one dataset."""

    dataset: str
    model: str
    metric: str  # "auc" | "acc"
    value: float
    row: str = ""  # "resnet18" | "resnet50" for the rows drawn by default, "best" for the best cell

    @property
    def label(self) -> str:
        return f"{self.model} (MedMNIST v2)" if self.row != "best" else f"best in paper: {self.model}"


@dataclass(frozen=True)
class Benchmark:
    """Every published row of one dataset, with the paper's source and selection rule."""

    dataset: str
    rows: tuple[Reference, ...]
    source: str
    selection: str

    def row(self, name: str, metric: str) -> Reference | None:
        """The cell of a marked row ("resnet18", "resnet50") or the best cell ("best")."""
        cells = [r for r in self.rows if r.metric == metric]
        if name == "best":
            top = max(cells, key=lambda r: r.value, default=None)
            return None if top is None else Reference(self.dataset, top.model, metric, top.value, "best")
        return next((r for r in cells if r.row == name), None)

    def lines(self, metric: str) -> list[Reference]:
        """What a chart of `metric` draws: the ResNet-18 row, the ResNet-50 row and the best cell."""
        return [r for r in (self.row(n, metric) for n in ("resnet18", "resnet50", "best")) if r is not None]


@cache
def _table() -> dict:
    with FILE.open("rb") as f:
        return tomllib.load(f)


def benchmark(dataset: str) -> Benchmark | None:
    """The published rows of a MedMNIST flag; None for synthetic or unknown sets."""
    table = _table()
    models = table.get(dataset)
    if not isinstance(models, dict):
        return None
    rows = tuple(
        Reference(dataset, model, metric, float(cell[metric]), str(cell.get("row", "")))
        for model, cell in models.items()
        for metric in METRICS
    )
    return Benchmark(dataset, rows, str(table["source"]), str(table["selection"]))


def datasets() -> list[str]:
    """Flags the benchmark covers, in the file's order."""
    return [k for k, v in _table().items() if isinstance(v, dict)]
