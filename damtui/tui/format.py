"""Text formatting shared by screens and widgets; pure functions, no textual import."""

from __future__ import annotations

import math
import re
import time
from typing import Any


STATUS_MARK = {
    "running": "▶",
    "finished": "✓",
    "failed": "✗",
    "cancelled": "■",
    "crashed": "!",
    "damaged": "⊘",
    "starting": "…",
    "cancelling": "…",
}


def count(n: int, noun: str) -> str:
    """'1 epoch', '2 epochs': a number with its noun in the right form."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def num(value: Any, digits: int = 4) -> str:
    if value is None or isinstance(value, bool):
        return "-"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "-"
    return f"{v:.{digits}f}"


def short_float(value: Any) -> str:
    """lr-like numbers: 0.1, 0.001, 1e-05."""
    if value is None:
        return "-"
    try:
        return f"{float(value):.3g}"
    except (TypeError, ValueError):
        return str(value)


def duration(seconds: float | None) -> str:
    from damtui.analysis.compare import format_duration  # numpy: not at the app's start

    if seconds is not None and not math.isfinite(seconds):  # from a hand-edited file: never an OverflowError
        return "-"
    return format_duration(seconds)


def eta(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "-"
    from damtui.analysis.compare import format_duration

    return format_duration(seconds)


def timestamp(epoch_s: float | None) -> str:
    """Local start time as 'YYYY-MM-DD HH:MM'; '-' when unknown."""
    if not epoch_s:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch_s))


def status_text(status: str) -> str:
    return f"{STATUS_MARK.get(status, '?')} {status}"


def short_run_id(run_id: str) -> str:
    """'20240601-120000-breastmnist-pretrain-a1b2c3' -> 'a1b2c3'; names given with --name whole."""
    from damtui.analysis.compare import short_id

    return short_id(run_id)


def clip(text: str, width: int) -> str:
    """`text` within `width` cells, its end cut to '…' when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def fit_path(path: Any, width: int) -> str:
    """A path within `width` cells without breaking a word: the home folder as ~, then middle
    folders as … ('/data/…/medmnist'), so a narrow pane never wraps a path mid-name."""
    import os

    text = str(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        text = "~" + text[len(home):]
    parts = text.split(os.sep)
    while len(text) > width and len(parts) > 2:
        keep = parts[:1] + ["…"] + parts[2:] if parts[1] != "…" else parts[:2] + parts[3:]
        if keep == parts:
            break
        parts = keep
        text = os.sep.join(parts)
    return text


def value_text(value: Any) -> str:
    """A config value as it is typed in the editor (TOML literal syntax; empty for none)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    return str(value)


def error_for_key(message: str) -> tuple[str | None, str]:
    """Split a config.validate error 'WHERE: key 'K': MSG' into (K, MSG)."""
    m = re.search(r"key '([^']*)': (.*)$", message)
    if not m:
        return None, message
    key = m.group(1).split(".")[0]
    return (None if key == "(preset)" else key), m.group(2)


def short_preset(name: str, dataset: str, stage: str) -> str:
    """'breastmnist-pretrain-report' -> 'report' where dataset and stage are shown next to it."""
    for prefix in (f"{dataset}-{stage}-", f"any-{stage}-"):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return name or "-"
