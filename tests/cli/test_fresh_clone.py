"""The CLI as a user from a fresh clone meets it (issue "The app and the sweeps screen"): --version,
`latest` for every command, the data root a saved run was trained from, missing runs dirs, fetch
leaving nothing behind, synthetic sets announced. In-process through `cli.main`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from damtui import __version__, cli
from damtui.data import datasets
from damtui.store import runs
from support import one_line


def test_version_is_answered(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"damtui {__version__}"


def test_latest_is_one_reference_for_every_command(damtui, runs_dir: Path, pretrain_copy: Path) -> None:
    """`damtui runs show latest` said `no run 'latest'` while `--from latest` worked."""
    rc, out, err = damtui("runs", "show", "latest")
    assert rc == 0, err
    assert out.startswith(pretrain_copy.name)
    time.sleep(0.01)  # a newer start time than the copied run's
    config = json.loads((pretrain_copy / runs.CONFIG).read_text())["config"]
    newer = runs.RunWriter.create(runs_dir, {**config, "stage": "finetune"}, {}, name="newer-run")
    newer.close()
    for command in (["runs", "show", "latest"], ["runs", "rename", "latest", "mine"]):
        rc, out, err = damtui(*command)
        assert rc == 0 and "newer-run" in out, err
    # --from latest still means the newest *finished pretrain* of the dataset
    assert runs.resolve_run(runs_dir, "latest", "synthetic2d", "pretrain", finished=True) == pretrain_copy
    rc, _, err = damtui("runs", "show", "latest", "--runs-dir", str(runs_dir.parent / "empty"))
    one_line(rc, err, "'latest': no run in")


def test_resume_and_mistakes_read_the_runs_own_data_root(damtui, monkeypatch, tmp_path: Path,
                                                          pretrain_copy: Path) -> None:
    """Both used ~/.medmnist (or $DAMTUI_DATA) instead of the folder the run was trained from."""
    from damtui.train import engine

    elsewhere = tmp_path / "other-data"
    elsewhere.mkdir()
    monkeypatch.setenv("DAMTUI_DATA", str(elsewhere))  # not where the run's data is
    seen: dict = {}

    def fake_train(config, emit, stop, **kw):
        seen.update(kw)
        return SimpleNamespace(status=runs.FINISHED)

    monkeypatch.setattr(engine, "train", fake_train)
    recorded = json.loads((pretrain_copy / runs.CONFIG).read_text())["runtime"]["data_root"]
    rc, _, err = damtui("train", "--resume", pretrain_copy.name, "--epochs", "9")
    assert rc == 0, err
    assert seen["data_root"] == recorded
    rc, out, err = damtui("runs", "mistakes", pretrain_copy.name, "--limit", "0")
    assert rc == 0, err
    assert "test images wrong" in out
    assert not any(elsewhere.iterdir())  # nothing was generated or looked for there
    rc, _, err = damtui("train", "--resume", pretrain_copy.name, "--data-root", str(elsewhere))
    assert rc == 0 and seen["data_root"] == str(elsewhere), err  # --data-root still wins

    # the recorded folder no longer holds the file: back to the usual default
    folder = tmp_path / "moved"
    folder.mkdir()
    saved = json.loads((pretrain_copy / runs.CONFIG).read_text())
    saved["runtime"]["data_root"] = str(folder)
    (pretrain_copy / runs.CONFIG).write_text(json.dumps(saved))
    assert runs.data_root_of(pretrain_copy, None) is None
    (folder / "synthetic2d.npz").write_bytes(b"")
    assert runs.data_root_of(pretrain_copy, None) == str(folder)


@pytest.mark.parametrize("command", [["results"], ["runs", "list"], ["runs"]])
def test_a_runs_dir_that_is_not_there_is_refused(damtui, tmp_path: Path, command: list[str]) -> None:
    """They printed `No finished runs yet` / `0 runs` and exited 0 for a mistyped path."""
    missing = tmp_path / "does" / "not" / "exist"
    rc, _, err = damtui(*command, "--runs-dir", str(missing))
    one_line(rc, err, f"runs dir {missing} does not exist")
    missing.mkdir(parents=True)
    rc, _, err = damtui(*command, "--runs-dir", str(missing))
    assert rc == 0, err


def test_failed_fetch_leaves_no_empty_folder(damtui, monkeypatch, tmp_path: Path) -> None:
    import medmnist

    def offline(**kw):
        raise RuntimeError("no network")

    monkeypatch.setattr(medmnist, "BreastMNIST", offline)
    target = tmp_path / "new" / "medmnist"
    rc, _, err = damtui("datasets", "fetch", "breastmnist", "--data-root", str(target))
    one_line(rc, err, "could not download breastmnist")
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "mine"
    kept.mkdir()
    (kept / "other.npz").write_bytes(b"x")
    rc, _, err = damtui("datasets", "fetch", "breastmnist", "--data-root", str(kept))
    assert rc != 0 and sorted(p.name for p in kept.iterdir()) == ["other.npz"]  # a user's folder stays


def test_a_synthetic_set_written_on_first_use_is_announced(damtui, monkeypatch, tmp_path: Path) -> None:
    from damtui.train import engine

    monkeypatch.setattr(engine, "train", lambda *a, **kw: SimpleNamespace(status=runs.FINISHED))
    folder = tmp_path / "fresh"
    rc, out, err = damtui("train", "synthetic2d", "--data-root", str(folder))
    assert rc == 0, err
    path = datasets.dataset_path("synthetic2d", folder)
    assert path.is_file() and f"synthetic2d: wrote the generated synthetic set to {path}" in out
    rc, out, _ = damtui("train", "synthetic2d", "--data-root", str(folder))
    assert rc == 0 and "wrote the generated" not in out  # only the first time
