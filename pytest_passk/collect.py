"""Collection: tasks become pytest items, one per task and model (one per task in check mode).

An item does not judge itself: it asks the run's :class:`ItemJudge` (kept in
``config.stash[JUDGE_KEY]`` by the session) for an
:class:`~pytest_passk.evaluation.ItemDecision`, and passes, fails or skips from it. So this module
never imports the session that conducts the run.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
from _pytest._code.code import ExceptionChainRepr, ReprEntry, ReprFileLocation, ReprTraceback

from pytest_passk.datasets import iter_dataset
from pytest_passk.errors import TaskFormatError
from pytest_passk.evaluation import Decision, ItemDecision
from pytest_passk.report import failure_headline, failure_text, item_properties
from pytest_passk.results import TaskResult
from pytest_passk.settings import SETTINGS_KEY, Settings
from pytest_passk.tasks import FunctionTest, Task, TaskSpec

__all__ = [
    "JUDGE_KEY",
    "NO_CANDIDATE_PARAMETER",
    "RESULT_KEY",
    "SANDBOX_FIXTURES",
    "UNSUPPORTED_FIXTURE",
    "DatasetFile",
    "InvalidTask",
    "ItemJudge",
    "TaskFailed",
    "TaskItem",
    "items_for_function",
]


class ItemJudge(Protocol):
    """Decides items; the run's session implements it."""

    def judge(self, item: TaskItem) -> ItemDecision:
        """Sample (or take the reference), execute and decide one item."""
        ...

    def ks(self) -> tuple[int, ...]:
        """The k values of the item's JUnit properties."""
        ...


#: Fixtures the sandbox provides to a task's test, besides the candidate and parametrized names.
SANDBOX_FIXTURES = ("tmp_path",)
UNSUPPORTED_FIXTURE = (
    "the task's test asks for the fixture {name!r}, which the sandbox cannot provide (the test "
    "runs in the sandbox's judge, away from pytest's fixtures)"
)
UNSUPPORTED_FIXTURE_FIX = (
    "take only the candidate, @pytest.mark.parametrize names and tmp_path, and build other "
    "values inside the test (see docs/tasks.md)"
)
NO_CANDIDATE_PARAMETER = "the task's test takes no candidate parameter"
NO_CANDIDATE_FIX = "define it as def test_x(candidate): ..."

JUDGE_KEY = pytest.StashKey[ItemJudge]()
#: An item's result, for its report (``pytest_runtest_makereport``).
RESULT_KEY = pytest.StashKey[TaskResult]()
IMPORT_PATH_KEY = pytest.StashKey[tuple[str, ...]]()


class TaskFailed(AssertionError):
    """Raised by :meth:`TaskItem.runtest` when the item's criterion is not met.

    An :class:`AssertionError`, so reporters that tell failures from errors (allure's "failed"
    against "broken") see a task that misses its criterion as failed, like a failed assert.
    """

    def __init__(self, result: TaskResult, note: str | None = None) -> None:
        super().__init__(f"{result.c}/{result.n} candidates passed")
        self.result = result
        self.note = note


