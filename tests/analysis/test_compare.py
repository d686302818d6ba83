"""damtui.analysis.compare: differing keys, comparison rows, seed groups, CSV and Markdown exports."""

from __future__ import annotations

import csv
import io
import math
import subprocess
import sys
from pathlib import Path

import pytest

from damtui.analysis import compare
from damtui.store import runs
from damtui.records import EpochRow, Selected, best_index
from damtui.store.runs import RunInfo, RunRecord


def _row(epoch: int, val_auc: float, test_auc: float, **more) -> EpochRow:
    return EpochRow.from_json({
        "epoch": epoch,
        "val_auc": val_auc,
        "test_auc": test_auc,
        "val_acc": 0.7,
        "test_acc": 0.68,
        "test_acc_thr": 0.69,
        "train_loss": 0.5,
        **more,
    })


def _record(run_id: str, config: dict, rows: list[EpochRow], status: str = runs.FINISHED,
            answer: Selected | None = None) -> RunRecord:
    i = best_index(rows)
    info = RunInfo(
        run_id=run_id,
        path=Path(run_id),
        dataset=config.get("dataset", "d"),
        stage=config.get("stage", "pretrain"),
        preset=config.get("preset", "p"),
        status=status,
        epochs_done=len(rows),
        epochs_planned=config.get("epochs", 3),
        started=100.0,
        updated=160.0,
        seed=config.get("seed", 0),
        best=Selected.of(rows[i], config.get("stage", "pretrain")) if i is not None else None,
        answer=answer,
    )
    return RunRecord(info, config, {"device": "cpu"}, rows, 0)


BASE = {
    "preset": "demo",
    "dataset": "breastmnist",
    "stage": "pretrain",
    "source": "report",
    "description": "x",
    "epochs": 3,
    "lr": 0.1,
    "batch_size": 128,
    "milestones": None,
    "seed": 0,
}


@pytest.fixture
def three():
    a = _record(
        "20240601-120000-breastmnist-pretrain-aaaaaa",
        dict(BASE),
        [_row(1, 0.80, 0.78), _row(2, 0.85, 0.80), _row(3, 0.84, 0.83)],
    )
    b = _record(
        "20240601-130000-breastmnist-pretrain-bbbbbb",
        {**BASE, "seed": 1},
        [_row(1, 0.82, 0.79), _row(2, 0.83, 0.82)],
    )
    c = _record(
        "20240601-140000-breastmnist-pretrain-cccccc",
        {**BASE, "lr": 0.01, "description": "other words", "milestones": [0.5]},
        [_row(1, 0.70, 0.72)],
    )
    return a, b, c


def test_differing_keys(three):
    a, b, c = three
    assert compare.differing_keys([a, b]) == ["seed"]
    assert compare.differing_keys([a, c]) == ["lr", "milestones"]  # description is not training
    assert compare.differing_keys([a, b, c]) == ["lr", "milestones", "seed"]
    assert compare.differing_keys([a]) == []
    # a key only one run has (older config) counts as different
    d = _record("x-dddddd", {k: v for k, v in BASE.items() if k != "milestones"}, [])
    assert compare.differing_keys([a, d]) == ["milestones"]


def test_comparison_rows_use_the_best_validation_epoch(three):
    a, b, c = three
    rows = compare.comparison_rows([a, b, c])
    assert [r["run"] for r in rows] == [a.info.run_id, b.info.run_id, c.info.run_id]
    ra = rows[0]
    assert ra["selected_epoch"] == 2 and ra["selected_stage"] == "pretrain" and ra["val_auc"] == 0.85
    assert ra["test_auc"] == 0.80  # at the best val epoch, not the best test (0.83)
    assert ra["lr"] == 0.1 and ra["seed"] == 0 and ra["milestones"] is None
    assert ra["epochs_done"] == 3 and ra["duration_s"] == 60.0
    assert list(ra)[:8] == list(compare.IDENTITY_COLUMNS)
    best = compare.best_runs(rows)
    assert best["val_auc"] == {0} and best["test_auc"] == {1}


def test_no_epochs_yet_gives_empty_summary():
    r = _record("x-eeeeee", dict(BASE), [])
    row = compare.comparison_rows([r])[0]
    assert row["selected_epoch"] is None and row["val_auc"] is None
    assert compare.best_runs([row]) == {}


def test_seed_groups_mean_and_sample_std(three):
    a, b, c = three
    groups = compare.seed_groups([a, b, c])
    assert len(groups) == 1
    g = groups[0]
    assert g["runs"] == [a.info.run_id, b.info.run_id] and g["seeds"] == [0, 1] and g["n"] == 2
    m = g["metrics"]["val_auc"]
    assert m.mean == pytest.approx(0.84) and m.n == 2
    assert m.std == pytest.approx(math.sqrt(((0.85 - 0.84) ** 2 + (0.83 - 0.84) ** 2) / 1))
    assert g["metrics"]["test_auc"].mean == pytest.approx((0.80 + 0.82) / 2)


