from pathlib import Path

import pytest

from damtui import config as cfg
from damtui.errors import DamtuiError

REPORT_TABLES = {
    "breastmnist-pretrain-report": dict(epochs=200, batch_size=64, lr=1e-3, optimizer="sgd", weight_decay=1e-4),
    "breastmnist-finetune-report": dict(epochs=200, batch_size=128, lr=1e-3, epoch_decay=2e-3, weight_decay=1e-5, margin=1.0, dropout=0.7),
    "pneumoniamnist-pretrain-report": dict(epochs=50, batch_size=128, lr=1e-3, optimizer="sgd", momentum=0.9),
    "pneumoniamnist-finetune-report": dict(epochs=50, batch_size=128, lr=1e-3, epoch_decay=2e-3, dropout=0.7),
    "chestmnist-pretrain-report": dict(epochs=200, batch_size=64, lr=1e-3, optimizer="adam"),
    "chestmnist-finetune-report": dict(epochs=50, batch_size=128, lr=0.1, epoch_decay=3e-3, weight_decay=1e-5),
    "nodulemnist3d-pretrain-report": dict(epochs=50, batch_size=32, optimizer="adam"),
    "nodulemnist3d-finetune-report": dict(epochs=50, batch_size=32, lr=1e-3, epoch_decay=3e-3),
    "adrenalmnist3d-finetune-report": dict(epochs=50, batch_size=32, epoch_decay=3e-3, weight_decay=1e-5),
    "vesselmnist3d-finetune-report": dict(epochs=50, batch_size=64, epoch_decay=3e-3, weight_decay=1e-5),
    "synapsemnist3d-finetune-report": dict(epochs=50, batch_size=64, weight_decay=1e-4),
}


def test_every_shipped_preset_validates_and_names_its_source():
    presets = cfg.list_presets()
    assert len(presets) >= 24
    for p in presets.values():
        assert p.config.source
        assert p.config.preset == p.name


def test_report_tables_are_shipped_exactly():
    presets = cfg.list_presets()
    for name, values in REPORT_TABLES.items():
        c = presets[name].config
        for key, value in values.items():
            assert getattr(c, key) == pytest.approx(value), (name, key)
    for flag in ("breastmnist", "pneumoniamnist", "chestmnist", "nodulemnist3d", "adrenalmnist3d",
                 "vesselmnist3d", "synapsemnist3d"):
        for stage in ("pretrain", "finetune"):
            assert cfg.find_preset("report", flag, stage).stage == stage
    assert presets["breastmnist-finetune-report-nodropout"].config.dropout == 0
    assert presets["pneumoniamnist-pretrain-report-adam"].config.optimizer == "adam"
    assert presets["chestmnist-pretrain-report-classweight"].config.class_weighting


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "mine.toml"
    p.write_text(text)
    return p


BASE = 'dataset = "synthetic2d"\nstage = "pretrain"\nsource = "t"\nepochs = 2\nbatch_size = 8\nlr = 0.1\nloss = "ce"\noptimizer = "sgd"\n'


@pytest.mark.parametrize("extra, key", [
    ("colour = 3\n", "colour"),
    ('width = "wide"\n', "width"),
    ("dropout = 1.5\n", "dropout"),
])
def test_bad_preset_errors_name_file_and_key(tmp_path, extra, key):
    p = _write(tmp_path, BASE + extra)
    with pytest.raises(DamtuiError) as err:
        cfg.load_preset_file(p)
    assert str(p) in str(err.value) and f"'{key}'" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("old, new, key", [
    ("lr = 0.1", "lr = 0", "lr"),
    ("lr = 0.1", "lr = -1e-3", "lr"),
    ("epochs = 2", "epochs = 0", "epochs"),
    ("batch_size = 8", "batch_size = 0", "batch_size"),
    ("epochs = 2", 'epochs = "2"', "epochs"),
])
def test_impossible_values_are_rejected(tmp_path, old, new, key):
    with pytest.raises(DamtuiError, match=f"'{key}'"):
        cfg.load_preset_file(_write(tmp_path, BASE.replace(old, new)))


def test_stage_loss_mismatch_is_rejected(tmp_path):
    with pytest.raises(DamtuiError, match="stage 'pretrain' needs loss"):
        cfg.load_preset_file(_write(tmp_path, BASE.replace('loss = "ce"', 'loss = "aucm"')))


def test_broken_toml_is_one_line(tmp_path):
    with pytest.raises(DamtuiError, match="not valid TOML"):
        cfg.load_preset_file(_write(tmp_path, "epochs = = 3"))


def test_overrides_are_typed_and_validated():
    c = cfg.find_preset("demo", "synthetic2d", "pretrain")
    o = cfg.parse_overrides(["lr=1e-2", "augment=false", "milestones=[0.5]", "pipeline=reference"])
    c2 = cfg.apply_overrides(c, o)
    assert (c2.lr, c2.augment, c2.milestones, c2.pipeline) == (0.01, False, [0.5], "reference")
    with pytest.raises(DamtuiError, match="'lr'"):
        cfg.apply_overrides(c, cfg.parse_overrides(["lr=-1"]))
    with pytest.raises(DamtuiError, match="'nope'"):
        cfg.apply_overrides(c, cfg.parse_overrides(["nope=1"]))
    with pytest.raises(DamtuiError, match="key=value"):
        cfg.parse_overrides(["lr"])


def test_short_names_and_wrong_dataset_or_stage():
    assert cfg.find_preset("report", "breastmnist", "pretrain").preset == "breastmnist-pretrain-report"
    assert cfg.find_preset("default", "dermamnist", "pretrain").dataset == "dermamnist"
    with pytest.raises(DamtuiError, match="is for breastmnist"):
        cfg.find_preset("breastmnist-pretrain-report", "pneumoniamnist", "pretrain")
    with pytest.raises(DamtuiError, match="finetune preset"):
        cfg.find_preset("breastmnist-finetune-report", "breastmnist", "pretrain")
    with pytest.raises(DamtuiError, match="choose one of"):
        cfg.find_preset("nope", "breastmnist", "pretrain")


def test_user_presets_add_and_shadow(tmp_path, monkeypatch):
    folder = tmp_path / "user-presets"
    folder.mkdir(exist_ok=True)
    monkeypatch.setenv("DAMTUI_PRESETS", str(folder))
    (folder / "synthetic2d-pretrain-demo.toml").write_text(BASE.replace("epochs = 2", "epochs = 7"))
    (folder / "mine.toml").write_text(BASE)
    presets = cfg.list_presets()
    assert presets["synthetic2d-pretrain-demo"].config.epochs == 7 and presets["synthetic2d-pretrain-demo"].user
    assert "mine" in presets


def test_milestones_never_before_first_step():
    c = cfg.find_preset("demo", "synthetic2d", "finetune")
    assert cfg.apply_overrides(c, {"epochs": 1}).resolved_milestones() == []
    assert cfg.apply_overrides(c, {"epochs": 8}).resolved_milestones() == [4, 6]
