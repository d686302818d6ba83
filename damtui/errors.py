"""The one exception type front ends turn into a one-line message instead of a traceback."""

from __future__ import annotations


class DamtuiError(Exception):
    """A problem the user can fix; the message says what happened and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
