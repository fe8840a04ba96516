"""Typed keys under which the plugin keeps its state in ``config.stash`` (never module globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    # Only for the key types: importing these at run time would be circular.
    from pytest_passk.session import PassKSession  # noqa: F401
    from pytest_passk.settings import Settings  # noqa: F401

__all__ = ["SESSION_KEY", "SETTINGS_KEY"]

SETTINGS_KEY = pytest.StashKey["Settings"]()
SESSION_KEY = pytest.StashKey["PassKSession"]()
