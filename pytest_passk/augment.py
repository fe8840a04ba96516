"""``--passk-augment``: stronger tests for HumanEval-format tasks from their own tests.

The inputs come from three places, all in the trusted pytest process:

- the task's ``check`` source: every ``candidate(...)`` call whose arguments are literals
  (``ast.literal_eval``) is a *seed*; first the simplest inputs of each seed's shape (zeros,
  ones, repeated elements, empty collections, ramps 1, 2, 3), then the seed mutated one argument
  at a time (neighbours, signs, empty, reversed, doubled and shortened collections), then values
  drawn shaped like the seed's (numbers around it, strings over its characters, collections of
  its elements' kinds, small ones half the time);
- the reference's own constants (thresholds, character codes), drawn a quarter of the time;
- the entry point's signature and type hints (``List[int]``, ``str``, ``float``...), drawn with
  small bounds.

Which of them are kept is the reference's decision (:mod:`pytest_passk.oracle`): only inputs on
which it returns, within its CPU budget, without raising.

The draws use a :class:`random.Random` seeded from the task id, not hypothesis: a task's inputs
are a fixed list (no shrinking, no search), and hypothesis's engine costs about a second a task,
which over HumanEval's 164 tasks would cost more than running every candidate.
"""

from __future__ import annotations

import ast
import contextlib
import math
import random
import types
import typing
from collections.abc import Callable, Sequence
from typing import Any

from pytest_passk.inputs import dedupe, plain_key

__all__ = ["generate", "mutants", "seeds_of"]

#: Mutants kept per seed (each seed mutates one argument at a time).
MUTANTS_PER_SEED = 12
#: How often a drawn number takes the other sign than its seed's (mostly the seed's: a
#: threshold or a count is rarely meant to be negative).
SIGN_FLIP = 0.2
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


def _simple(value: Any, variant: int) -> Any:
    """The ``variant``-th simplest value of ``value``'s type: zeros, ones, empty and repeated
    elements, where ties between arguments (a flipped ``<``) and empty cases show.
    """
    if isinstance(value, bool):
        return variant % 2 == 0
    if isinstance(value, int):
        return (0, 1, -1, 2)[variant]
    if isinstance(value, float):
        return (0.0, 1.0, 0.5, 2.0)[variant]
    if isinstance(value, str):
        return ("", "a", "aa", "ab")[variant] if not value or value.isalpha() else value[:variant]
    if isinstance(value, list | tuple):
        first = value[0] if value else 0
        one = _simple(first, variant)
        made = ([one, one], [], [one], [_simple(first, 0), _simple(first, 1)])[variant]
        return made if isinstance(value, list) else tuple(_simple(v, variant) for v in value)
    if isinstance(value, dict):
        if not value or variant == 1:
            return {}
        key, item = next(iter(value.items()))
        return {_simple(key, variant): _simple(item, variant)}
    return value


