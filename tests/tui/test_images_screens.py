"""The dataset browser (`b` on the launch screen) and a run's mistakes (`x` in a run's view):
Pilot tests and snapshots at 80x24 and 160x48, half-blocks forced so the SVGs are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from fakes import drawn, flat_text, make_run, settle, wait_for

from damtui.analysis import gallery, pictures
from damtui.store import runs
from damtui.tui.screens.dataset_view import DatasetScreen
from damtui.tui.screens.mistakes import MistakesScreen
from damtui.tui.screens.run_view import RunViewScreen
from damtui.tui.widgets.pictures import PictureTile

RUN = "20240601-120000-synthetic2d-pretrain-aaaaaa"


@pytest.fixture(autouse=True)
def _half_blocks(monkeypatch):
    monkeypatch.setenv(pictures.ENV, "halfcell")


def scored_run(runs_dir):
    """A finished synthetic2d run with saved scores: test #5 and #9 are false positives, #1 a false negative."""
    path = make_run(runs_dir, RUN, epochs_done=3)
    labels = np.zeros(200, np.int64)
    scores = np.full(200, 0.1, np.float32)
    scores[[5, 9]] = (0.95, 0.7)
    labels[[1, 2]] = 1
    scores[2] = 0.9
    np.savez(path / runs.SCORES, epoch=np.int64(runs.load_run(path).info.result.epoch),
             val_scores=scores, val_labels=labels, test_scores=scores, test_labels=labels,
             val_threshold=np.float32(0.5))
    return path


async def shown(pilot, screen_type, text: str) -> None:
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, screen_type), timeout=60)
    await drawn(pilot, text, timeout=60)
    await settle(pilot)


@pytest.mark.slow
async def test_b_on_the_launch_screen_browses_the_dataset(make_app):
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.screen.query_one("#datasets").focus()
        await pilot.press("i")
        await shown(pilot, DatasetScreen, "0 no blob: 8 of")
        text = flat_text(app)
        assert "1 bright blob: train 241 · val 69 · test 68" in text and "pixels (train): mean" in text
        tiles = app.screen.query(PictureTile)
        assert len(tiles) == 16 and all(t.sample.caption.startswith("train #") for t in tiles)
        await pilot.press("v")
        await shown(pilot, DatasetScreen, "augmented (training view)")
        await pilot.press("t")
        await shown(pilot, DatasetScreen, "split val")
        assert all(t.sample.caption.startswith("val #") for t in app.screen.query(PictureTile))
        await pilot.press("l")
        await shown(pilot, DatasetScreen, "· no blob")
        assert len(app.screen.query(PictureTile)) == 8 and "1 bright blob: 8 of" not in flat_text(app)
        await pilot.press("escape")
        assert not isinstance(app.screen, DatasetScreen)


@pytest.mark.slow
async def test_3d_volumes_step_through_depth(make_app, tmp_path):
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        app.push_screen(DatasetScreen("synthetic3d"))
        await shown(pilot, DatasetScreen, "at middle+0")
        await pilot.press("right_square_bracket", "right_square_bracket")
        await shown(pilot, DatasetScreen, "at middle+2")
        tile = app.screen.query(PictureTile).first()
        volume = app.screen._data.images["train"][tile.sample.index]
        assert (tile.sample.picture == gallery.tile(volume, True, 2)).all()


@pytest.mark.slow
async def test_x_in_a_run_view_shows_its_mistakes(make_app, runs_dir):
    path = scored_run(runs_dir)
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.push_screen(RunViewScreen(path))
        await settle(pilot)
        await pilot.press("x")
        await shown(pilot, MistakesScreen, "test images wrong")
        text = flat_text(app)
        assert "3 of 200 test images wrong" in text and "saved scores" in text
        assert "false positives: 2" in text and "false negatives: 1" in text
        captions = [t.sample.caption for t in app.screen.query(PictureTile)]
        assert captions == ["#5 0.950", "#9 0.700", "#1 0.100"]


