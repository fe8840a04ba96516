"""Drawing a differential task's inputs, in the trusted pytest process (hypothesis, lazily).

Every candidate of a task must see the same inputs, in every process (pytest-xdist workers
included) and in every run: the draw is seeded from the task's id (never from the clock), writes
no example database, and runs only hypothesis's generate phase. Each input is an argument tuple of
plain data (the only values that cross into the sandbox).
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from pytest_passk.errors import TaskFormatError

__all__ = ["AUTO_UNDERIVABLE", "DRAW_FAILED", "NOT_PLAIN_INPUT", "auto_strategy", "draw", "seed_of"]

AUTO_UNDERIVABLE = (
    'inputs="auto" cannot derive a strategy for parameter {name!r} of {function}: {why}'
)
AUTO_FIX = "annotate the parameter with a type hypothesis can build, or pass inputs=<strategy>"
NOT_PLAIN_INPUT = "inputs= drew {value!r}, which is not an argument tuple of plain data"
DRAW_FAILED = "inputs= raised {name} while drawing: {error}"
DRAW_FIX = "fix the strategy (strategy.example() shows one draw)"
NOT_PLAIN_FIX = (
    "draw tuples of None, bool, int, float, str, bytes, complex, and lists, tuples, dicts and "
    "sets of them (e.g. st.tuples(st.integers()))"
)


def seed_of(task_id: str) -> int:
    """The task's seed: the same in every process and run, different between tasks."""
    return int.from_bytes(hashlib.sha256(task_id.encode("utf-8")).digest()[:8], "big")


def draw(strategy: Any, count: int, seed: int, where: str) -> list[tuple[Any, ...]]:
    """``count`` distinct argument tuples from ``strategy`` (fewer where the strategy has fewer),
    in a fixed order for a given ``seed``.

    Raises:
        TaskFormatError: a drawn value is not a tuple of plain data.

    """
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as seeded

    drawn: list[tuple[Any, ...]] = []
    seen: set[str] = set()
    problem: list[Any] = []

    @seeded(seed)
    @settings(
        max_examples=count,
        database=None,
        derandomize=False,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(strategy)
    def collect(value: Any) -> None:
        if problem or len(drawn) >= count:
            return
        if not isinstance(value, tuple):
            problem.append(value)
            return
        key = plain_key(value)
        if key is None:
            problem.append(value)
        elif key not in seen:
            seen.add(key)
            drawn.append(value)

    with _without_local_constants():
        try:
            collect()
        except Exception as exc:  # the strategy's own code, or hypothesis refusing it
            error = (str(exc).strip().splitlines() or [""])[0][:200]
            raise TaskFormatError(
                where, DRAW_FAILED.format(name=type(exc).__name__, error=error), DRAW_FIX
            ) from None
    if problem:
        raise TaskFormatError(where, NOT_PLAIN_INPUT.format(value=problem[0]), NOT_PLAIN_FIX)
    return drawn


@contextlib.contextmanager
def _without_local_constants() -> Iterator[None]:
    """Hypothesis mixes into its draws constants mined from the "local" modules loaded in the
    process (the test files among them), so the same seed draws differently in a process that
    has imported other modules: another pytest-xdist worker, another run. While a task's inputs
    are drawn, that source is emptied (hypothesis's internals: where they differ, draws fall back
    to hypothesis's own behaviour).
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - hypothesis moved it
        yield
        return
    mine, cache = (
        getattr(providers, "_get_local_constants", None),
        getattr(providers, "CONSTANTS_CACHE", None),
    )
    empty = getattr(providers, "Constants", None)
    if mine is None or cache is None or empty is None:  # pragma: no cover
        yield
        return
    nothing = empty()
    cache.cache.clear()
    providers._get_local_constants = lambda: nothing
    try:
        yield
    finally:
        providers._get_local_constants = mine
        cache.cache.clear()


def plain_key(value: object) -> str | None:
    """A canonical text of plain data (``None`` when ``value`` is not plain data)."""
    from pytest_passk.sandbox import plain

    try:
        return json.dumps(plain.encode(value, strict=True), sort_keys=True)
    except (plain.EncodeError, ValueError):
        return None


def auto_strategy(function: Callable[..., Any], where: str) -> Any:
    """A strategy of argument tuples for ``function``, from its signature and type hints.

    Raises:
        TaskFormatError: a parameter has no hint, or one hypothesis cannot build.

    """
    from hypothesis import strategies as st
    from hypothesis.errors import HypothesisException

    name = getattr(function, "__name__", repr(function))
    try:
        hints = typing.get_type_hints(function)
        parameters = list(inspect.signature(function).parameters.values())
    except Exception as exc:  # a hint that does not resolve: any error of the user's code
        raise TaskFormatError(
            where, AUTO_UNDERIVABLE.format(name="?", function=name, why=exc), AUTO_FIX
        ) from None
    parts = []
    for parameter in parameters:
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
            if parameter.default is inspect.Parameter.empty:
                why = "a keyword-only parameter without a default"
                raise TaskFormatError(
                    where, AUTO_UNDERIVABLE.format(name=parameter.name, function=name, why=why),
                    AUTO_FIX,
                )  # fmt: skip
            continue
        hint = hints.get(parameter.name)
        if hint is None:
            why = "it has no type hint"
            raise TaskFormatError(
                where, AUTO_UNDERIVABLE.format(name=parameter.name, function=name, why=why),
                AUTO_FIX,
            )  # fmt: skip
        try:
            strategy = st.from_type(hint)
            strategy.validate()
        except (HypothesisException, TypeError, ValueError, NotImplementedError) as exc:
            raise TaskFormatError(
                where, AUTO_UNDERIVABLE.format(name=parameter.name, function=name, why=exc),
                AUTO_FIX,
            ) from None  # fmt: skip
        parts.append(strategy)
    return st.tuples(*parts)


def signature_function(program: str, entry_point: str) -> Callable[..., Any] | None:
    """The function ``entry_point`` of a trusted program (a task's reference), for its
    signature and hints: the program's definitions run (its module level), the function does not.
    """
    namespace: dict[str, Any] = {"__name__": "__passk_reference__"}
    try:
        exec(compile(program, "<reference>", "exec", dont_inherit=True), namespace)
    except Exception:
        return None
    found = namespace.get(entry_point)
    return found if callable(found) else None


def dedupe(values: Sequence[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``values`` without repeats (by canonical text), first occurrence kept."""
    seen: set[str] = set()
    kept = []
    for value in values:
        key = plain_key(value)
        if key is not None and key not in seen:
            seen.add(key)
            kept.append(value)
    return kept
