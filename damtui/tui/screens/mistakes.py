"""A run's mistakes: test images its answer checkpoint gets wrong at the validation threshold,
false positives and false negatives, most confident first, each with its score.

Scores come from the run's saved scores when it has them, else best.pt is scored once in a
thread worker (damtui.analysis.mistakes says which, and the screen shows that note).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Header, Static

from damtui.data import datasets
from damtui.analysis import gallery, mistakes
from damtui.store import runs
from damtui.errors import DamtuiError
from damtui.text import markup, shown
from damtui.tui.widgets.key_footer import KeyFooter
from damtui.tui.widgets.pictures import PicturesScreen

SHOWN = 24  # pictures per kind; the facts line gives the full counts


@dataclass
class MistakesFound(Message):
    answer: mistakes.AnswerScores | None
    found: mistakes.Mistakes | None
    groups: list[tuple[str, list[gallery.Sample]]]
    spec: datasets.DatasetSpec | None = None
    label: int = 0
    error: str = ""


class MistakesScreen(PicturesScreen):
    SUB_TITLE = "mistakes"
    BINDINGS = [Binding("l", "next_label", "Label")]

    label: reactive[int] = reactive(0, init=False)

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._answer: mistakes.AnswerScores | None = None
        self._spec: datasets.DatasetSpec | None = None
        self.sub_title = f"mistakes of {shown(self.path.name)}"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False, icon="≡")
        yield Static(f"{markup(self.path.name)}: scoring the answer checkpoint…", id="mistakes-facts", classes="facts")
        yield VerticalScroll(id="mistakes-grid", classes="picture-grid")
        yield KeyFooter()

    def on_mount(self) -> None:
        self.find()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "next_label" and not (self._spec and self._spec.multilabel):
            return None
        return True

    @work(thread=True, exclusive=True, group="mistakes")
    def find(self) -> None:
        label = self.label
        # the images it was trained on, where they still are; else the app's data root
        root = runs.data_root_of(self.path, None) or getattr(self.app, "data_root", None)
        try:
            info = runs.load_run(self.path).info
            spec = datasets.spec(info.dataset)
            answer = self._answer or mistakes.answer_scores(self.path, root)
            found = mistakes.run_mistakes(answer, label)
            images = mistakes.test_images(answer, spec.flag, root)
        except DamtuiError as err:
            self.post_message(MistakesFound(None, None, [], label=label, error=str(err)))
            return

        def samples(rows: list[mistakes.Mistake]) -> list[gallery.Sample]:
            return [gallery.Sample(m.index, gallery.tile(images[m.index], spec.is_3d), f"#{m.index} {m.score:.3f}")
                    for m in rows[:SHOWN]]

        groups = [(f"false positives: {len(found.false_positives)} (label 0, score > threshold), most"
                   " confident first", samples(found.false_positives)),
                  (f"false negatives: {len(found.false_negatives)} (label 1, score <= threshold), most"
                   " confident first", samples(found.false_negatives))]
        self.post_message(MistakesFound(answer, found, groups, spec, label))

    def on_mistakes_found(self, message: MistakesFound) -> None:
        if message.label != self.label:
            return  # an older request finishing late (thread workers cannot be stopped)
        facts = self.query_one("#mistakes-facts", Static)
        if message.error or message.answer is None or message.found is None:
            facts.update(f"[b red]{markup(message.error)}[/]")
            return
        self._answer, a, f = message.answer, message.answer, message.found
        self._spec = message.spec
        self.refresh_bindings()
        spec = self._spec
        what = (f"label {f.label} {dict(gallery.classes(spec))[f.label]}" if spec and spec.multilabel
                else f"class 1 {spec.label_names.get('1', '') if spec else ''}")
        where = "" if a.run_dir == self.path else f" of {markup(a.run_dir.name)}"
        facts.update(f"answer: {a.stage} epoch {a.epoch}{where} · {what} · threshold {f.threshold:.4f}"
                     f" (chosen on val) · {f.wrong} of {f.n_test} test images wrong\n[dim]{markup(a.note)}[/]")
        self.show_groups(self.query_one("#mistakes-grid", VerticalScroll), message.groups)

    def watch_label(self) -> None:
        self.find()

    def action_next_label(self) -> None:
        if self._answer is not None:
            self.label = (self.label + 1) % self._answer.test_scores.shape[1]
