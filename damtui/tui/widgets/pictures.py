"""Sample pictures in the app: textual-image widgets sized in cells, with a caption, in groups.

textual-image picks Kitty/Sixel graphics when the terminal has them and half-blocks otherwise;
damtui.analysis.pictures.mode() says which renderer (half-blocks or the character ramp can be forced, and
NO_COLOR selects the ramp). Importing textual_image.widget asks the terminal for its cell size,
which only works before Textual takes the terminal over: the app imports this module first.
"""

from __future__ import annotations

from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import ItemGrid, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label
from textual_image.widget import HalfcellImage, UnicodeImage
from textual_image.widget import Image as AutoImage

from damtui.analysis.gallery import Sample
from damtui.analysis.pictures import cells, mode, prepared

WIDGETS = {"auto": AutoImage, "halfcell": HalfcellImage, "unicode": UnicodeImage}


class PictureTile(Vertical):
    """One sample: its picture at `scale` cells per pixel column, and its caption under it."""

    DEFAULT_CSS = """
    PictureTile { width: auto; height: auto; margin: 0 1 0 0; }
    PictureTile > Label { height: 1; color: $text-muted; }
    """

    def __init__(self, sample: Sample, scale: float = 1.0) -> None:
        super().__init__()
        self.sample, self.scale = sample, scale

    def compose(self) -> ComposeResult:
        how = mode()
        columns, rows = cells(self.sample.picture, self.scale)
        picture = WIDGETS[how](prepared(self.sample.picture, columns, rows, how))
        picture.styles.width, picture.styles.height = columns, rows
        yield picture
        label = Label(self.sample.caption[:columns])
        label.styles.width = columns
        yield label


class PictureGroup(Vertical):
    """A heading and its samples in as many columns as the width allows."""

    DEFAULT_CSS = """
    PictureGroup { height: auto; padding: 0 1; }
    PictureGroup > .heading { text-style: bold; color: $accent; height: auto; }
    PictureGroup > ItemGrid { height: auto; }
    """

    def __init__(self, heading: str, samples: Sequence[Sample], scale: float = 1.0) -> None:
        super().__init__()
        self.heading, self.samples, self.scale = heading, list(samples), scale

    def compose(self) -> ComposeResult:
        yield Label(self.heading, classes="heading")
        if not self.samples:
            yield Label("none", classes="empty")
            return
        width = cells(self.samples[0].picture, self.scale)[0] + 1
        with ItemGrid(min_column_width=width, max_column_width=width):
            for s in self.samples:
                yield PictureTile(s, self.scale)


def fit_scale(picture_width: int, screen_width: int, screen_height: int) -> float:
    """Full size (one cell per pixel column) when two pictures fit side by side on a tall
    screen, half size otherwise, so an 80x24 terminal still shows a row of several."""
    return 1.0 if screen_width >= 2 * (picture_width + 2) + 2 and screen_height >= 40 else 0.5


class PicturesScreen(Screen):
    """What the dataset browser and the mistakes view share: a title, escape back, and a
    scrolling grid of picture groups sized to the screen."""

    TITLE = "damtui"
    DEFAULT_CSS = """
    PicturesScreen .facts { height: auto; padding: 0 1; }
    PicturesScreen .muted { color: $text-muted; }
    PicturesScreen .picture-grid { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "back", "Back")]

    def show_groups(self, grid: VerticalScroll, groups: Sequence[tuple[str, Sequence[Sample]]]) -> None:
        grid.remove_children()
        shown = [s for _, group in groups for s in group]
        scale = fit_scale(shown[0].picture.shape[1] if shown else 28, self.size.width, self.size.height)
        grid.mount_all(PictureGroup(title, group, scale) for title, group in groups)

    def action_back(self) -> None:
        self.dismiss()
