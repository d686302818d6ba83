"""Presets as files a user keeps: `presets show` prints TOML that validates once saved,
`presets validate a b` reports every file, and a typo is named before the keys it leaves missing."""

import pytest

from damtui import cli
from damtui import config as cfg
from damtui.errors import DamtuiError


def run(capsys, *args):
    rc = cli.main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.mark.parametrize("name", ["synthetic2d-pretrain-demo", "breastmnist-finetune-report"])
def test_show_then_save_then_validate_round_trips(capsys, tmp_path, name):
    rc, out, _ = run(capsys, "presets", "show", name)
    assert rc == 0
    assert "= False" not in out and "= None" not in out and "= True" not in out
    path = tmp_path / "mine.toml"
    path.write_text(out)
    rc, out2, _ = run(capsys, "presets", "validate", str(path))
    assert rc == 0 and out2.strip() == f"ok  {path}"
    saved = cfg.load_preset_file(path)
    assert cfg.hyperparameters(saved) == cfg.hyperparameters(cfg.list_presets()[name].config)
    assert saved.source == cfg.list_presets()[name].config.source


def test_validate_reports_every_file(capsys, tmp_path):
    good, typo, wrong = tmp_path / "good.toml", tmp_path / "typo.toml", tmp_path / "wrong.toml"
    good.write_text(cfg.to_toml(cfg.list_presets()["synthetic2d-pretrain-demo"].config))
    typo.write_text(good.read_text().replace("epochs =", "epochz ="))
    wrong.write_text(good.read_text().replace("lr = 0.001", 'lr = "fast"'))
    rc, out, err = run(capsys, "presets", "validate", str(good), str(typo), str(wrong))
    assert rc != 0
    lines = out.splitlines()
    assert lines[0] == f"ok  {good}"
    assert lines[1].startswith(f"bad {typo}: key 'epochz': unknown key; did you mean 'epochs'?")
    assert lines[2].startswith(f"bad {wrong}: key 'lr'")
    assert err.strip().startswith("damtui: error: 2 of 3 preset files are not valid") and "\n" not in err.strip()


def test_free_text_source_is_optional(tmp_path):
    path = tmp_path / "bare.toml"
    path.write_text('dataset = "synthetic2d"\nstage = "pretrain"\nepochs = 2\nbatch_size = 8\nlr = 0.01\n'
                    'loss = "ce"\noptimizer = "sgd"\n')
    assert cfg.load_preset_file(path).source == ""


def test_type_error_is_reported_before_missing_keys(tmp_path):
    path = tmp_path / "half.toml"
    path.write_text('dataset = "synthetic2d"\nstage = "pretrain"\nepochs = "ten"\n')
    with pytest.raises(DamtuiError, match="key 'epochs'"):
        cfg.load_preset_file(path)


def test_decreasing_milestones_are_refused():
    base = cfg.list_presets()["synthetic2d-pretrain-demo"].config
    with pytest.raises(DamtuiError, match="milestones must increase"):
        cfg.apply_overrides(base, {"milestones": [0.9, 0.2]})
    with pytest.raises(DamtuiError, match="milestones must increase"):
        cfg.apply_overrides(base, {"milestones": [0.5, 0.5]})
    assert cfg.apply_overrides(base, {"milestones": [0.2, 0.9]}).milestones == [0.2, 0.9]

