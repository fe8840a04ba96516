"""How much of a pass@k is real: pass@k on the task's own tests against the stronger tests.

Pure core. A task with stronger tests (a differential task, ``--passk-augment``, an EvalPlus
dataset) judges each candidate twice in one run: on its own tests alone, and on its own tests
plus the stronger ones. The item's pass/fail and the report's ``pass_at_k`` are on the stronger
tests; this module adds, beside them, pass@k on the original tests and the false positives:
candidates that pass the original tests and fail the stronger ones.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_passk.estimate import pass_at_k
from pytest_passk.results import TaskResult

__all__ = ["StrongerSummary", "model_json", "stronger_lines", "summarise", "task_json"]

STRONGER_LINE = (
    "{label}: stronger tests on {tasks} task(s): {pairs}; false positives {fp}/{passed} "
    "({rate:.1%}) of the candidates that passed the original tests"
)


@dataclass(frozen=True, slots=True)
class StrongerSummary:
    """One model's figures over its tasks with stronger tests."""

    label: str
    tasks: int
    #: Mean pass@k over those tasks with n >= k, on the original tests and on the stronger ones.
    original: dict[int, float]
    stronger: dict[int, float]
    passed_original: int
    false_positives: int

    @property
    def false_positive_rate(self) -> float:
        """False positives among the candidates that passed the original tests."""
        return self.false_positives / self.passed_original if self.passed_original else 0.0


def task_json(result: TaskResult, ks: Sequence[int]) -> dict[str, Any] | None:
    """A task's ``stronger`` object in the JSON report (``None`` without stronger tests)."""
    if result.c_original is None:
        return None
    original = {str(k): pass_at_k(result.n, result.c_original, k) for k in ks if result.n >= k}
    return {
        "c_original": result.c_original,
        "pass_at_k_original": original,
        "pass_at_k_stronger": {str(k): v for k, v in result.pass_at_k.items()},
        "false_positives": result.false_positives,
        "false_positive_rate": result.false_positives / result.c_original
        if result.c_original
        else 0.0,
    }


def summarise(label: str, results: Sequence[TaskResult], ks: Sequence[int]) -> StrongerSummary:
    """``label``'s figures over its results that have stronger tests."""
    mine = [r for r in results if r.model == label and r.c_original is not None]
    original: dict[int, float] = {}
    stronger: dict[int, float] = {}
    for k in ks:
        scored = [r for r in mine if r.n >= k]
        if scored:
            original[k] = math.fsum(pass_at_k(r.n, r.c_original or 0, k) for r in scored) / len(
                scored
            )
            stronger[k] = math.fsum(pass_at_k(r.n, r.c, k) for r in scored) / len(scored)
    return StrongerSummary(
        label,
        len(mine),
        original,
        stronger,
        sum(r.c_original or 0 for r in mine),
        sum(r.false_positives for r in mine),
    )


def model_json(label: str, results: Sequence[TaskResult], ks: Sequence[int]) -> dict[str, Any]:
    """A model's ``stronger`` object in the JSON report (``{}`` fields when it has no task with
    stronger tests: then ``tasks`` is 0).
    """
    s = summarise(label, results, ks)
    return {
        "tasks": s.tasks,
        "pass_at_k_original": {str(k): _finite(v) for k, v in s.original.items()},
        "pass_at_k_stronger": {str(k): _finite(v) for k, v in s.stronger.items()},
        "passed_original": s.passed_original,
        "false_positives": s.false_positives,
        "false_positive_rate": s.false_positive_rate,
    }


def stronger_lines(
    labels: Sequence[str], results: Sequence[TaskResult], ks: Sequence[int]
) -> list[str]:
    """One terminal line per model that has tasks with stronger tests."""
    lines = []
    for label in labels:
        s = summarise(label, results, ks)
        if not s.tasks:
            continue
        pairs = ", ".join(
            f"pass@{k} {s.original[k]:.4f} -> {s.stronger[k]:.4f}" for k in ks if k in s.original
        )
        lines.append(
            STRONGER_LINE.format(
                label=label,
                tasks=s.tasks,
                pairs=pairs or "n < k",
                fp=s.false_positives,
                passed=s.passed_original,
                rate=s.false_positive_rate,
            )
        )
    return lines


def item_properties(result: TaskResult, ks: Sequence[int]) -> list[tuple[str, object]]:
    """Per-testcase JUnit properties of a task with stronger tests."""
    if result.c_original is None:
        return []
    props: list[tuple[str, object]] = [
        ("passk_c_original", result.c_original),
        ("passk_false_positives", result.false_positives),
    ]
    for k in ks:
        if result.n >= k:
            props.append(
                (f"pass@{k}[original]", f"{pass_at_k(result.n, result.c_original, k):.6g}")
            )
    return props


def suite_properties(
    labels: Sequence[str], results: Sequence[TaskResult], ks: Sequence[int]
) -> list[tuple[str, str]]:
    """Suite-level JUnit properties: ``pass@K[model][original]`` and
    ``false_positive_rate[model]``, for models with stronger tests.
    """
    props: list[tuple[str, str]] = []
    for label in labels:
        s = summarise(label, results, ks)
        if not s.tasks:
            continue
        props.extend((f"pass@{k}[{label}][original]", f"{v:.6g}") for k, v in s.original.items())
        props.append((f"false_positive_rate[{label}]", f"{s.false_positive_rate:.6g}"))
    return props


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value
