"""A run's own annotations, part of the run store (with runs.py and files.py; its log.txt is log.py's):

  notes.json  the user's display name, notes text and tags for the run; replaced atomically.
              Written by `damtui runs rename/note/tag` and the app, never by the training process,
              so it may change while the run trains.

The folder name stays the run's identity (fine-tunes record their source by it); a rename only
changes the display name kept here.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from damtui.errors import DamtuiError
from damtui.store.files import NOTES, UnsafeFile, atomic_write_json, read_json

MAX_NAME, MAX_TAG, MAX_NOTES = 80, 40, 10_000


@dataclass(frozen=True)
class RunNotes:
    """What the user wrote about a run; empty for a run nobody annotated."""

    name: str = ""
    text: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.name or self.text or self.tags)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "notes": self.text, "tags": list(self.tags)}

    @classmethod
    def from_json(cls, obj: Any) -> RunNotes:
        """Tolerant: a hand-edited file with wrong types yields what can be read, not an error
        that would hide the run."""
        if not isinstance(obj, dict):
            return cls()
        name, text, tags = obj.get("name"), obj.get("notes"), obj.get("tags")
        return cls(name=name if isinstance(name, str) else "", text=text if isinstance(text, str) else "",
                   tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ())

    @property
    def first_line(self) -> str:
        return self.text.strip().splitlines()[0] if self.text.strip() else ""


class NotesDamage(DamtuiError):
    """notes.json is not what damtui writes: the run lists as damaged, and nothing replaces it."""


def notes_damage(obj: Any) -> str:
    """'' when `obj` is what damtui writes to notes.json, else what is wrong with it."""
    if not isinstance(obj, dict):
        return "not a JSON object"
    name, text, tags = obj.get("name", ""), obj.get("notes", ""), obj.get("tags", [])
    if not isinstance(name, str) or len(name) > MAX_NAME:
        return f"'name' is not a text of at most {MAX_NAME} characters"
    if not isinstance(text, str) or len(text) > MAX_NOTES:
        return f"'notes' is not a text of at most {MAX_NOTES} characters"
    if not isinstance(tags, list) or not all(isinstance(t, str) and 0 < len(t) <= MAX_TAG for t in tags):
        return f"'tags' is not a list of words of at most {MAX_TAG} characters"
    return ""


def read_notes(run_dir: Path) -> RunNotes:
    """The run's notes; empty when it has none; NotesDamage (one line) when notes.json is not
    what damtui writes: unreadable, a link, FIFO or folder, too large, or of the wrong shape."""
    path = Path(run_dir) / NOTES
    try:
        obj = read_json(path)
    except FileNotFoundError:
        return RunNotes()
    except UnsafeFile as err:
        raise NotesDamage(str(err)) from None
    except (OSError, ValueError) as err:
        raise NotesDamage(f"{path}: not readable JSON ({getattr(err, 'strerror', None) or type(err).__name__});"
                          " fix it or move it away") from None
    damage = notes_damage(obj)
    if damage:
        raise NotesDamage(f"{path}: {damage}; fix it or move it away")
    return RunNotes.from_json(obj)


def load_notes(run_dir: Path) -> RunNotes:
    """What can be read of the run's notes, never an error: a damaged run's list row shows it."""
    try:
        return RunNotes.from_json(read_json(Path(run_dir) / NOTES))
    except (OSError, ValueError):
        return RunNotes()


def save_notes(run_dir: Path, notes: RunNotes) -> None:
    atomic_write_json(Path(run_dir) / NOTES, notes.to_json())


def check_name(name: str) -> str:
    name = name.strip()
    if "\n" in name or not name.isprintable() or len(name) > MAX_NAME:
        raise DamtuiError(f"a run name is one printable line of at most {MAX_NAME} characters")
    return name


def check_tag(tag: str) -> str:
    tag = tag.strip()
    if not tag or len(tag) > MAX_TAG or not tag.isprintable() or any(c.isspace() or c == "," for c in tag):
        raise DamtuiError(f"tag {tag!r}: a tag is one word of at most {MAX_TAG} characters, no commas")
    return tag


def parse_tags(text: str) -> list[str]:
    """'a, b c' -> ['a', 'b', 'c']: what a user types into one field."""
    return [check_tag(t) for t in text.replace(",", " ").split()]


def update_notes(run_dir: Path, change: Callable[[RunNotes], RunNotes]) -> RunNotes:
    """Change the notes as read now; a damaged notes.json is refused, never replaced (what the
    user wrote there may still be readable to them)."""
    notes = change(read_notes(run_dir))
    save_notes(run_dir, notes)
    return notes


def rename_run(run_dir: Path, name: str) -> RunNotes:
    """Set the run's display name ('' clears it); the folder, and so every reference, stays."""
    name = check_name(name)
    return update_notes(run_dir, lambda n: replace(n, name=name))


def check_notes(text: str) -> str:
    """Notes as stored: stripped, at most MAX_NOTES characters of printable lines (an ESC
    sequence pasted into them would steer the terminal of whoever reads them)."""
    text = text.strip()
    if len(text) > MAX_NOTES:
        raise DamtuiError(f"notes are at most {MAX_NOTES} characters (got {len(text)})")
    bad = next((c for c in text if not c.isprintable() and c not in "\n\t"), None)
    if bad is not None:
        raise DamtuiError(f"notes are printable text in lines; remove the control character {bad!r}")
    return text


def set_notes(run_dir: Path, text: str) -> RunNotes:
    text = check_notes(text)
    return update_notes(run_dir, lambda n: replace(n, text=text))


def set_tags(run_dir: Path, tags: list[str]) -> RunNotes:
    clean = tuple(dict.fromkeys(check_tag(t) for t in tags))
    return update_notes(run_dir, lambda n: replace(n, tags=clean))


def tag_run(run_dir: Path, tags: list[str], remove: bool = False) -> RunNotes:
    """Add the tags (kept in the order first given) or remove them."""
    wanted = [check_tag(t) for t in tags]
    if not wanted:
        raise DamtuiError("name at least one tag")

    def change(n: RunNotes) -> RunNotes:
        kept = [t for t in n.tags if t not in wanted] if remove else list(dict.fromkeys([*n.tags, *wanted]))
        return replace(n, tags=tuple(kept))

    return update_notes(run_dir, change)
