"""The types pytest-passk's ini keys are registered with, for every pytest it supports.

pytest 9's native TOML configuration (``[tool.pytest]`` in ``pyproject.toml``, or
``pytest.toml``) keeps TOML's own value types and checks them against the registered type, so a
key registered as a string refuses ``passk_timeout = 4``. ``Parser.addini`` takes a union of
value types from pytest 9.2 (``versionadded:: 9.2`` in its docstring; earlier versions assert
that the type is one of their string tags): there a numeric key is registered as ``int | str``
or ``float | str``, which takes ``passk_timeout = 4`` and ``passk = "1,10"`` alike in TOML, and
hands an ini file's text to the settings' own validation (pytest coerces it to the first member
that accepts it, else keeps the string). Before 9.2 every such key is a string, as before.
"""

from __future__ import annotations

from typing import Any

import pytest

__all__ = ["INI_UNIONS", "LIST_KEYS", "ini_type"]

#: Whether this pytest registers ini keys with a union of value types.
INI_UNIONS = pytest.version_tuple >= (9, 2)

#: Keys whose values are numbers or booleans; the others are strings.
_SCALAR_KEYS: dict[str, type] = {
    "passk": int,
    "passk_n": int,
    "passk_max_tokens": int,
    "passk_seed": int,
    "passk_workers": int,
    "passk_concurrency": int,
    "passk_temperature": float,
    "passk_top_p": float,
    "passk_timeout": float,
    "passk_request_timeout": float,
    "passk_fail_under": float,
    "passk_openai_batch": bool,
}
#: Keys that hold a list: a TOML array, or words separated by spaces (or commas) in ini files.
LIST_KEYS = frozenset({"passk_model"})


def ini_type(key: str) -> Any:
    """The ``type`` to register ``key`` with on the running pytest."""
    if key in LIST_KEYS:
        return "args"
    scalar = _SCALAR_KEYS.get(key)
    if scalar is None or not INI_UNIONS:
        return "string"
    return scalar | str