def _ramp(value: Any, step: int, text: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return type(value)(step)
    if isinstance(value, str):
        return text
    return _simple(value, 2)


def mutants(seed: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The simplest inputs of ``seed``'s shape (every argument simplified together), then
    ``seed`` with one argument at a time replaced by a value near it.
    """
    out = [tuple(_simple(value, variant) for value in seed) for variant in range(4)]
    # Ramps: numbers 1, 2, 3... and 3, 2, 1 (sums and differences that tie, a degenerate
    # triangle), strings at the far end of the alphabet.
    for ramp, text in ((range(1, len(seed) + 1), "z"), (range(len(seed), 0, -1), "Z")):
        out.append(tuple(_ramp(value, step, text) for value, step in zip(seed, ramp, strict=True)))
    for position, value in enumerate(seed):
        for changed in _value_mutants(value):
            out.append((*seed[:position], changed, *seed[position + 1 :]))
    return out[: 6 + MUTANTS_PER_SEED * max(1, len(seed))]


class _Draw(random.Random):
    """The seeded generator, with the reference's own constants: thresholds and boundaries a
    flipped comparison or an off-by-one constant turns on (``x >= 3.7``, ``ord(c) <= 122``).
    """

    def __init__(self, seed: int, reference: str | None) -> None:
        super().__init__(seed)
        self.ints: list[int] = []
        self.floats: list[float] = []
        self.chars: list[str] = []
        try:
            tree = ast.parse(reference or "")
        except (SyntaxError, ValueError):
            return
        for node in ast.walk(tree):
            value = getattr(node, "value", None) if isinstance(node, ast.Constant) else None
            if isinstance(value, bool):
                continue
            if isinstance(value, int) and abs(value) < 10**6:
                self.ints.append(value)
                self.floats.append(float(value))
                if 32 <= value < 127:
                    self.chars.append(chr(value))
            elif isinstance(value, float) and math.isfinite(value):
                self.floats.append(value)
            elif isinstance(value, str) and len(value) == 1:
                self.chars.append(value)
        self.ints, self.floats = sorted(set(self.ints)), sorted(set(self.floats))
        self.chars = sorted(set(self.chars))


#: How often a drawn number is one of the reference's constants (or next to one).
CONSTANT_RATE = 0.25


def _like(value: Any, rng: random.Random) -> Any:
    """A value shaped like ``value``: integers around it, strings over its characters, lists of
    its elements' kinds (up to twice as long, so longer than the test's own).
    """
    if value is None or isinstance(value, bool):
        return value if value is None else rng.random() < 0.5
    known = rng if isinstance(rng, _Draw) else None
    if isinstance(value, int) and known and known.ints and rng.random() < CONSTANT_RATE:
        return rng.choice(known.ints) + rng.choice((-1, 0, 0, 1))
    if isinstance(value, float) and known and known.floats and rng.random() < CONSTANT_RATE:
        return rng.choice(known.floats)
    if isinstance(value, int):
        bound = max(10, 2 * abs(value))
        # Mostly the seed's own sign: a count or an index is rarely meant to be negative.
        floor = -bound if value < 0 or rng.random() < SIGN_FLIP else 0
        ceiling = bound if value >= 0 or rng.random() < SIGN_FLIP else 0
        return rng.randint(floor, ceiling)
    if isinstance(value, float):
        limit = max(10.0, 2 * abs(value)) if math.isfinite(value) else 1e6
        low, high = (
            -limit if value < 0 or rng.random() < SIGN_FLIP else 0.0,
            limit if value >= 0 or rng.random() < SIGN_FLIP else 0.0,
        )
        roll = rng.random()
        if roll < 0.5:  # whole numbers in a small range: ties, where comparisons flip
            small = max(3, min(10, int(limit)))
            return float(rng.randint(int(max(low, -small)), int(min(high, small))))
        drawn = rng.uniform(low, high)
        return round(drawn, rng.choice((1, 2))) if roll < 0.85 else drawn
    if isinstance(value, str):
        extra = set(known.chars) if known else set()
        alphabet = sorted(set(value) | set("ab ") | extra) if value else list("abc xyz")
        size = _size(rng, max(10, 2 * len(value)))
        return "".join(rng.choice(alphabet) for _ in range(size))
    if isinstance(value, tuple):
        return tuple(_like(item, rng) for item in value)
    if isinstance(value, list | set | frozenset):
        items = list(value)
        size = _size(rng, min(MAX_SIZE, max(8, 2 * len(items))))
        made = [
            _like(rng.choice(items), rng) if items else rng.randint(-10, 10) for _ in range(size)
        ]
        return type(value)(made) if not isinstance(value, list) else made
    if isinstance(value, dict):
        if not value:
            return {}
        pairs = list(value.items())
        size = _size(rng, min(MAX_SIZE, max(4, 2 * len(pairs))))
        return dict(
            (_like(key, rng), _like(item, rng))
            for key, item in (rng.choice(pairs) for _ in range(size))
        )
    return value


def _size(rng: random.Random, largest: int) -> int:
    """A collection's size: half the time 0 to 3 (boundaries, where a flipped comparison or an
    off-by-one shows, sit in small inputs; a long list nearly always has a closer pair, a
    larger element...), else up to ``largest``.
    """
    return rng.randint(0, min(3, largest)) if rng.random() < 0.5 else rng.randint(0, largest)


_LETTERS = "abcdefghijklmnopqrstuvwxyz ABCXYZ0123456789"


def _typed(hint: Any, rng: random.Random) -> Any:
    """A small value of the type ``hint`` (:func:`_known` says which hints are known)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        return rng.random() < 0.5
    if hint is int:
        return rng.randint(-100, 100)
    if hint is float:
        return round(rng.uniform(-100, 100), rng.choice((0, 1, 3)))
    if hint is str:
        return "".join(rng.choice(_LETTERS) for _ in range(rng.randint(0, 12)))
    if hint is type(None):
        return None
    if origin is list:
        return [_typed(args[0], rng) for _ in range(rng.randint(0, MAX_SIZE // 2))]
    if origin is tuple:
        return tuple(_typed(arg, rng) for arg in args)
    if origin is dict:
        return {_typed(args[0], rng): _typed(args[1], rng) for _ in range(rng.randint(0, 6))}
    return _typed(rng.choice(args), rng)  # a Union


def _known(hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint in (bool, int, float, str, type(None)):
        return True
    if origin is list:
        return len(args) == 1 and _known(args[0])
    if origin is tuple:
        return bool(args) and Ellipsis not in args and all(_known(a) for a in args)
    if origin is dict:
        return len(args) == 2 and all(_known(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return bool(args) and all(_known(a) for a in args)
    return False


def _hints(function: Callable[..., Any] | None) -> list[Any] | None:
    """The type hints of every positional parameter of ``function``, where all are known."""
    if function is None:
        return None
    try:
        hints = typing.get_type_hints(function)
        code = function.__code__
        names = list(code.co_varnames[: code.co_argcount])
    except Exception:  # hints that do not resolve: the seeds alone then
        return None
    found = [hints.get(name) for name in names]
    return found if found and all(h is not None and _known(h) for h in found) else None


def generate(
    seeds: Sequence[tuple[Any, ...]],
    function: Callable[..., Any] | None,
    count: int,
    seed: int,
    reference: str | None = None,
) -> list[tuple[Any, ...]]:
    """``count`` argument tuples (fewer where too few distinct ones come up): the seeds'
    mutants first, then values shaped like the seeds and drawn from the type hints, from a
    random generator seeded with ``seed`` (the same inputs in every process and run). Numbers and
    characters are drawn from the ``reference``'s own constants a quarter of the time.
    """
    rng = _Draw(seed, reference)
    hints = _hints(function)
    found = dedupe([m for s in seeds for m in mutants(s)])[: count // 2]
    keys = {plain_key(args) for args in found}
    for _ in range(count * 5):
        if len(found) >= count or not (seeds or hints):
            break
        if seeds and (hints is None or rng.random() < 0.7):
            args = tuple(_like(value, rng) for value in rng.choice(seeds))
        else:
            assert hints is not None
            args = tuple(_typed(hint, rng) for hint in hints)
        key = plain_key(args)
        if key is not None and key not in keys:
            keys.add(key)
            found.append(args)
    return found
