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
from collections.abc import Callable
from typing import Any

__all__ = ["TAG", "Opaque", "View", "decode", "dumps", "encode", "loads", "view"]

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


#: Encodes a value that is not plain data (a candidate's object as a handle, or its view), given
#: the depth it sits at and the shared item count; raises :class:`EncodeError` to refuse it.
Other = Callable[[object, int, list[int]], Any]


def encode(value: object, *, strict: bool = False, other: Other | None = None) -> Any:
    """Convert ``value`` to JSON-able plain data; what is not plain goes to ``other`` if given
    (named tuples too, though they are tuples), else becomes an opaque marker (or, with
    ``strict``, raises :class:`EncodeError`).
    """
    try:
        return _encode(value, 0, [0], other)
    except (EncodeError, RecursionError, ValueError, OverflowError, TypeError):
        if strict:
            raise EncodeError(_type_name(value)) from None
        return {TAG: "opaque", "v": _type_name(value)}


def _type_name(value: object) -> str:
    try:
        return str(type.__getattribute__(type(value), "__qualname__"))[:100]
    except Exception:
        return "?"


def _encode(value: object, depth: int, count: list[int], other: Other | None = None) -> Any:
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
        return _encode(int.__index__(value), depth, count, other)
    if isinstance(value, float):
        return _encode(float.__float__(value), depth, count, other)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, list):
        return [_encode(item, nxt, count, other) for item in list.__iter__(value)]
    if isinstance(value, tuple):
        if other is not None and kind is not tuple and hasattr(kind, "_fields"):
            return other(value, depth, count)  # a named tuple: its own type, not a tuple
        return {
            TAG: "tuple",
            "v": [_encode(item, nxt, count, other) for item in tuple.__iter__(value)],
        }
    if isinstance(value, dict):
        items = [
            [_encode(k, nxt, count, other), _encode(v, nxt, count, other)]
            for k, v in dict.items(value)
        ]
        return {TAG: "dict", "v": items}
    if isinstance(value, frozenset):
        return {
            TAG: "frozenset",
            "v": [_encode(i, nxt, count, other) for i in frozenset.__iter__(value)],
        }
    if isinstance(value, set):
        return {TAG: "set", "v": [_encode(item, nxt, count, other) for item in set.__iter__(value)]}
    if isinstance(value, bytearray):  # mutable: an argument the candidate may change in place
        return {TAG: "bytearray", "v": bytes(value).hex()}
    if isinstance(value, bytes):
        return {TAG: "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {TAG: "complex", "v": [repr(value.real), repr(value.imag)]}
    module = str(getattr(kind, "__module__", ""))
    if module == "numpy" or module.startswith("numpy."):
        # numpy scalars and arrays compare like the Python values ``tolist()`` gives. Running
        # it is safe: whatever it returns is encoded again, and only plain data crosses.
        return _encode(value.tolist(), nxt, count, other)  # type: ignore[attr-defined]
    if other is not None:
        return other(value, depth, count)
    raise EncodeError(_type_name(value))


#: Turns a reference marker (``{"#": "handle" or "ref" or "cb", "v": id, ...}``) into the object
#: it stands for, on the side that reads it.
Refs = Callable[[str, dict[str, Any]], Any]


def decode(data: Any, depth: int = 0, refs: Refs | None = None) -> Any:
    """Inverse of :func:`encode`; views become :class:`View` values, reference markers what
    ``refs`` makes of them, other markers :class:`Opaque` values.
    """
    if depth > MAX_DEPTH + 1:
        raise ValueError("plain data nested too deeply")
    if isinstance(data, list):
        return [decode(item, depth + 1, refs) for item in data]
    if not isinstance(data, dict):
        return data
    tag = data.get(TAG)
    payload: Any = data.get("v")
    nxt = depth + 1
    if tag == "tuple":
        return tuple(decode(item, nxt, refs) for item in payload)
    if tag == "dict":
        return {_hashable(decode(k, nxt, refs)): decode(v, nxt, refs) for k, v in payload}
    if tag == "set":
        return {_hashable(decode(item, nxt, refs)) for item in payload}
    if tag == "frozenset":
        return frozenset(_hashable(decode(item, nxt, refs)) for item in payload)
    if tag == "view":
        kind, name = str(data.get("k"))[:20], str(data.get("t"))[:100]
        if kind == "enum":
            return View(kind, name, str(payload))
        fields = tuple((str(k), decode(v, nxt, refs)) for k, v in payload)
        return View(kind, name, fields)
    if refs is not None and tag in ("handle", "ref", "cb"):
        return refs(tag, data)
    if tag == "int":
        return int(payload, 16)
    if tag == "float":
        return float(payload)
    if tag == "bytes":
        return bytes.fromhex(payload)
    if tag == "bytearray":
        return bytearray.fromhex(payload)
    if tag == "complex":
        return complex(float(payload[0]), float(payload[1]))
    return Opaque(str(payload)[:100])


class View:
    """The plain view of an object that is not plain data: its kind (``dataclass``, ``enum`` or
    ``object``), its type's name and its fields (an enum: its member's name). Views compare,
    hash and print as values; they are built only from plain data, so comparing them runs no
    code of the candidate.
    """

    __slots__ = ("fields", "kind", "name")

    def __init__(self, kind: str, name: str, fields: Any) -> None:
        self.kind = kind
        self.name = name
        self.fields = fields

    def _key(self) -> tuple[str, str, Any]:
        return (self.kind, self.name, self.fields)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, View) and self._key() == other._key()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        try:
            return hash(self._key())
        except TypeError:  # a field holds a list: equal views still hash alike
            return hash((self.kind, self.name))

    def __repr__(self) -> str:
        if self.kind == "enum":
            return f"{self.name}.{self.fields}"
        inner = ", ".join(f"{k}={v!r}" for k, v in self.fields)
        return f"{self.name}({inner})"


