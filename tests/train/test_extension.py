"""Extending a run (`damtui train --resume RUN --epochs N`, R in the app) is part of its identity
(issue 25 item 3): the config it continues with says the new epochs and the schedule the run
really gets, and a pretrain that fine-tunes started from is not trained further unless forced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import demo_config

from damtui import config as cfg
from damtui.records import EpochRow
from damtui.store import runs
from damtui.train.resume import SourceInUse, resume_config


def test_an_extended_finetune_says_the_lr_drops_it_really_gets():
    three = demo_config("finetune", epochs=3)  # milestones none: the stage default [0.5, 0.75]
    assert three.resolved_milestones() == [1, 2]
    six = cfg.extended(three, 6, done=3)
    # drops at 1 and 2 happened; resumed, epochs 3.. follow the 6-epoch fractions: drops at 3 and 4
    assert six.epochs == 6 and six.resolved_milestones() == [1, 2, 3, 4]
    fresh = three.model_copy(update={"epochs": 6})
    assert fresh.resolved_milestones() == [3, 4]
    assert not cfg.same_but_seed(six, fresh) and not cfg.same_but_seed(six, three)  # three runs, three groups
    assert cfg.same_run(six, three)  # but one run before and after its extension


def test_an_extension_without_a_schedule_changes_only_the_epochs():
    one = demo_config("pretrain", epochs=1)
    assert cfg.extended(one, 4, done=1) == one.model_copy(update={"epochs": 4})


def _run(root: Path, name: str, stage: str, runtime: dict | None = None, epochs: int = 2) -> Path:
    path = root / name
    path.mkdir(parents=True)
    config = demo_config(stage, epochs=epochs).as_dict()
    runs.atomic_write_json(path / runs.CONFIG, {"config": config, "runtime": runtime or {}})
    writer = runs.RunWriter(path)
    for epoch in range(1, epochs + 1):
        writer.append_metrics(EpochRow(epoch, train_loss=0.5, val_auc=0.7))
    writer.write_status(runs.FINISHED, epochs, epochs)
    return path


def test_training_a_pretrain_further_is_refused_while_fine_tunes_use_it(runs_dir):
    pretrain = _run(runs_dir, "pre", "pretrain")
    _run(runs_dir, "ft-a", "finetune", {"from_run": "pre", "from_run_path": str(pretrain.resolve())})
    _run(runs_dir, "ft-b", "finetune", {"from_run": "pre"})
    with pytest.raises(SourceInUse, match=r"pre is the --from source of ft-a, ft-b: .* add --force") as err:
        resume_config(pretrain, epochs=4)
    assert err.value.users == ["ft-a", "ft-b"]
    assert resume_config(pretrain, epochs=4, force=True).epochs == 4
    assert json.loads((pretrain / runs.CONFIG).read_text())["config"]["epochs"] == 2  # nothing written yet


def test_the_cli_refuses_it_naming_them(damtui, runs_dir):
    pretrain = _run(runs_dir, "pre", "pretrain")
    _run(runs_dir, "ft-a", "finetune", {"from_run": "pre", "from_run_path": str(pretrain.resolve())})
    code, _, err = damtui("train", "--resume", "pre", "--epochs", "4")
    assert code == 1 and "pre is the --from source of ft-a" in err and "--force" in err
