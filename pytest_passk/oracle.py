"""A task's stronger tests, built once per task in the trusted pytest process.

For a task with a :class:`~pytest_passk.differential.DifferentialSpec` (or any HumanEval-format
task with a reference under ``--passk-augment``) the :class:`Oracle` draws the inputs
(:mod:`pytest_passk.inputs`, :mod:`pytest_passk.augment`), runs the reference on them in a
fresh trusted interpreter (:mod:`pytest_passk.sandbox.reference`: the reference is trusted
but may hang, so each input has a time budget, and an input it cannot answer is left out), and
hands the result to every candidate job as a :class:`~pytest_passk.differential.Differential`.
Results are kept per task in memory, and, for inputs that hypothesis does not draw
(augmented and EvalPlus tasks), in the store (``differential/``), so reruns and
pytest-xdist workers reuse them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_passk.differential import AUTO, STRONGER, Differential, DifferentialSpec
from pytest_passk.errors import TaskFormatError
from pytest_passk.references import Batch, observations
from pytest_passk.tasks import CheckTest, Task

__all__ = ["INPUT_BUDGET", "REFERENCE_LOAD_FAILED", "Oracle", "build"]

#: Wall seconds the reference may take on one input (at most the task's timeout).
INPUT_BUDGET = 2.0
#: ``--passk-augment``: CPU seconds of the reference per generated input, and for all of a
#: task's inputs together; inputs past them are left out. Each candidate runs every input (and
#: may take 20 times the reference's time): HumanEval's O(n^3) tasks would otherwise cost more
#: than the rest of the benchmark together.
INPUT_CPU = 0.01
TASK_CPU = 0.05
REFERENCE_LOAD_FAILED = "the reference of {task} failed to load in the reference runner: {error}"
CACHE_DIR = "differential"
CACHE_SCHEMA = "pytest-passk/differential/v1"


class Oracle:
    """Builds and keeps each task's :class:`Differential` (thread-safe)."""

    def __init__(
        self,
        *,
        augment: bool,
        examples: int,
        store: Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.augment = augment
        self.examples = examples
        self._store = store
        self._warn = warn or (lambda message: None)
        self._known: dict[tuple[object, ...], Differential | None] = {}
        self._lock = threading.Lock()

    def spec_of(self, task: Task) -> DifferentialSpec | None:
        """The task's stronger tests: its own, or, under ``--passk-augment``, those a dataset
        task with a reference gets.
        """
        if task.differential is not None:
            return task.differential
        if self.augment and isinstance(task.test, CheckTest) and task.reference is not None:
            from pytest_passk.augment import seeds_of

            if task.entry_point is None:
                return None
            seeds = tuple(seeds_of(task.test.source, task.entry_point))
            return DifferentialSpec(seeds=seeds, drop_raising=True)
        return None

    def differential(self, task: Task, timeout: float) -> Differential | None:
        """The task's :class:`Differential`, built on first use.

        Raises:
            TaskFormatError: ``inputs=`` cannot be drawn (no strategy derivable, not plain
                data), or the reference does not load.

        """
        spec = self.spec_of(task)
        if spec is None or task.reference is None or task.entry_point is None:
            return None
        key = self._key(task, spec)
        with self._lock:
            if key not in self._known:
                path = self._path(task, spec)
                found = _read(path) if path is not None else None
                if found is None:
                    cases = _cases(task, spec, spec.examples or self.examples)
                    budget = _budget(spec, timeout)
                    assert task.reference is not None and task.entry_point is not None
                    (answers,) = observations([_batch(task, spec, cases)], budget)
                    found = _assemble(task, spec, cases, answers)
                    if path is not None:
                        _write(path, found)
                self._known[key] = found
            return self._known[key]

    def prepare(self, tasks: Sequence[tuple[Task, float]]) -> None:
        """Build the differentials of ``(task, timeout)`` pairs at once, with one reference
        runner for all of them (an interpreter's start costs more than a task's inputs). A task
        whose inputs cannot be drawn or whose reference does not load is left for
        :meth:`differential` to report.
        """
        pending: dict[float, list[tuple[Any, ...]]] = {}
        with self._lock:
            for task, timeout in tasks:
                spec = self.spec_of(task)
                if spec is None or task.reference is None or task.entry_point is None:
                    continue
                key = self._key(task, spec)
                path = self._path(task, spec)
                if key in self._known:
                    continue
                found = _read(path) if path is not None else None
                if found is not None:
                    self._known[key] = found
                    continue
                try:
                    cases = _cases(task, spec, spec.examples or self.examples)
                except TaskFormatError:
                    continue
                group = pending.setdefault(_budget(spec, timeout), [])
                group.append((key, path, task, spec, cases))
            for budget, group in pending.items():
                batches = [_batch(t, sp, c) for _, _, t, sp, c in group]
                for (key, path, task, spec, cases), answers in zip(
                    group, observations(batches, budget), strict=True
                ):
                    if isinstance(answers, RuntimeError):
                        continue
                    self._known[key] = built = _assemble(task, spec, cases, answers)
                    if path is not None:
                        _write(path, built)

    def _key(self, task: Task, spec: DifferentialSpec) -> tuple[object, ...]:
        return (task.task_id, task.reference, task.test, spec.examples, id(spec.inputs))

    def _path(self, task: Task, spec: DifferentialSpec) -> Path | None:
        """Where the task's differential is kept in the store (``None``: not kept, its inputs
        come from a hypothesis strategy, whose draws depend on hypothesis's version).
        """
        if self._store is None or spec.inputs is not None:
            return None
        from pytest_passk.store.keys import digest

        name = digest({
            "schema": CACHE_SCHEMA, "task": task.task_id, "reference": task.reference,
            "test": repr(task.test), "examples": spec.examples or self.examples,
            "fixed": repr(spec.fixed), "seeds": repr(spec.seeds),
            "compare": spec.compare_plain(), "drop": spec.drop_raising, "harness": _harness(),
        })  # fmt: skip
        return self._store / CACHE_DIR / f"{name}.json"


@dataclass(frozen=True, slots=True)
class Cases:
    """A task's distinct inputs with their tiers, and their plain encodings."""

    tiers: tuple[int, ...]
    encoded: tuple[Any, ...]


def _batch(task: Task, spec: DifferentialSpec, cases: Cases) -> Batch:
    """The reference runner's work for ``task``: with CPU caps for augmented tasks."""
    capped = spec.drop_raising
    return Batch(
        task.reference or "", task.entry_point or "", cases.encoded,
        INPUT_CPU if capped else None, TASK_CPU if capped else None,
    )  # fmt: skip


def _budget(spec: DifferentialSpec, timeout: float) -> float:
    """Seconds the reference may take on one input: short for generated inputs (one it cannot
    answer quickly is left out), the task's timeout for given ones (EvalPlus's).
    """
    return timeout if spec.fixed else min(INPUT_BUDGET, timeout)


def _cases(task: Task, spec: DifferentialSpec, examples: int) -> Cases:
    """Draw the inputs of ``task``: its given ones, then the generated ones, without repeats."""
    from pytest_passk.inputs import plain_key
    from pytest_passk.sandbox import plain

    tiered = [(args, tier) for args, tier in spec.fixed]
    tiered += [(args, STRONGER) for args in _drawn(task, spec, examples)]
    seen: set[str] = set()
    tiers, encoded = [], []
    for args, tier in tiered:
        key = plain_key(args)
        if key is not None and key not in seen:
            seen.add(key)
            tiers.append(tier)
            encoded.append(plain.encode(list(args), strict=True))
    return Cases(tuple(tiers), tuple(encoded))


def _assemble(
    task: Task,
    spec: DifferentialSpec,
    cases: Cases,
    answers: list[dict[str, Any] | None] | RuntimeError,
) -> Differential:
    """The job's data: each input the reference answered, with its answer."""
    if isinstance(answers, RuntimeError):
        raise TaskFormatError(
            task.origin or task.task_id,
            REFERENCE_LOAD_FAILED.format(task=task.task_id, error=answers),
            "fix the reference solution",
        )
    found: list[Any] = []
    dropped = 0
    spent = 0.0
    for tier, arguments, answer in zip(cases.tiers, cases.encoded, answers, strict=True):
        if answer is None or "drop" in answer or (spec.drop_raising and "raise" in answer):
            dropped += 1
            continue
        cpu = float(answer.pop("c", 0.0) or 0.0)
        if spec.drop_raising and (cpu > INPUT_CPU or spent + cpu > TASK_CPU):
            dropped += 1  # augmented: each candidate would pay it up to 20 times over
            continue
        spent += cpu
        found.append([arguments, answer, tier])
    return Differential.of(found, spec.compare_plain(), dropped)


def build(task: Task, spec: DifferentialSpec, examples: int, timeout: float) -> Differential:
    """Draw the inputs of ``task`` and compute its reference's observations on them (no cache).

    Raises:
        TaskFormatError: the inputs cannot be drawn, or the reference does not load.

    """
    assert task.reference is not None and task.entry_point is not None
    cases = _cases(task, spec, examples)
    (answers,) = observations([_batch(task, spec, cases)], _budget(spec, timeout))
    return _assemble(task, spec, cases, answers)


def _drawn(task: Task, spec: DifferentialSpec, examples: int) -> list[tuple[Any, ...]]:
    """The generated inputs: from the task's strategy, ``"auto"``, or the augmentation."""
    from pytest_passk.inputs import auto_strategy, draw, seed_of, signature_function

    assert task.reference is not None and task.entry_point is not None
    where = task.origin or task.task_id
    seed = seed_of(task.task_id)
    if spec.inputs == AUTO:
        function = spec.reference or signature_function(task.reference, task.entry_point)
        if function is None:
            raise TaskFormatError(
                where, f"inputs=\"auto\": the reference defines no {task.entry_point}()",
                "give the reference as a function, or inputs=<strategy>",
            )  # fmt: skip
        return draw(auto_strategy(function, where), examples, seed, where)
    if spec.inputs is not None:
        return draw(spec.inputs, examples, seed, where)
    if not spec.seeds and spec.fixed:
        return []  # an EvalPlus task: its own inputs
    from pytest_passk.augment import generate

    function = signature_function(task.reference, task.entry_point)
    return generate(spec.seeds, function, examples, seed, task.reference)


@functools.cache
def _harness() -> str:
    """What makes a cached differential stale besides its task: the generating code (the
    hypothesis version does not enter: only inputs from no strategy object are kept on disk).
    """
    import hashlib

    hasher = hashlib.sha256()
    for name in ("augment.py", "inputs.py", "oracle.py", "sandbox/reference.py"):
        hasher.update((Path(__file__).parent / name).read_bytes())
    return hasher.hexdigest()


def _read(path: Path) -> Differential | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != CACHE_SCHEMA:
            return None
        return Differential(str(data["cases"]), str(data["compare"]), int(data["dropped"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, value: Differential) -> None:
    data = {"schema": CACHE_SCHEMA, "cases": value.cases, "compare": value.compare,
            "dropped": value.dropped}  # fmt: skip
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