class TaskItem(pytest.Item):
    """One task sampled from one model (or, in check mode, the task's reference)."""

    def __init__(self, *, task: Task, model: str | None, lineno: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.task = task
        self.model = model
        self._lineno = lineno
        self.add_marker("passk")

    def runtest(self) -> None:
        """Sample, execute and judge (the run's :class:`ItemJudge` does the work), then pass,
        fail or skip from its decision.
        """
        judge = self.config.stash[JUDGE_KEY]
        decision = judge.judge(self)
        if decision.result is not None:
            self.stash[RESULT_KEY] = decision.result
            if decision.result.n:
                self.user_properties.extend(item_properties(decision.result, judge.ks()))
        if decision.decision is Decision.SKIPPED:
            # Reported at the task's own file and line (-ra), not inside this plugin.
            raise pytest.skip.Exception(decision.message or "", _use_item_location=True)
        if decision.decision is Decision.ERROR:
            pytest.fail(decision.message or "", pytrace=False)
        if decision.decision is Decision.FAILED:
            assert decision.result is not None
            raise TaskFailed(decision.result, decision.message)

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """c/n with the outcome counts and the first failing candidate, not a traceback; in
        the ``--tb`` style asked for (``line``: the one-line headline only; ``short``: without
        the candidate's program).
        """
        if isinstance(excinfo.value, TaskFailed):
            tbstyle = style or self.config.getoption("tbstyle", "auto")
            return _failure_repr(self, excinfo.value, str(tbstyle))
        if isinstance(excinfo.value, TaskFormatError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the task is defined, and what runs."""
        where = f" [{self.model}]" if self.model else " [reference]"
        return self.path, self._lineno, f"passk: {self.task.task_id}{where}"


class InvalidTask(pytest.Item):
    """A malformed task definition: an error naming file:line, while other tasks still run."""

    def __init__(self, *, error: TaskFormatError, lineno: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self._lineno = lineno

    def setup(self) -> None:
        """Fail in setup so the item is reported as an error, not a failed task."""
        pytest.fail(str(self.error), pytrace=False)

    def runtest(self) -> None:
        """Never reached: :meth:`setup` raises."""

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None
    ) -> str | Any:
        """The error's own message: what, where and how to fix it."""
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """The offending line."""
        return self.path, self._lineno, f"passk: invalid task at {self.error.where}"


class DatasetFile(pytest.File):
    """A HumanEval-format JSONL dataset (plain or gzip)."""

    def collect(self) -> Iterable[pytest.Item | pytest.Collector]:
        """One item per task and model; a malformed line becomes an :class:`InvalidTask`."""
        settings = self.config.stash[SETTINGS_KEY]
        try:
            for lineno, entry in iter_dataset(self.path):
                if isinstance(entry, TaskFormatError):
                    yield InvalidTask.from_parent(
                        self, name=f"line {lineno}", error=entry, lineno=lineno - 1
                    )
                else:
                    yield from _items(self, entry, settings, lineno - 1)
        except TaskFormatError as exc:
            raise self.CollectError(str(exc)) from None


def items_for_function(
    collector: pytest.Module | pytest.Class, name: str, obj: Any, spec: TaskSpec
) -> list[pytest.Item]:
    """Items for a ``@passk.task`` test function."""
    settings = collector.config.stash[SETTINGS_KEY]
    module = collector.getparent(pytest.Module)
    assert module is not None
    module_obj = module.obj
    task_id = f"{collector.nodeid}::{name}"
    code = getattr(inspect.unwrap(obj), "__code__", None)
    lineno = code.co_firstlineno - 1 if code is not None else None
    if spec.error is not None:
        return [InvalidTask.from_parent(collector, name=name, error=spec.error, lineno=lineno)]
    if isinstance(collector, pytest.Class):
        where = f"{module.path}:{(lineno or 0) + 1}"
        error = TaskFormatError(
            where, "@passk.task on a method is not supported", "define the task at module level"
        )
        return [InvalidTask.from_parent(collector, name=name, error=error, lineno=lineno)]
    signature_error = _signature_error(obj, f"{module.path}:{(lineno or 0) + 1}")
    if signature_error is not None:
        return [InvalidTask.from_parent(collector, name=name, error=signature_error, lineno=lineno)]
    task = Task(
        task_id=task_id,
        prompt=spec.prompt,
        entry_point=spec.entry_point,
        test=FunctionTest(
            module_name=module_obj.__name__,
            module_file=str(module.path),
            qualname=name,
            sys_path=_import_path(module),
        ),
        reference=spec.reference,
        timeout=spec.timeout,
        min_pass_at_k=spec.min_pass_at_k,
        origin=f"{module.path}:{(lineno or 0) + 1}",
        differential=spec.differential,
    )
    return list(_items(collector, task, settings, lineno))


def _signature_error(obj: Any, where: str) -> TaskFormatError | None:
    """Why the sandbox cannot call the task's test, if it cannot: it passes the candidate first,
    then each case's parametrized values and ``tmp_path``; it resolves no other fixture (their
    values live in this process, and the test runs in the sandbox's judge).
    """
    try:
        parameters = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        return None
    if not parameters or parameters[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return TaskFormatError(where, NO_CANDIDATE_PARAMETER, NO_CANDIDATE_FIX)
    filled = set(SANDBOX_FIXTURES)
    for mark in getattr(obj, "pytestmark", ()):
        if getattr(mark, "name", "") == "parametrize" and mark.args:
            names = mark.args[0]
            filled.update(
                n.strip() for n in (names.split(",") if isinstance(names, str) else names)
            )
    for parameter in parameters[1:]:
        if parameter.name in filled or parameter.default is not inspect.Parameter.empty:
            continue
        if parameter.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        return TaskFormatError(
            where, UNSUPPORTED_FIXTURE.format(name=parameter.name), UNSUPPORTED_FIXTURE_FIX
        )
    return None


def _items(
    parent: pytest.Collector, task: Task, settings: Settings, lineno: int | None
) -> Iterator[TaskItem]:
    if not settings.sampling_mode:
        name = _name(task)
        yield TaskItem.from_parent(
            parent, name=name, nodeid=_nodeid(parent, name), task=task, model=None, lineno=lineno
        )
        return
    for model in settings.models:
        name = f"{_name(task)}[{model.label}]"
        yield TaskItem.from_parent(
            parent,
            name=name,
            nodeid=_nodeid(parent, name),
            task=task,
            model=model.label,
            lineno=lineno,
        )


def _nodeid(parent: pytest.Collector, name: str) -> str:
    """The item's node id as a string, for pytest to parse: pytest >= 9 then reads the model in
    ``task[model]`` as the item's parameter id, as it reads the ids it keeps in its cache, so
    ``--lf``, ``--ff``, ``--sw`` and ``--nf`` recognise the item (a name that merely contains
    brackets never equals a parsed id). pytest 8 keeps the string as it is.
    """
    return f"{parent.nodeid}::{name}" if parent.nodeid else name


def _failure_repr(item: TaskItem, failed: TaskFailed, style: str) -> ExceptionChainRepr:
    """The failure as pytest's own exception representation: its text as one entry, and a
    one-line crash message for ``--tb=line`` and the short test summary (``-vv``, CI). Made of
    pytest's own classes so it survives pytest-xdist's report serialisation.
    """
    if style == "line":
        lines: list[str] = []
    else:
        text = failure_text(failed.result, failed.note, listing=style != "short")
        lines = text.splitlines()
    headline = failure_headline(failed.result)
    if failed.note:
        headline = f"{headline}; {failed.note}"
    path, lineno, _ = item.location
    entry = ReprEntry(lines, None, None, None, "value")
    crash = ReprFileLocation(path, (lineno or 0) + 1, headline)
    return ExceptionChainRepr([(ReprTraceback([entry], None, "value"), crash, None)])


def _name(task: Task) -> str:
    # Decorated tasks are named by their function; datasets by their task_id.
    return task.task_id.rsplit("::", 1)[-1]


def _import_path(module: pytest.Module) -> tuple[str, ...]:
    """Where the sandbox imports the test module from: the import path as it was when pytest
    imported the module (its import mode may have added the module's base directory), absolute.
    Computed once per module.
    """
    if IMPORT_PATH_KEY not in module.stash:
        module.stash[IMPORT_PATH_KEY] = tuple(
            str(Path(entry).resolve()) for entry in sys.path if entry and Path(entry).exists()
        )
    return module.stash[IMPORT_PATH_KEY]
