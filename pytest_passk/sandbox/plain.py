"""Plain data: the only values that cross between a candidate's process and the judge.

Stdlib only (the sandbox worker loads this file by path). A candidate's value is converted to a
JSON document built from exact builtin types only; subclasses are read through their base type's
own methods, so an overridden ``__eq__``, ``__iter__`` or ``__str__`` never runs and never crosses.
numpy scalars and arrays become the plain values of their ``tolist()``.
What cannot be converted becomes a marker that the judge turns into :class:`Opaque`, a value that
refuses to be compared, hashed or tested for truth, so an always-equal object can never pass.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["TAG", "Opaque", "decode", "dumps", "encode", "loads"]

#: Key of a tagged value; every JSON object in an encoding is tagged, so raw objects never occur.
TAG = "#"
MAX_DEPTH = 200
MAX_ITEMS = 1_000_000


class EncodeError(ValueError):
    """The value is not plain data (or is too large or deep)."""


class Opaque:
    """Stands for a value that was not plain data. Comparing, hashing or testing it is an error.

    The error is raised as :class:`NotPlainData`, a ``BaseException``, so a test's
    ``except Exception`` cannot swallow it and let a non-plain value pass.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<non-plain value of type {self.type_name}>"

    def _refuse(self, *_: object) -> Any:
        raise NotPlainData(f"the candidate returned a non-plain value of type {self.type_name}")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __float__ = __int__ = _refuse
    __index__ = __abs__ = __neg__ = __round__ = __truediv__ = __rtruediv__ = _refuse
    __getattr__ = _refuse


class NotPlainData(BaseException):
    """A non-plain value was used in the judge: the candidate can never pass."""


def encode(value: object, *, strict: bool = False) -> Any:
    """Convert ``value`` to JSON-able plain data; what is not plain becomes an opaque marker
    (or, with ``strict``, raises :class:`EncodeError`).
    """
    try:
        return _encode(value, 0, [0])
    except (EncodeError, RecursionError, ValueError, OverflowError):
        if strict:
            raise EncodeError(_type_name(value)) from None
        return {TAG: "opaque", "v": _type_name(value)}


def _type_name(value: object) -> str:
    try:
        return str(type.__getattribute__(type(value), "__qualname__"))[:100]
    except Exception:
        return "?"


def _encode(value: object, depth: int, count: list[int]) -> Any:
    if depth > MAX_DEPTH:
        raise EncodeError("too deep")
    count[0] += 1
    if count[0] > MAX_ITEMS:
        raise EncodeError("too large")
    kind = type(value)
    if value is None or kind is bool or kind is str:
        return value
    if kind is int:
        return value if -(2**53) < value < 2**53 else {TAG: "int", "v": hex(value)}  # type: ignore[operator, arg-type]
    if kind is float:
        return value if math.isfinite(value) else {TAG: "float", "v": repr(value)}  # type: ignore[arg-type]
    nxt = depth + 1
    # Subclasses are read through their base type's own slots: no candidate code runs.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return _encode(int.__index__(value), depth, count)
    if isinstance(value, float):
        return _encode(float.__float__(value), depth, count)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_encode(item, nxt, count) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        return {TAG: "tuple", "v": [_encode(item, nxt, count) for item in tuple.__iter__(value)]}
    if isinstance(value, dict):
        items = [[_encode(k, nxt, count), _encode(v, nxt, count)] for k, v in dict.items(value)]
        return {TAG: "dict", "v": items}
    if isinstance(value, frozenset):
        return {TAG: "frozenset", "v": [_encode(i, nxt, count) for i in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {TAG: "set", "v": [_encode(item, nxt, count) for item in set.__iter__(value)]}
    if isinstance(value, bytes | bytearray):
        return {TAG: "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {TAG: "complex", "v": [repr(value.real), repr(value.imag)]}
    module = str(getattr(kind, "__module__", ""))
    if module == "numpy" or module.startswith("numpy."):
        # numpy scalars and arrays compare like the Python values ``tolist()`` gives. Running
        # it is safe: whatever it returns is encoded again, and only plain data crosses.
        return _encode(value.tolist(), nxt, count)  # type: ignore[attr-defined]
    raise EncodeError(_type_name(value))


def decode(data: Any, depth: int = 0) -> Any:
    """Inverse of :func:`encode`; markers become :class:`Opaque` values."""
    if depth > MAX_DEPTH + 1:
        raise ValueError("plain data nested too deeply")
    if isinstance(data, list):
        return [decode(item, depth + 1) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    payload: Any = data.get("v")
    nxt = depth + 1
    if tag == "tuple":
        return tuple(decode(item, nxt) for item in payload)
    if tag == "dict":
        return {_hashable(decode(k, nxt)): decode(v, nxt) for k, v in payload}
    if tag == "set":
        return {_hashable(decode(item, nxt)) for item in payload}
    if tag == "frozenset":
        return frozenset(_hashable(decode(item, nxt)) for item in payload)
    if tag == "int":
        return int(payload, 16)
    if tag == "float":
        return float(payload)
    if tag == "bytes":
        return bytes.fromhex(payload)
    if tag == "complex":
        return complex(float(payload[0]), float(payload[1]))
    return Opaque(str(payload)[:100])


def _hashable(value: Any) -> Any:
    if isinstance(value, Opaque):
        raise NotPlainData(repr(value))
    return value


def dumps(value: Any) -> bytes:
    """One protocol frame: compact JSON and a newline (JSON escapes newlines inside strings)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def loads(line: bytes) -> Any:
    """Parse one frame."""
    return json.loads(line)