def test_seed_groups_ignore_repeats_and_singletons(three):
    a, _, c = three
    same = _record("x-ffffff", dict(BASE), [_row(1, 0.8, 0.8)])
    assert compare.seed_groups([a, same]) == []  # same seed twice: not a seed sweep
    assert compare.seed_groups([a, c]) == []


def test_seed_group_ignores_preset_name_but_not_values(three):
    a, b, _ = three
    renamed = _record("x-gggggg", {**BASE, "preset": "copy", "seed": 2}, [_row(1, 0.81, 0.8)])
    assert compare.seed_groups([a, b, renamed])[0]["n"] == 3


def test_curve_skips_missing_values():
    r = _record(
        "x-hhhhhh",
        dict(BASE),
        [_row(1, 0.8, 0.7), EpochRow(2), _row(3, 0.9, 0.8)],
    )
    assert compare.curve(r, "val_auc") == ([1, 3], [0.8, 0.9])
    assert compare.curve(r, "nope") == ([], [])


def test_to_csv_round_trips(three):
    text = compare.to_csv(list(three))
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4  # three runs, then the seed group of the first two
    assert rows[0]["run"].endswith("aaaaaa") and float(rows[0]["val_auc"]) == 0.85
    assert rows[2]["milestones"] == "0.5" and rows[0]["milestones"] == ""
    assert "seed" in rows[0] and "lr" in rows[0]
    assert text.endswith("\n") and "\r" not in text


def test_to_markdown_bolds_best_and_lists_seed_groups(three):
    md = compare.to_markdown(list(three))
    assert md.startswith("# damtui run comparison")
    assert "| val AUC @selected | **0.8500** | 0.8300 | 0.7000 |" in md
    assert "| selected in stage | pretrain | pretrain | pretrain |" in md
    assert "| seed | 0 | 1 | 0 |" in md
    assert "## Runs that differ only by seed (mean ± sample std)" in md
    assert "0.8400 ± 0.0141" in md
    header = md.splitlines()[4]
    assert header.count("|") == 5 and "aaaaaa demo" in header


def test_markdown_escapes_pipes():
    r = _record("x-iiiiii", {**BASE, "preset": "a|b"}, [])
    assert "a\\|b" in compare.to_markdown([r, r])


def test_compare_has_no_ui_imports():
    code = "import sys, damtui.analysis.compare; print('textual' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_finetune_reports_its_two_stage_answer_labelled_with_the_stage(three):
    a, _, _ = three
    answer = Selected("pretrain", 7, val_auc=0.9, val_acc=0.8, test_auc=0.88, test_acc=0.8, test_acc_thr=0.81)
    fin = _record("x-jjjjjj", {**BASE, "stage": "finetune"}, [_row(1, 0.86, 0.9)], answer=answer)
    row = compare.comparison_rows([a, fin])[1]
    assert (row["selected_stage"], row["selected_epoch"], row["test_auc"]) == ("pretrain", 7, 0.88)
    assert "| selected in stage | pretrain | pretrain |" in compare.to_markdown([a, fin])


def test_markdown_seed_groups_name_each_fine_tunes_pretrain():
    ft = {**BASE, "stage": "finetune", "optimizer": "pesg", "loss": "aucm"}
    a = _record("20240101-000000-d-finetune-aaaaaa", ft, [_row(1, 0.8, 0.7)])
    b = _record("20240101-000001-d-finetune-bbbbbb", {**ft, "seed": 1}, [_row(1, 0.82, 0.72)])
    a.info.from_run = "/runs/20240101-000000-d-pretrain-111111"
    b.info.from_run = "/runs/20240101-000001-d-pretrain-222222"
    (g,) = compare.seed_groups([a, b])
    assert g["from"] == ["20240101-000000-d-pretrain-111111", "20240101-000001-d-pretrain-222222"]
    assert "| 2 | 0, 1 (from `111111`, `222222`) |" in compare.to_markdown([a, b])


def test_compare_and_its_csv_count_each_seed_once_and_name_groups_by_what_differs(three):
    a, b, c = three
    again = _record("again", {**a.config}, [_row(1, 0.9, 0.1)])  # seed 0 once more, newer
    again.info.started = a.info.started + 100
    other = [_record(f"o{s}", {**a.config, "seed": s, "lr": 0.5}, [_row(1, 0.7, 0.7)]) for s in (0, 1)]
    groups = compare.seed_groups([a, b, again, *other])
    mine = next(g for g in groups if "again" in g["runs"] + g["repeats"])
    assert mine["seeds"] == [0, 1] and mine["repeats"] == [a.info.run_id] and mine["n"] == 2
    assert mine["label"].endswith("lr=0.1") and next(g for g in groups if g is not mine)["label"].endswith("lr=0.5")
    csv = compare.to_csv([a, b, again, *other])
    assert "seed_group_label" in csv.splitlines()[0] and "lr=0.5" in csv
    assert "repeats not averaged" in compare.to_markdown([a, b, again, *other])
