"""Coding tasks: the :class:`Task` record and the ``@passk.task`` decorator.

A task is a prompt, the name of the function the model must write (``entry_point``), a test that
judges a candidate, and optionally a known-good reference. Tasks come from decorated test functions
(this module) or from HumanEval-format datasets (:mod:`pytest_passk.datasets`).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from pytest_passk.differential import AUTO, Approx, DifferentialSpec
from pytest_passk.errors import TaskFormatError

__all__ = ["CheckTest", "FunctionTest", "Task", "TaskSpec", "task", "task_spec_of"]

#: Attribute the decorator sets on a test function; the collector looks for it.
TASK_ATTRIBUTE = "__passk_task__"


@dataclass(frozen=True, slots=True)
class CheckTest:
    """A HumanEval-style test: source defining ``check(candidate)``, run beside the candidate."""

    source: str


@dataclass(frozen=True, slots=True)
class FunctionTest:
    """A decorated test function, imported in the sandbox from its module.

    ``sys_path`` is where the sandbox imports the test module from, so that the module's own
    imports and helpers are available beside the candidate.
    """

    module_name: str
    module_file: str
    qualname: str
    sys_path: tuple[str, ...]


TaskTest = CheckTest | FunctionTest


@dataclass(frozen=True, slots=True)
class Task:
    """One coding task, whatever it was defined by.

    Attributes:
        task_id: Stable identifier: a dataset's ``task_id``, or a decorated test's node id.
        prompt: What the model continues (completion models) or is asked to implement (chat).
        entry_point: Name of the function under test; ``None`` hands the test the whole module.
        test: How a candidate is judged.
        reference: A whole correct program, for check mode and differential tests.
        timeout: Per-candidate wall-clock limit in seconds, overriding ``--passk-timeout``.
        min_pass_at_k: Item passes when pass@max(K) reaches this, instead of when c >= 1.
        origin: ``file:line`` where the task was defined, for error messages.
        differential: Stronger tests: generated (or given) inputs on which every candidate must
            agree with the reference (``None``: the task's own tests only).

    """

    task_id: str
    prompt: str
    entry_point: str | None
    test: TaskTest
    reference: str | None = None
    timeout: float | None = None
    min_pass_at_k: float | None = None
    origin: str = ""
    differential: DifferentialSpec | None = None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """What ``@passk.task`` records on a test function; collection makes it a :class:`Task`."""

    prompt: str
    entry_point: str | None
    reference: str | None
    timeout: float | None
    min_pass_at_k: float | None
    #: Why the decorator's arguments are invalid; collection reports it as an error item
    #: (raising at import time would stop the whole module's collection).
    error: TaskFormatError | None = None
    #: ``inputs=``, ``compare=``, ``examples=``: a differential task.
    differential: DifferentialSpec | None = None


F = TypeVar("F", bound=Callable[..., Any])


@overload
def task(prompt: F, /) -> F: ...


@overload
def task(
    prompt: str | None = None,
    *,
    entry_point: str | None = None,
    reference: Callable[..., Any] | str | None = None,
    timeout: float | None = None,
    min_pass_at_k: float | None = None,
    inputs: Any = None,
    compare: Approx | str | None = None,
    examples: int | None = None,
) -> Callable[[F], F]: ...


def task(
    prompt: str | Callable[..., Any] | None = None,
    *,
    entry_point: str | None = None,
    reference: Callable[..., Any] | str | None = None,
    timeout: float | None = None,
    min_pass_at_k: float | None = None,
    inputs: Any = None,
    compare: Approx | str | None = None,
    examples: int | None = None,
) -> Any:
    r"""Mark a test function as a coding task whose candidates are sampled from a model.

    The decorated function receives the candidate (the function named ``entry_point``, or the
    candidate's module namespace without one) and asserts on it. It runs inside the sandbox,
    beside the candidate; the test module's imports and helpers are available there.

    Args:
        prompt: The prompt; defaults to the function's docstring (dedented as a block).
        entry_point: Name of the function the model must define.
        reference: A correct solution, as a function or as source, for check mode.
        timeout: Per-candidate wall-clock limit in seconds for this task.
        min_pass_at_k: Pass the item only when pass@max(K) is at least this (0..1).
        inputs: A differential task: a hypothesis strategy of argument tuples, or ``"auto"``
            (derived from the reference's signature and type hints). Every candidate is called
            on the same inputs and must agree with ``reference`` (same output, or the same
            builtin exception), besides passing the test body.
        compare: How outputs agree: exact equality on plain data (default, ``"exact"``) or
            :func:`pytest_passk.approx` for floats.
        examples: Inputs to draw (default ``--passk-examples``, 100).

    Example::

        @passk.task(prompt='def add(a: int, b: int) -> int:\\n    \"\"\"Return a + b.\"\"\"\\n',
                    entry_point="add")
        def test_add(candidate):
            assert candidate(2, 3) == 5

    """
    extra = _Differential(inputs, compare, examples)
    if callable(prompt):  # bare ``@passk.task``
        return _decorate(prompt, None, entry_point, reference, timeout, min_pass_at_k, extra)

    def decorator(fn: F) -> F:
        return _decorate(fn, prompt, entry_point, reference, timeout, min_pass_at_k, extra)

    return decorator


def _decorate(
    fn: F,
    prompt: str | None,
    entry_point: str | None,
    reference: Callable[..., Any] | str | None,
    timeout: float | None,
    min_pass_at_k: float | None,
    extra: _Differential | None = None,
) -> F:
    try:
        spec = _spec(fn, prompt, entry_point, reference, timeout, min_pass_at_k)
        if extra is not None and extra.inputs is not None:
            differential = _differential(extra, spec, reference, _origin(fn))
            spec = TaskSpec(
                spec.prompt, spec.entry_point, spec.reference, spec.timeout, spec.min_pass_at_k,
                differential=differential,
            )  # fmt: skip
        elif extra is not None and (extra.compare is not None or extra.examples is not None):
            raise TaskFormatError(
                _origin(fn), "compare= and examples= need inputs=", DIFFERENTIAL_FIX
            )
    except TaskFormatError as error:
        spec = TaskSpec("", entry_point, None, None, None, error=error)
    setattr(fn, TASK_ATTRIBUTE, spec)
    return fn


def _spec(
    fn: Callable[..., Any],
    prompt: str | None,
    entry_point: str | None,
    reference: Callable[..., Any] | str | None,
    timeout: float | None,
    min_pass_at_k: float | None,
) -> TaskSpec:
    where = _origin(fn)
    text = prompt if prompt is not None else _docstring_prompt(fn)
    if not text or not text.strip():
        raise TaskFormatError(
            where,
            f"task {fn.__name__!r} has no prompt",
            "pass prompt=... to @passk.task or give the test function a docstring",
        )
    if entry_point is not None and (
        not entry_point.isidentifier() or keyword.iskeyword(entry_point)
    ):
        raise TaskFormatError(
            where, f"entry_point {entry_point!r} is not a Python identifier", "name a function"
        )
    if timeout is not None and not timeout > 0:
        raise TaskFormatError(where, f"timeout={timeout!r} must be > 0", "give seconds, e.g. 5")
    if min_pass_at_k is not None and not 0.0 <= min_pass_at_k <= 1.0:
        raise TaskFormatError(
            where, f"min_pass_at_k={min_pass_at_k!r} is outside 0..1", "give a fraction, e.g. 0.5"
        )
    return TaskSpec(
        prompt=text,
        entry_point=entry_point,
        reference=_reference_source(reference, entry_point, where),
        timeout=timeout,
        min_pass_at_k=min_pass_at_k,
    )


@dataclass(frozen=True, slots=True)
class _Differential:
    inputs: Any
    compare: Approx | str | None
    examples: int | None


DIFFERENTIAL_FIX = (
    "a differential task needs reference= (a correct solution), entry_point=, and inputs= "
    '(a hypothesis strategy of argument tuples, or "auto")'
)


def _differential(
    extra: _Differential,
    spec: TaskSpec,
    reference: Callable[..., Any] | str | None,
    where: str,
) -> DifferentialSpec:
    """Validate ``inputs=``, ``compare=`` and ``examples=``."""
    if spec.reference is None or spec.entry_point is None:
        raise TaskFormatError(where, "inputs= needs reference= and entry_point=", DIFFERENTIAL_FIX)
    inputs = extra.inputs
    if isinstance(inputs, str) and inputs != AUTO:
        raise TaskFormatError(where, f"inputs={inputs!r} is not a strategy", DIFFERENTIAL_FIX)
    if not isinstance(inputs, str) and not _is_strategy(inputs):
        raise TaskFormatError(
            where, f"inputs={inputs!r} is not a hypothesis strategy", DIFFERENTIAL_FIX
        )
    compare = extra.compare
    if compare == "exact":
        compare = None
    if compare is not None and not isinstance(compare, Approx):
        raise TaskFormatError(
            where, f"compare={compare!r} is not supported", 'give "exact" or passk.approx(...)'
        )
    examples = extra.examples
    if examples is not None and (type(examples) is not int or examples < 1):
        raise TaskFormatError(where, f"examples={examples!r} must be an int >= 1", "e.g. 100")
    return DifferentialSpec(
        inputs=inputs,
        compare=compare,
        examples=examples,
        reference=reference if callable(reference) else None,
    )


def _is_strategy(value: object) -> bool:
    """Whether ``value`` is a hypothesis strategy (checked by its class's module: hypothesis is
    imported lazily, never by the decorator itself).
    """
    return any(
        klass.__module__.startswith("hypothesis.") and klass.__name__ == "SearchStrategy"
        for klass in type(value).__mro__
    )


def task_spec_of(obj: object) -> TaskSpec | None:
    """Return the :class:`TaskSpec` that ``@passk.task`` attached to ``obj``, if any."""
    spec = getattr(obj, TASK_ATTRIBUTE, None)
    return spec if isinstance(spec, TaskSpec) else None


def _origin(fn: Callable[..., Any]) -> str:
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return repr(fn)
    return f"{code.co_filename}:{code.co_firstlineno}"


def _docstring_prompt(fn: Callable[..., Any]) -> str:
    """The docstring as written, minus the indentation of the docstring statement itself.

    ``inspect.cleandoc`` would also strip indentation that belongs to the prompt's code (and
    Python 3.13 strips docstrings at compile time), so the raw literal is read from the source.
    """
    try:
        source = inspect.getsource(fn)
    except (OSError, TypeError):
        return inspect.getdoc(fn) or ""
    node = _parse_definition(source)
    if node is None:
        return inspect.getdoc(fn) or ""
    raw = ast.get_docstring(node, clean=False)
    if raw is None:
        return ""
    margin = node.body[0].col_offset
    first, *rest = raw.split("\n")
    lines = [first] + [line[margin:] if line[:margin].isspace() else line.lstrip() for line in rest]
    text = "\n".join(lines)
    return text.lstrip("\n") if not first.strip() else text


def _parse_definition(source: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """Parse a function's source as it stands in its file, however deeply it is nested.

    ``textwrap.dedent`` cannot be used: a string literal in a decorator (a ``reference=`` source)
    may hold lines at column 0, which leaves the source indented and unparseable. Wrapping it in
    an ``if`` block keeps every column as in the file.
    """
    indented = source[:1].isspace()
    try:
        tree = ast.parse("if 1:\n" + source if indented else source)
    except (SyntaxError, ValueError):
        return None
    node = tree.body[0] if tree.body else None
    if indented and isinstance(node, ast.If) and node.body:
        node = node.body[0]
    return node if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) else None


def _reference_source(
    reference: Callable[..., Any] | str | None, entry_point: str | None, where: str
) -> str | None:
    """A whole program for the reference: source as given, or a function's own source."""
    if reference is None or isinstance(reference, str):
        return reference
    if not callable(reference):
        raise TaskFormatError(
            where, f"reference={reference!r} is neither a function nor source", "pass one of those"
        )
    try:
        source = textwrap.dedent(inspect.getsource(reference))
    except (OSError, TypeError) as exc:
        raise TaskFormatError(
            where, f"cannot read the source of reference {reference!r}", "pass the source as a str"
        ) from exc
    name = getattr(reference, "__name__", None)
    if entry_point and name and name != entry_point:
        # The candidate is looked up by entry_point; make the reference answer to that name.
        source += f"\n{entry_point} = {name}\n"
    return source
