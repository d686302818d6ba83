"""The dataset browser: samples per class with medmnist's label names, class counts per split,
pixel statistics, 3D volumes as three orthogonal slices, and the training augmentation's view.

The file is read and the grid prepared in a thread worker (damtui.analysis.gallery); the handler of its
message owns the widgets. Keys change reactive state; each watcher asks the worker again.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Header, Static

from damtui.data import datasets
from damtui.analysis import gallery
from damtui.errors import DamtuiError
from damtui.text import markup
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.pictures import PicturesScreen

PER_CLASS = 8


@dataclass
class Browsed(Message):
    """What the worker prepared for one (split, label, offset, augment) state, or why it could not."""

    data: datasets.Splits | None
    groups: list[gallery.ClassSamples]
    state: tuple = ()
    error: str = ""


@dataclass
class Summarised(Message):
    """The class counts and pixel statistics of every split: computed once, after the first pictures."""

    summary: tuple[list, list]


class DatasetScreen(PicturesScreen):
    SUB_TITLE = "dataset"
    BINDINGS = [
        Binding("t", "next_split", "Split"),
        Binding("v", "toggle_augment", "Training view"),
        Binding("l", "next_label", "Label"),
        Binding("left_square_bracket", "offset(-1)", "Slice -", key_display="["),
        Binding("right_square_bracket", "offset(1)", "Slice +", key_display="]"),
    ]

    split: reactive[str] = reactive("train", init=False)
    augment: reactive[bool] = reactive(False, init=False)
    label: reactive[int | None] = reactive(None, init=False)  # None: every class
    offset: reactive[int] = reactive(0, init=False)

    def __init__(self, flag: str) -> None:
        super().__init__()
        self.flag = flag
        self.spec = datasets.spec(flag)
        self._data: datasets.Splits | None = None
        self._summary: tuple[list, list] | None = None  # counts and pixel stats of every split
        self.error = ""  # why the file could not be read
        self.sub_title = f"dataset {flag}"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static(f"{self.flag}: reading…", id="ds-facts", classes="facts")
        yield Static("", id="ds-counts", classes="facts muted")
        yield VerticalScroll(id="ds-grid", classes="picture-grid")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.browse()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("next_split", "toggle_augment", "next_label", "offset") and self.error:
            return False  # nothing to browse (a missing or broken file): only escape is offered
        if action == "offset" and not self.spec.is_3d:
            return False  # 2D images have no depth
        return True

    # ------------------------------------------------------------------ the worker
    @work(thread=True, exclusive=True, group="browse")
    def browse(self) -> None:
        state = self._state()
        try:
            data = self._data or datasets.load(self.flag, getattr(self.app, "data_root", None))
            keys = None if self.label is None else [self.label]
            groups = gallery.browse(data, self.split, keys, PER_CLASS, self.offset, self.augment)
        except DamtuiError as err:
            self.post_message(Browsed(None, [], state, str(err)))
            return
        self.post_message(Browsed(data, groups, state))
        if self._summary is None:  # a second over a 3D set's voxels: once, after the pictures, never per key
            self.post_message(Summarised((gallery.class_counts(data), gallery.pixel_stats(data))))

    def _state(self) -> tuple:
        return (self.split, self.label, self.offset, self.augment)

    def on_browsed(self, message: Browsed) -> None:
        if message.state != self._state():
            return  # an older request finishing late (thread workers cannot be stopped)
        facts = self.query_one("#ds-facts", Static)
        self.error = message.error
        self.refresh_bindings()
        if message.error:
            facts.update(f"[b red]{markup(message.error)}[/]")
            return
        self._data = data = message.data
        assert data is not None
        facts.update(self._facts(data))
        self._show_counts()
        self.show_groups(self.query_one("#ds-grid", VerticalScroll),
                         [(f"{g.key} {g.name}: {len(g.samples)} of {g.total} in {self.split}", g.samples)
                          for g in message.groups])

    def on_summarised(self, message: Summarised) -> None:
        self._summary = message.summary
        self._show_counts()

    def _show_counts(self) -> None:
        text = self._counts(*self._summary) if self._summary is not None else "counting classes and pixels…"
        self.query_one("#ds-counts", Static).update(text)

    # ------------------------------------------------------------------ text
    def _facts(self, data: datasets.Splits) -> str:
        s = data.spec
        kind = ("3D" if s.is_3d else "2D") + (" multi-label" if s.multilabel else " binary")
        view = "[b]augmented[/] (training view)" if self.augment else "original"
        shown = "every class" if self.label is None else dict(gallery.classes(s))[self.label]
        depth = (f" · planes {'/'.join(gallery.PLANES)} at middle{self.offset:+d}" if s.is_3d else "")
        return f"[b]{s.flag}[/] {kind} · split [b]{self.split}[/] · {view} · {shown}{depth}"

    def _counts(self, counts: list, stats: list) -> str:
        lines = [f"{c.key} {c.name[:24]}: " + " · ".join(f"{sp} {n}" for sp, n in c.counts.items())
                 for c in counts]
        p = next(p for p in stats if p.split == self.split)
        lines.append(f"pixels ({p.split}): mean {p.mean:.1f} · std {p.std:.1f} · range {p.low}-{p.high}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ keys
    def watch_split(self) -> None:
        self.browse()

    def watch_augment(self) -> None:
        self.browse()

    def watch_label(self) -> None:
        self.browse()

    def watch_offset(self) -> None:
        self.browse()

    def action_next_split(self) -> None:
        self.split = datasets.SPLITS[(datasets.SPLITS.index(self.split) + 1) % len(datasets.SPLITS)]

    def action_toggle_augment(self) -> None:
        self.augment = not self.augment

    def action_next_label(self) -> None:
        keys = [None, *(k for k, _ in gallery.classes(self.spec))]
        self.label = keys[(keys.index(self.label) + 1) % len(keys)]

    def action_offset(self, step: int) -> None:
        self.offset = max(-14, min(13, self.offset + step))