def view(value: object, other: Other | None = None) -> Any:
    """The encoded plain view of ``value``: plain data as :func:`encode` gives it, with every
    object that is not plain data replaced by its view (a dataclass by its compared fields, a
    named tuple by its tuple, an enum member by its name, any other object by its ``__dict__``
    and ``__slots__`` attributes). ``other`` may encode some objects first (the judge's handles);
    an object with no view raises :class:`EncodeError`.
    """

    def viewed(item: object, depth: int, count: list[int]) -> Any:
        if other is not None:
            done = other(item, depth, count)
            if done is not None:
                return done
        return _view_of(item, depth, count, viewed)

    return _encode(value, 0, [0], viewed)


def _view_of(value: object, depth: int, count: list[int], viewed: Other) -> Any:
    import dataclasses
    import enum

    kind = type(value)
    name = _type_name(value).rpartition(".")[2]
    nxt = depth + 1
    if isinstance(value, tuple):  # a named tuple
        return {TAG: "tuple", "v": [_encode(i, nxt, count, viewed) for i in tuple.__iter__(value)]}
    if isinstance(value, enum.Enum):
        return {TAG: "view", "k": "enum", "t": name, "v": str(value.name)}
    if dataclasses.is_dataclass(kind):
        fields = [
            [f.name, _encode(getattr(value, f.name), nxt, count, viewed)]
            for f in dataclasses.fields(kind)
            if f.compare
        ]
        return {TAG: "view", "k": "dataclass", "t": name, "v": fields}
    attributes: dict[str, object] = {}
    own = getattr(value, "__dict__", None)
    if isinstance(own, dict):
        attributes.update((str(k), v) for k, v in dict.items(own))
    for klass in kind.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for slot in (slots,) if isinstance(slots, str) else slots:
            if slot not in ("__dict__", "__weakref__") and hasattr(value, slot):
                attributes[str(slot)] = getattr(value, slot)
    if not attributes and not isinstance(own, dict):
        raise EncodeError(f"no plain view of {name}")
    fields = [[k, _encode(v, nxt, count, viewed)] for k, v in sorted(attributes.items())]
    return {TAG: "view", "k": "object", "t": name, "v": fields}


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
