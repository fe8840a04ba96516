"""Handles (trusted, in Z): the judge's stand-ins for the candidate's objects that are not plain
data.

An object the candidate returns that is not plain data (an instance of its class, a generator,
a closure, a dataclass, an enum member) stays in C, in a bounded table, and reaches the test as
a :class:`Handle`. Every operation on a handle (attribute reads and writes, calls, ``len``,
iteration, indexing, ``in``, ``with``, ``str``) is a request to C, answered with plain data or
another handle. Comparing and hashing never run the candidate's ``__eq__`` or ``__hash__``: C
sends the object's plain view (:func:`..plain.view`) and the judge compares views, the other
side viewed the same way here (the test's own dataclass, say). Arithmetic and ordering are not
offered: ``TypeError``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .. import plain

#: A handle's request to C: (handle id, operation, arguments, keyword arguments, attribute name).
Operate = Callable[[int, str, tuple[Any, ...], dict[str, Any], str], Any]

T = TypeVar("T")
NO_VIEW = "cannot compare the candidate's {name} object: {why} (see docs/tasks.md, 'What crosses')"


class Handle:
    """Stands for one object in the candidate's process; see the module's docstring."""

    __slots__ = ("_hid", "_iterator", "_last_view", "_operate", "_owner", "_type")

    def __init__(self, owner: object, operate: Operate, hid: int, type_name: str,
                 iterator: bool) -> None:  # fmt: skip
        setter = object.__setattr__
        setter(self, "_owner", owner)
        setter(self, "_operate", operate)
        setter(self, "_hid", hid)
        setter(self, "_type", type_name)
        setter(self, "_iterator", iterator)
        setter(self, "_last_view", None)

    def _op(self, op: str, *args: Any, name: str = "", **kwargs: Any) -> Any:
        return self._operate(self._hid, op, args, kwargs, name)

    # -- what crosses ----------------------------------------------------------------------

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # protocols probed by the interpreter or libraries
        return self._op("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._op("setattr", value, name=name)

    def __delattr__(self, name: str) -> None:
        self._op("delattr", name=name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._op("call", *args, **kwargs)

    def __len__(self) -> int:
        return _exact(self._op("len"), int, "len()")

    def __iter__(self) -> Any:
        return self if self._iterator else self._op("iter")

    def __next__(self) -> Any:
        return self._op("next")

    def __getitem__(self, key: Any) -> Any:
        return self._op("getitem", key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._op("setitem", key, value)

    def __delitem__(self, key: Any) -> None:
        self._op("delitem", key)

    def __contains__(self, item: Any) -> bool:
        return _exact(self._op("contains", item), bool, "in")

    def __enter__(self) -> Any:
        return self._op("enter")

    def __exit__(self, *exc: object) -> None:
        # Never suppresses: a candidate's __exit__ must not swallow the test's AssertionError.
        self._op("exit", exc[0] is not None)

    def __bool__(self) -> bool:
        return _exact(self._op("bool"), bool, "bool()")

    def __str__(self) -> str:
        return _exact(self._op("str"), str, "str()")

    # -- what is decided here, from plain views --------------------------------------------

    def _view(self) -> Any:
        seen = self._op("view")
        object.__setattr__(self, "_last_view", seen)
        return seen

    def __eq__(self, other: object) -> bool:
        mine = self._view()
        theirs = view_here(other)
        equal = bool(mine == theirs)  # plain data and View objects: judge code only
        note = getattr(self._owner, "note_mismatch", None)
        if not equal and note is not None:
            note(f"the candidate's {mine!r} != {theirs!r}")
        return equal

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(_frozen(self._view()))

    def __repr__(self) -> str:
        if self._last_view is not None:
            return repr(self._last_view)
        return f"<candidate {self._type} object>"


def _exact(value: object, kind: type[T], what: str) -> T:
    if type(value) is not kind:
        raise TypeError(
            f"the candidate's {what} returned {type(value).__name__}, not {kind.__name__}"
        )
    return value


def view_here(value: object) -> Any:
    """The plain view of a value of the judge's (the test's expected value), handles viewed in
    the candidate: what a handle's view is compared with.
    """

    def handle_view(item: object, depth: int, count: list[int]) -> Any:
        if isinstance(item, Handle):
            return _Viewed(item._view())
        return None

    try:
        encoded = plain.view(value, handle_view)
    except (plain.EncodeError, RecursionError, ValueError) as exc:
        raise TypeError(NO_VIEW.format(name=type(value).__name__, why=exc)) from None
    return plain.decode(encoded, refs=_unwrap)


class _Viewed(dict[str, Any]):
    """A handle's view, already decoded, inside an encoded view (see :func:`_unwrap`)."""

    def __init__(self, decoded: Any) -> None:
        super().__init__({plain.TAG: "cb", "v": 0})
        self.decoded = decoded


def _unwrap(tag: str, data: dict[str, Any]) -> Any:
    if isinstance(data, _Viewed):
        return data.decoded
    return plain.Opaque(tag)


def _frozen(value: Any) -> Any:
    """A hashable stand-in of a plain view: equal views give equal results."""
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return frozenset((_frozen(k), _frozen(v)) for k, v in value.items())
    if isinstance(value, set):
        return frozenset(_frozen(v) for v in value)
    if isinstance(value, plain.View):
        return (value.kind, value.name, _frozen(value.fields))
    return value
