"""How a picture becomes terminal cells, shared by the CLI (rich) and the app (Textual widgets).

Rendering is textual-image's: Kitty/Sixel graphics where the terminal speaks them ("auto"),
coloured half-blocks (two pixels per cell, so square pixels) in plain tmux over SSH, and its
greyscale character ramp when NO_COLOR is set (half-blocks are nothing but colour, so without
colour they would show a flat block). `DAMTUI_IMAGES=auto|halfcell|unicode` forces one.
This module only sizes the pictures: pixels are prepared here, nearest neighbour when enlarging,
so textual-image's own resize never has to invent pixels.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

MODES = ("auto", "halfcell", "unicode")
ENV = "DAMTUI_IMAGES"
PROTOCOL_UPSCALE = 4  # pixels per image pixel handed to Kitty/Sixel


def mode() -> str:
    """The renderer to use now: $DAMTUI_IMAGES, else the character ramp under NO_COLOR, else auto."""
    forced = os.environ.get(ENV, "").strip().lower()
    if forced in MODES:
        return forced
    return "unicode" if os.environ.get("NO_COLOR") else "auto"


def cells(picture: np.ndarray, scale: float = 1.0) -> tuple[int, int]:
    """(columns, rows) a picture takes: one column per pixel and one row per two, times scale."""
    h, w = picture.shape[:2]
    return max(1, round(w * scale)), max(1, round(h * scale / 2))


def prepared(picture: np.ndarray, columns: int, rows: int, how: str) -> Any:
    """A PIL image with exactly the pixels the renderer draws into (columns x rows) cells."""
    from PIL import Image

    img = Image.fromarray(picture)
    if how == "auto":
        size = (columns * PROTOCOL_UPSCALE, rows * 2 * PROTOCOL_UPSCALE)
    else:
        size = (columns, rows * 2 if how == "halfcell" else rows)
    if size == img.size:
        return img
    enlarging = size[0] >= img.width and size[1] >= img.height
    return img.resize(size, Image.Resampling.NEAREST if enlarging else Image.Resampling.BOX)


def renderable(picture: np.ndarray, scale: float = 1.0, how: str | None = None) -> Any:
    """A rich renderable of the picture for a plain console (the CLI)."""
    from textual_image import renderable as tr

    how = how or mode()
    cls = {"auto": tr.Image, "halfcell": tr.HalfcellImage, "unicode": tr.UnicodeImage}[how]
    columns, rows = cells(picture, scale)
    return cls(prepared(picture, columns, rows, how), width=columns, height=rows)
