"""``--passk-augment``: stronger tests for HumanEval-format tasks from their own tests.

The inputs come from two places, both in the trusted pytest process:

- the task's ``check`` source: every ``candidate(...)`` call whose arguments are literals
  (``ast.literal_eval``) is a *seed*; each seed is mutated one argument at a time (neighbours,
  signs, empty and boundary values, reversed, doubled and shortened collections), and hypothesis
  draws more values shaped like the seed's (integers around it, strings over its characters,
  lists of its elements' kinds, longer than the seed's);
- the entry point's signature and type hints (``List[int]``, ``str``, ``float``...), drawn with
  small bounds.

Which of them are kept is the reference's decision (:mod:`pytest_passk.oracle`): only inputs on
which it returns, within its time budget, without raising.
"""

from __future__ import annotations

import ast
import contextlib
import math
import typing
from collections.abc import Callable
from typing import Any

from pytest_passk.inputs import dedupe

__all__ = ["augment_strategy", "mutants", "seeds_of"]

#: Mutants kept per seed (each seed mutates one argument at a time).
MUTANTS_PER_SEED = 12
#: Largest collection a drawn input holds.
MAX_SIZE = 20


def seeds_of(test_source: str, entry_point: str) -> list[tuple[Any, ...]]:
    """The literal argument tuples of every ``candidate(...)`` (or ``entry_point(...)``) call in
    a task's test source, in source order, without repeats.
    """
    try:
        tree = ast.parse(test_source)
    except (SyntaxError, ValueError):
        return []
    found: list[tuple[Any, ...]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or node.keywords:
            continue
        if not (isinstance(node.func, ast.Name) and node.func.id in ("candidate", entry_point)):
            continue
        try:
            found.append(tuple(ast.literal_eval(arg) for arg in node.args))
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            continue
    return dedupe(found)


def _value_mutants(value: Any) -> list[Any]:
    """Values near ``value``, of its own type."""
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, int):
        return [value - 1, value + 1, -value, 0, 2 * value, value + 10]
    if isinstance(value, float):
        return [-value, value + 0.5, 0.0, value * 2, value - 1.0]
    if isinstance(value, str):
        return ["", value[::-1], value + value, value[:-1], value[1:], value.swapcase()]
    if isinstance(value, list):
        out: list[Any] = [[], value[::-1], value + value, value[:-1], value[1:]]
        if value:
            out += [[m, *value[1:]] for m in _value_mutants(value[0])[:3]]
            with contextlib.suppress(TypeError):
                out.append(sorted(value))
        return out
    if isinstance(value, tuple):
        return [tuple(m) for m in _value_mutants(list(value)) if len(m) == len(value)]
    if isinstance(value, dict):
        items = list(value.items())
        return [{}, dict(items[:-1]), dict(items[1:])]
    return []


def mutants(seed: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """``seed`` with one argument at a time replaced by a value near it."""
    out = []
    for position, value in enumerate(seed):
        for changed in _value_mutants(value):
            out.append((*seed[:position], changed, *seed[position + 1 :]))
    return out[: MUTANTS_PER_SEED * max(1, len(seed))]


def _like(value: Any) -> Any:
    """A strategy of values shaped like ``value``."""
    from hypothesis import strategies as st

    if value is None:
        return st.none()
    if isinstance(value, bool):
        return st.booleans()
    if isinstance(value, int):
        bound = max(10, 2 * abs(value))
        return st.integers(-bound, bound)
    if isinstance(value, float):
        limit = max(10.0, 2 * abs(value)) if math.isfinite(value) else 1e6
        return st.floats(-limit, limit, allow_nan=False, allow_infinity=False)
    if isinstance(value, str):
        alphabet = sorted(set(value) | set("ab ")) if value else list("abc xyz")
        return st.text(alphabet=alphabet, max_size=max(10, 2 * len(value)))
    if isinstance(value, list | tuple | set):
        items = list(value)
        element = st.one_of(*[_like(v) for v in items[:4]]) if items else st.integers(-10, 10)
        if isinstance(value, tuple):
            return st.tuples(*[_like(v) for v in items])
        size = min(MAX_SIZE, max(8, 2 * len(items)))
        if isinstance(value, set):
            return st.sets(element, max_size=size)
        return st.lists(element, max_size=size)
    if isinstance(value, dict):
        if not value:
            return st.just({})
        key, item = next(iter(value.items()))
        return st.dictionaries(_like(key), _like(item), max_size=MAX_SIZE)
    return st.just(value)


def _bounded(hint: Any) -> Any:
    """A strategy for a type hint with small bounds (``None`` when the hint is not one we know:
    typed inputs are a supplement to the seeds', never a reason to fail).
    """
    from hypothesis import strategies as st

    origin, args = typing.get_origin(hint), typing.get_args(hint)
    simple: dict[Any, Any] = {
        int: st.integers(-100, 100),
        float: st.floats(-100, 100, allow_nan=False, allow_infinity=False),
        str: st.text(alphabet="abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789", max_size=12),
        bool: st.booleans(),
        type(None): st.none(),
    }
    if hint in simple:
        return simple[hint]
    parts = [_bounded(a) for a in args]
    if any(p is None for p in parts):
        return None
    if origin is list and len(parts) == 1:
        return st.lists(parts[0], max_size=MAX_SIZE // 2)
    if origin is tuple and parts and args[-1] is not Ellipsis:
        return st.tuples(*parts)
    if origin is dict and len(parts) == 2:
        return st.dictionaries(parts[0], parts[1], max_size=MAX_SIZE // 2)
    if origin is typing.Union and parts:
        return st.one_of(*parts)
    return None


def typed_strategy(function: Callable[..., Any] | None) -> Any:
    """Argument tuples from ``function``'s type hints, where every parameter has a known one."""
    if function is None:
        return None
    from hypothesis import strategies as st

    try:
        hints = typing.get_type_hints(function)
        names = list(function.__code__.co_varnames[: function.__code__.co_argcount])
    except Exception:  # hints that do not resolve: the seeds alone then
        return None
    parts = [_bounded(hints[name]) if name in hints else None for name in names]
    if not parts or any(p is None for p in parts):
        return None
    return st.tuples(*parts)


def augment_strategy(seeds: list[tuple[Any, ...]], function: Callable[..., Any] | None) -> Any:
    """Hypothesis strategy of argument tuples: shaped like the seeds, and from the type hints
    (``None`` when there is neither).
    """
    from hypothesis import strategies as st

    branches = []
    if seeds:
        branches.append(st.sampled_from(seeds).flatmap(lambda s: st.tuples(*map(_like, s))))
    typed = typed_strategy(function)
    if typed is not None:
        branches.append(typed)
    return st.one_of(*branches) if branches else None
