"""Progress lines for long phases, rate-limited so a long run prints a line every few seconds.

Pure core: the shell hands :class:`Progress` a function that writes one line on pytest's terminal
(or ``None`` where there is no terminal, as on xdist workers, whose users see xdist's own
per-item progress).
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["PROGRESS_EVERY", "LineWriter", "Progress"]

PROGRESS_EVERY = 5.0

#: ``write(text, warning)`` writes one line; returns ``False`` when there is no terminal.
LineWriter = Callable[[str, bool], bool]


class Progress:
    """Writes at most one progress line per :data:`PROGRESS_EVERY` seconds (unless forced)."""

    def __init__(self, write: LineWriter | None) -> None:
        self._write = write
        self._last = 0.0

    def say(self, text: str, *, force: bool = False) -> None:
        """Write ``text`` on a line of its own, unless a line went out very recently."""
        now = time.monotonic()
        if self._write is None or (not force and now - self._last < PROGRESS_EVERY):
            return
        if self._write(text, False):
            self._last = now

    def warn(self, text: str) -> bool:
        """Write a warning line; ``False`` when there is no terminal to write it on."""
        return self._write is not None and self._write(f"passk: warning: {text}", True)
