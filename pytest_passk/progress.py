"""Progress lines for long phases, written through pytest's terminal reporter.

Rate-limited so a long run prints a line every few seconds, not one per candidate. xdist workers
have no terminal: there, xdist's own per-item progress is what the user sees.
"""

from __future__ import annotations

import time

import pytest

__all__ = ["PROGRESS_EVERY", "Progress"]

PROGRESS_EVERY = 5.0


class Progress:
    """Writes at most one progress line per :data:`PROGRESS_EVERY` seconds (unless forced)."""

    def __init__(self, config: pytest.Config, *, enabled: bool) -> None:
        self._config = config
        self._enabled = enabled
        self._last = 0.0

    def say(self, text: str, *, force: bool = False) -> None:
        """Write ``text`` on a line of its own, unless a line went out very recently."""
        if not self._enabled:
            return
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        now = time.monotonic()
        if reporter is None or (not force and now - self._last < PROGRESS_EVERY):
            return
        self._last = now
        reporter.ensure_newline()
        reporter.write_line(text)

    def warn(self, text: str) -> bool:
        """Write a warning line; ``False`` when there is no terminal to write it on."""
        reporter = self._config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or not self._enabled:
            return False
        reporter.ensure_newline()
        reporter.write_line(f"passk: warning: {text}", yellow=True)
        return True