async def test_a_run_without_checkpoint_or_scores_says_so(make_app, runs_dir):
    path = make_run(runs_dir, RUN, epochs_done=2)
    app = make_app()
    async with app.run_test(size=(100, 30)) as pilot:
        app.push_screen(MistakesScreen(path))
        await shown(pilot, MistakesScreen, "no best.pt")


def _dataset_before(flag: str):
    async def run_before(pilot):
        pilot.app.push_screen(DatasetScreen(flag))
        await shown(pilot, DatasetScreen, "of 559 in train" if flag == "synthetic2d" else "in train")

    return run_before


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_dataset_snapshot(snap_compare, make_app, size):
    assert snap_compare(make_app(), terminal_size=size, run_before=_dataset_before("synthetic2d"))


@pytest.mark.slow
def test_dataset_3d_snapshot_160x48(snap_compare, make_app):
    assert snap_compare(make_app(), terminal_size=(160, 48), run_before=_dataset_before("synthetic3d"))


@pytest.mark.slow
@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_mistakes_snapshot(snap_compare, make_app, runs_dir, size):
    path = scored_run(runs_dir)

    async def run_before(pilot):
        pilot.app.push_screen(MistakesScreen(path))
        await shown(pilot, MistakesScreen, "test images wrong")

    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.slow
async def test_a_late_answer_for_an_older_state_is_ignored(make_app):
    from damtui.tui.screens.dataset_view import Browsed

    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(DatasetScreen("synthetic2d"))
        await shown(pilot, DatasetScreen, "0 no blob: 8 of")
        app.screen.post_message(Browsed(app.screen._data, [], ("val", None, 0, True)))
        await settle(pilot)
        assert len(app.screen.query(PictureTile)) == 16 and "split train" in flat_text(app)
        app.screen.post_message(Browsed(app.screen._data, [], app.screen._state()))
        await settle(pilot)
        assert len(app.screen.query(PictureTile)) == 0  # the current state's answer is shown


@pytest.mark.slow
async def test_keys_in_the_browser_do_not_recount_the_voxels(make_app, monkeypatch):
    """Issue 26 item 21: `]` took 0.9 s and `t` 1-3 s on adrenalmnist3d: every answer recomputed the
    class counts and pixel statistics of all splits on the app's thread. Now once, in the worker."""
    calls = []
    real = gallery.pixel_stats
    monkeypatch.setattr(gallery, "pixel_stats", lambda data: calls.append(1) or real(data))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        app.push_screen(DatasetScreen("synthetic2d"))  # (the cost is the same per key in 2D, smaller)
        await shown(pilot, DatasetScreen, "pixels (train)")
        for key, text in (("t", "split val"), ("l", "0 no blob: 8 of")):
            await pilot.press(key)
            await shown(pilot, DatasetScreen, text)
        assert "pixels (val)" in flat_text(app)
        assert len(calls) == 1


async def test_mistakes_read_the_images_from_the_runs_own_data_root(make_app, runs_dir, tmp_path):
    """Issue 26: a run trained with `--data-root` elsewhere; the app looked for its test images in its
    own data root and answered 'chestmnist.npz not found; fetch it'."""
    import json

    from support import write_chest_like

    root = write_chest_like(tmp_path / "elsewhere")
    path = make_run(runs_dir, "20240601-120000-chestmnist-pretrain-cccccc", epochs_done=2, dataset="chestmnist")
    saved = json.loads((path / runs.CONFIG).read_text())
    saved["runtime"]["data_root"] = str(root)
    runs.atomic_write_json(path / runs.CONFIG, saved)
    labels, scores = np.zeros((48, 14), np.int64), np.zeros((48, 14), np.float32)
    scores[4, 0], labels[6, 0] = 0.9, 1  # label 0: one false positive, one false negative
    np.savez(path / runs.SCORES, epoch=np.int64(runs.load_run(path).info.result.epoch), val_scores=scores,
             val_labels=labels, test_scores=scores, test_labels=labels, val_threshold=np.full(14, 0.5, np.float32))
    app = make_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.push_screen(MistakesScreen(path))
        await shown(pilot, MistakesScreen, "test images wrong")
        assert "2 of 48 test images wrong" in flat_text(app) and "not found" not in flat_text(app)
