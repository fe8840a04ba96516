"""A decorated task's cases (trusted, in Z): its ``@pytest.mark.parametrize`` table, read from
the test function's marks, and the arguments each case passes besides the candidate.

The marks are read by duck typing (``name``, ``args``, ``kwargs``; ``pytest.param``'s
``values``, ``id`` and ``marks``): the test module imported pytest itself, the judge need not.
Stacked marks multiply, as under pytest. A case marked ``skip`` or ``xfail`` is left out: a
candidate is judged on the cases the test expects to pass. ``tmp_path`` is a fresh directory per
case, in the judge's private scratch space.
"""

from __future__ import annotations

import inspect
import itertools
from typing import Any

#: The fixtures a decorated task may ask for besides ``candidate`` and its parametrized names.
SANDBOX_FIXTURES = ("tmp_path",)
BAD_PARAMETRIZE = "its @pytest.mark.parametrize cannot be read: {why}"


class CaseError(Exception):
    """The task's cases cannot be built: the task cannot run (not the candidate's fault)."""


class Case:
    """One row of the table: its id (``""`` without parametrize) and its arguments."""

    __slots__ = ("arguments", "case_id")

    def __init__(self, case_id: str, arguments: dict[str, Any]) -> None:
        self.case_id = case_id
        self.arguments = arguments


def cases(test_function: Any) -> list[Case]:
    """The cases of ``test_function``: one per combination of its parametrize marks."""
    marks = [m for m in getattr(test_function, "pytestmark", ()) if _name(m) == "parametrize"]
    if not marks:
        return [Case("", {})]
    tables = [_table(mark) for mark in marks]
    found = []
    for row in itertools.product(*tables):
        ids = [case_id for case_id, _ in row]
        arguments: dict[str, Any] = {}
        for _, values in row:
            arguments.update(values)
        found.append(Case("-".join(ids), arguments))
    return found


def fixtures_of(test_function: Any) -> list[str]:
    """The parameters of the test function after the candidate that no parametrize fills."""
    try:
        names = list(inspect.signature(test_function).parameters)[1:]
    except (TypeError, ValueError):
        return []
    filled = {name for case in cases(test_function)[:1] for name in case.arguments}
    return [name for name in names if name not in filled]


def _name(mark: Any) -> str:
    return str(getattr(mark, "name", ""))


def _table(mark: Any) -> list[tuple[str, dict[str, Any]]]:
    args = tuple(getattr(mark, "args", ()))
    kwargs = dict(getattr(mark, "kwargs", {}))
    try:
        argnames = args[0] if args else kwargs["argnames"]
        argvalues = list(args[1] if len(args) > 1 else kwargs["argvalues"])
    except (KeyError, TypeError) as exc:
        raise CaseError(BAD_PARAMETRIZE.format(why=f"missing {exc}")) from None
    if kwargs.get("indirect"):
        raise CaseError(BAD_PARAMETRIZE.format(why="indirect parametrization needs fixtures"))
    names = [n.strip() for n in argnames.split(",") if n.strip()] if isinstance(argnames, str) \
        else [str(n) for n in argnames]  # fmt: skip
    ids = kwargs.get("ids")
    rows = []
    for index, value in enumerate(argvalues):
        marks = getattr(value, "marks", None)
        if hasattr(value, "values") and marks is not None:  # pytest.param(...)
            if any(_name(m) in ("skip", "skipif", "xfail") for m in marks):
                continue
            own_id, values = getattr(value, "id", None), tuple(value.values)
        else:
            own_id = None
            values = (value,) if len(names) == 1 else tuple(value)
        if len(values) != len(names):
            why = f"case {index} has {len(values)} values for {len(names)} names"
            raise CaseError(BAD_PARAMETRIZE.format(why=why))
        case_id = own_id or _given_id(ids, index, values) or "-".join(
            _auto_id(name, v, index) for name, v in zip(names, values, strict=True)
        )  # fmt: skip
        rows.append((str(case_id), dict(zip(names, values, strict=True))))
    return rows


def _given_id(ids: Any, index: int, values: tuple[Any, ...]) -> str | None:
    if ids is None:
        return None
    if callable(ids):
        made = [ids(v) for v in values]
        return "-".join(str(m) for m in made if m is not None) or None
    listed = list(ids)
    return str(listed[index]) if index < len(listed) and listed[index] is not None else None


def _auto_id(name: str, value: Any, index: int) -> str:
    if isinstance(value, str) and value and value.isascii() and value.isprintable():
        return value
    if value is None or isinstance(value, bool | int | float | complex):
        return str(value)
    return f"{name}{index}"
