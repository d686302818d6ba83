"""Text from a run folder is never markup or terminal control in the CLI (issue 28, items 2-3):
a folder named `[@click=app.quit]clickme`, a display name `[link=...]x[/link]`, a tag `[/]`, a
status message `boom [/] [bold]x` and ESC/BEL sequences in notes, messages and log lines."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from damtui.store import runs

FOLDER = "[@click=app.quit]clickme"
NAME = "[link=https://evil.example]x[/link]"
TAG = "[/]"
MESSAGE = "boom [/] [bold]x"
ESCAPES = "a\x1b]0;PWNED\x07\x1b[2Jb"


@pytest.fixture
def hostile(pretrain_run, runs_dir):
    path = runs_dir / FOLDER
    shutil.copytree(pretrain_run, path)
    (path / runs.NOTES).write_text(json.dumps({"name": NAME, "notes": ESCAPES, "tags": [TAG, "t\x1bx"]}))
    status = json.loads((path / runs.STATUS).read_text())
    (path / runs.STATUS).write_text(json.dumps({**status, "message": MESSAGE + "\x1b[31m"}))
    (path / runs.LOG).write_text(f"12:00:00 {ESCAPES}\n")
    return path


def _raw_control(text: str) -> bool:
    return any(ch in text for ch in "\x1b\x07\x9b")


def test_runs_list_on_a_terminal_shows_names_as_typed(damtui, hostile, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the Rich table, which read cells as markup
    rc, out, err = damtui("runs", "list")
    assert rc == 0, err
    assert FOLDER in out and NAME in out and f"#{TAG}" in out and "#t␛x" in out
    assert "\x1b]8;" not in out  # no live hyperlink


def test_runs_list_show_and_log_print_control_characters_visibly(damtui, hostile):
    rc, out, err = damtui("runs", "list")
    assert rc == 0 and NAME in out and not _raw_control(out), err
    rc, out, err = damtui("runs", "show", FOLDER)
    assert rc == 0, err
    assert "a␛]0;PWNED␇␛[2Jb" in out and f"message: {MESSAGE}␛[31m" in out and not _raw_control(out)
    rc, out, err = damtui("runs", "log", FOLDER)
    assert rc == 0 and "a␛]0;PWNED␇␛[2Jb" in out and not _raw_control(out), err


def test_an_error_naming_a_hostile_file_is_one_visible_line(damtui, hostile):
    (hostile / runs.SCORES).write_bytes(b"\x1b]0;PWNED\x07")
    rc, _, err = damtui("runs", "curves", FOLDER)
    assert rc == 1 and err.startswith("damtui: error: ") and len(err.splitlines()) == 1
    assert FOLDER in err and not _raw_control(err)
