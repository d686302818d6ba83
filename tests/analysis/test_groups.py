"""damtui.analysis.groups and damtui.analysis.leaderboard: seed groups by the identity rule, two-stage pairing,
selection on validation (never test), intervals where runs carry them, `damtui results`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from damtui.analysis import groups, leaderboard
from damtui.store import runs
from damtui.cli import main
from damtui.records import Selected
from damtui.store.runs import RunInfo

BASE = {"preset": "breastmnist-pretrain-tuned", "dataset": "breastmnist", "stage": "pretrain",
        "source": "table 1", "description": "", "epochs": 10, "lr": 0.001, "optimizer": "adam",
        "loss": "ce", "seed": 0, "threads": None}
FT = {**BASE, "preset": "breastmnist-finetune-tuned", "stage": "finetune", "optimizer": "pesg",
      "loss": "aucm", "lr": 0.1}


def info(run_id: str, config: dict, val: float = 0.9, test: float = 0.85, status: str = runs.FINISHED,
         from_run: str | None = None, **over) -> RunInfo:
    cfg = {**config, **over}
    sel = Selected(cfg["stage"], 3, val_auc=val, val_acc=0.8, test_auc=test, test_acc=0.8, test_acc_thr=0.81)
    return RunInfo(run_id=run_id, path=Path(run_id), dataset=cfg["dataset"], stage=cfg["stage"],
                   preset=cfg["preset"], status=status, epochs_done=3, epochs_planned=cfg["epochs"],
                   started=100.0, updated=160.0, best=sel, seed=cfg["seed"],
                   from_run=f"/runs/{from_run}" if from_run else None, config=cfg)


def test_groups_by_everything_but_seed_and_provenance():
    a = info("a", BASE, seed=0)
    b = info("b", BASE, seed=1, preset="renamed", source="elsewhere", description="d", threads=4)
    c = info("c", BASE, seed=2, lr=0.01)  # a hyperparameter differs: its own group
    found = groups.group_runs([a, b, c])
    assert [g.run_ids for g in found] == [["a", "b"], ["c"]]
    assert found[0].seeds == [0, 1]
    assert groups.group_runs([a, b, c], min_size=2)[0].run_ids == ["a", "b"]


def test_group_statistics_count_finished_runs_only():
    a = info("a", BASE, test=0.80)
    b = info("b", BASE, test=0.90, seed=1)
    c = info("c", BASE, test=0.10, seed=2, status=runs.RUNNING)
    d = replace(info("d", BASE, seed=3), status=runs.DAMAGED)
    (g,) = groups.group_runs([a, b, c, d])
    assert g.run_ids == ["a", "b", "c"]  # the damaged run is left out, the running one listed
    stat = g.stat("test_auc")
    assert stat.n == 2 and stat.mean == pytest.approx(0.85) and stat.std == pytest.approx(0.0707, abs=1e-4)


def test_fine_tunes_group_by_their_pretrain_group_and_pair_with_it():
    p0, p1 = info("p0", BASE, seed=0), info("p1", BASE, seed=1)
    q0 = info("q0", BASE, seed=0, lr=0.01)  # a pretrain of another configuration
    f0 = info("f0", FT, seed=0, from_run="p0")
    f1 = info("f1", FT, seed=1, from_run="p1")
    f2 = info("f2", FT, seed=2, from_run="q0")  # same fine-tune settings, other pretrain group
    found = groups.group_runs([p0, p1, q0, f0, f1, f2])
    ft = groups.group_of(found, "f0")
    assert ft is not None and ft.run_ids == ["f0", "f1"]
    assert [(s.run_id if s else None, r.run_id) for s, r in ft.pairs()] == [("p0", "f0"), ("p1", "f1")]
    pre = groups.pretrain_group(found, ft)
    assert pre is not None and pre.run_ids == ["p0", "p1"]
    assert groups.group_of(found, "f2").run_ids == ["f2"]
    assert groups.pretrain_group(found, groups.group_of(found, "p0")) is None


def test_group_keys_are_stable_across_listings():
    a, b = info("a", BASE), info("b", BASE, seed=1)
    assert groups.group_runs([a, b])[0].key == groups.group_runs([b, a])[0].key


def test_leaderboard_picks_by_validation_not_test():
    honest = [info("h0", BASE, val=0.95, test=0.80), info("h1", BASE, val=0.93, test=0.82, seed=1)]
    lucky = [info("l0", BASE, val=0.90, test=0.99, lr=0.5), info("l1", BASE, val=0.89, test=0.98, lr=0.5, seed=1)]
    (entry,) = leaderboard.leaderboard(honest + lucky)
    assert entry.dataset == "breastmnist" and entry.candidates == 2
    assert entry.group is not None and entry.group.run_ids == ["h0", "h1"]
    assert entry.reference("resnet18", "test_auc").value == pytest.approx(0.901)
    assert entry.reference("resnet50", "test_auc").value == pytest.approx(0.857)
    assert entry.reference("best", "test_acc") is not None
    assert entry.reference("resnet18", "test_acc_thr") is None  # the paper has no such column


def test_leaderboard_prefers_seed_groups_over_a_single_lucky_run():
    pair = [info("p0", BASE, val=0.90), info("p1", BASE, val=0.91, seed=1)]
    single = info("one", BASE, val=0.99, lr=0.5)
    assert leaderboard.leaderboard([*pair, single])[0].group.run_ids == ["p0", "p1"]
    assert leaderboard.leaderboard([pair[0], single])[0].group.run_ids == ["one"]  # no group has two seeds


def test_leaderboard_orders_datasets_and_has_no_references_for_synthetic():
    board = leaderboard.leaderboard([info("s", BASE, dataset="synthetic2d"), info("b", BASE)])
    assert [e.dataset for e in board] == ["breastmnist", "synthetic2d"]
    assert board[1].benchmark is None


@dataclass(frozen=True)
class _Interval:
    lo: float
    hi: float


@dataclass(frozen=True)
class _WithIntervals(Selected):
    """A Selected as the uncertainty work records it: bootstrap intervals per test metric."""

    intervals: dict = None  # type: ignore[assignment]


def test_interval_column_reads_intervals_where_a_run_has_them():
    plain = Selected("pretrain", 1, test_auc=0.9)
    assert leaderboard.interval(plain, "test_auc") is None and leaderboard.interval_text(plain, "test_auc") == "-"
    rich = _WithIntervals("pretrain", 1, val_auc=0.9, test_auc=0.9, intervals={"test_auc": _Interval(0.85, 0.94)})
    assert leaderboard.interval(rich, "test_auc") == (0.85, 0.94)
    assert leaderboard.interval_text(rich, "test_auc") == "[0.8500, 0.9400]"
    run = replace(info("a", BASE), best=rich)
    md = leaderboard.markdown(leaderboard.leaderboard([run]))
    assert "[0.8500, 0.9400]" in md


def test_markdown_lists_group_references_and_pairs():
    p0, p1 = info("p0", BASE, val=0.90), info("p1", BASE, val=0.92, seed=1)
    f0 = info("f0", FT, val=0.95, test=0.88, from_run="p0")
    f1 = info("f1", FT, val=0.93, test=0.86, seed=1, from_run="p1")
    md = leaderboard.markdown(leaderboard.leaderboard([p0, p1, f0, f1]), runs_dir="runs")
    assert md.startswith("# damtui results")
    assert "`damtui results --runs-dir runs --md FILE`" in md
    assert "| **damtui** breastmnist finetune breastmnist-finetune-tuned | 0.8700 ± 0.0141 |" in md
    assert "| ResNet-18 (28) (MedMNIST v2) | 0.901 | 0.863 | - | | paper |" in md
    assert "| ResNet-50 (28) (MedMNIST v2) | 0.857 | 0.812 | - | | paper |" in md
    assert "best in paper: Google AutoML Vision | 0.919" in md
    assert "`p0` -> `f0`" in md and "`p1` -> `f1`" in md
    assert "2 seed groups competed" in md


def _write_run(root: Path, name: str, config: dict, val: float, test: float, from_run: str | None = None) -> None:
    from damtui.records import EpochRow

    path = root / name
    path.mkdir(parents=True)
    runtime = {"device": "cpu", **({"from_run": str(root / from_run)} if from_run else {})}
    runs.atomic_write_json(path / runs.CONFIG, {"config": config, "runtime": runtime})
    writer = runs.RunWriter(path)
    writer.append_metrics(EpochRow(1, val_auc=val, val_acc=0.8, test_auc=test, test_acc=0.7, test_acc_thr=0.75))
    writer.write_status(runs.FINISHED, epoch=1, epochs=1)


def test_cli_results_prints_and_writes_markdown(tmp_path, capsys):
    root = tmp_path / "runs"
    _write_run(root, "good-0", {**BASE, "seed": 0}, 0.95, 0.80)
    _write_run(root, "good-1", {**BASE, "seed": 1}, 0.94, 0.82)
    _write_run(root, "test-lucky", {**BASE, "lr": 0.5}, 0.90, 0.99)
    out = tmp_path / "docs" / "RESULTS.md"
    assert main(["results", "--runs-dir", str(root), "--md", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "## breastmnist" in printed and "0.8100 ± 0.0141" in printed and "0.9900" not in printed
    assert f"wrote {out}" in printed
    text = out.read_text()
    assert text.startswith("# damtui results") and "`good-0`" in text and "`good-1`" in text
    assert "test-lucky" not in text


def test_cli_results_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["results", "--runs-dir", str(tmp_path / "empty")]) == 0
    assert "No finished runs yet." in capsys.readouterr().out
    assert main(["results", "--runs-dir", str(tmp_path / "none")]) != 0  # tests/cli/test_fresh_clone.py


@pytest.mark.slow
def test_results_from_real_two_stage_runs(tmp_path, capsys):
    """Through the real engine (synthetic data, tiny): two seeds of pretrain -> fine-tune make
    one fine-tune group paired with its pretrains, and `damtui results --md` lists it."""
    from support import demo_config, run_stage

    root = tmp_path / "runs"
    for seed in (0, 1):
        pre, _ = run_stage(demo_config(epochs=1, width=4, seed=seed), root)
        run_stage(demo_config("finetune", epochs=1, width=4, seed=seed), root, from_run=root / pre.run_id)
    infos, _ = runs.list_runs(root)
    found = groups.group_runs(infos)
    assert sorted(len(g.members) for g in found) == [2, 2]
    ft = next(g for g in found if g.stage == "finetune")
    assert all(src is not None and src.seed == run.seed for src, run in ft.pairs())
    assert main(["results", "--runs-dir", str(root), "--md", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    (entry,) = leaderboard.leaderboard(infos)
    assert "## synthetic2d" in text and all(f"`{rid}`" in text for rid in entry.group.run_ids)
