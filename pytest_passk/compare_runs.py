"""Two runs on the same tasks, compared: the paired difference of pass@k with a paired bootstrap
interval over the tasks both runs have, and the tasks only one run solved.

Pure: reads two ``pytest-passk/report/v1`` documents. The paired interval is the in-run
comparison's (:func:`pytest_passk.comparison.paired_difference`: the percentile bootstrap of the
per-task differences, so each resample draws tasks as pairs, with its seed and resample count).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pytest_passk.comparison import item_of, task_keys
from pytest_passk.comparison import paired_difference as paired_bootstrap
from pytest_passk.errors import PassKError
from pytest_passk.estimate import pass_at_k
from pytest_passk.report_data import TaskCount, model_labels

__all__ = [
    "DUPLICATE_TASK",
    "LEFT_OUT",
    "NO_COMMON_MODEL",
    "NO_SHARED_TASKS",
    "ComparisonError",
    "ModelComparison",
    "PairedDifference",
    "ReportsComparison",
    "compare_reports",
    "comparison_lines",
    "paired_difference",
]

NO_COMMON_MODEL = (
    "the reports have no model in common ({a} / {b}); compare reports of the same model, "
    "or reports with one model each"
)
NO_SHARED_TASKS = "the reports share no task; compare two runs on the same tasks"
#: A matched model (or pair) left out because its two runs share no task; the rest compare.
LEFT_OUT = "{model}: left out, no task in common ({a} tasks in A, {b} in B)"
DUPLICATE_TASK = (
    "{path}: model {model!r} has more than one record of task {task!r} (item {item!r}); "
    "a report holds one record per task, model and item: remove the extra records"
)


class ComparisonError(PassKError):
    """Two reports cannot be compared."""


@dataclass(frozen=True, slots=True)
class PairedDifference:
    """``pass@k(B) - pass@k(A)`` over the tasks where both have ``n >= k``."""

    k: int
    a: float
    b: float
    diff: float
    low: float
    high: float
    tasks: int


@dataclass(frozen=True, slots=True)
class ModelComparison:
    """One model (or the one model of each report) in run A against run B."""

    model_a: str
    model_b: str
    shared_tasks: int
    only_in_a: int
    only_in_b: int
    differences: tuple[PairedDifference, ...]
    #: Shared tasks with a passing candidate in only one of the runs.
    solved_only_by_a: int
    solved_only_by_b: int


@dataclass(frozen=True, slots=True)
class ReportsComparison:
    """The matched models compared, and a line for each one left out (and why)."""

    models: tuple[ModelComparison, ...]
    left_out: tuple[str, ...] = ()


def paired_difference(pairs: Sequence[tuple[TaskCount, TaskCount]], k: int) -> PairedDifference:
    """Mean per-task difference of pass@k (B minus A) over the pairs where both have
    ``n >= k``, with a paired percentile bootstrap 95% interval; NaN where no pair qualifies.

    """
    usable = [(a, b) for a, b in pairs if a.n >= k and b.n >= k]
    if not usable:
        nan = math.nan
        return PairedDifference(k, nan, nan, nan, nan, nan, 0)
    values_a = [pass_at_k(a.n, a.c, k) for a, _ in usable]
    values_b = [pass_at_k(b.n, b.c, k) for _, b in usable]
    # The in-run comparison's statistic (and resample count), so the two always agree.
    diff, low, high = paired_bootstrap(values_b, values_a)
    size = len(usable)
    return PairedDifference(
        k, math.fsum(values_a) / size, math.fsum(values_b) / size, diff, low, high, size
    )


def compare_reports(
    first: dict[str, Any], second: dict[str, Any], names: tuple[str, str] = ("A", "B")
) -> ReportsComparison:
    """Every model the two reports share (or their one model each), compared task by task.

    Tasks are matched by task id (and item, where several items of a run share an id:
    :func:`~pytest_passk.comparison.task_keys`). A matched model whose two runs share no task
    is left out with a line saying so; ``names`` name the reports in errors.

    Raises:
        ComparisonError: no model in common, no task in common for any model, or a report with
            the same task, model and item twice.

    """
    labels_a, labels_b = model_labels(first), model_labels(second)
    common = [label for label in labels_a if label in labels_b]
    if common:
        matched = [(label, label) for label in common]
    elif len(labels_a) == 1 and len(labels_b) == 1:
        matched = [(labels_a[0], labels_b[0])]
    else:
        raise ComparisonError(
            NO_COMMON_MODEL.format(a=", ".join(labels_a) or "-", b=", ".join(labels_b) or "-")
        )
    ks = sorted({int(k) for k in (*first.get("k", []), *second.get("k", []))} or {1})
    counts_a, counts_b = _keyed_counts(first, names[0]), _keyed_counts(second, names[1])
    comparisons, left_out = [], []
    for label_a, label_b in matched:
        tasks_a, tasks_b = counts_a.get(label_a, {}), counts_b.get(label_b, {})
        shared = sorted(tasks_a.keys() & tasks_b.keys())
        if not shared:
            model = label_a if label_a == label_b else f"{label_a} (A) vs {label_b} (B)"
            left_out.append(LEFT_OUT.format(model=model, a=len(tasks_a), b=len(tasks_b)))
            continue
        pairs = [(tasks_a[task], tasks_b[task]) for task in shared]
        comparisons.append(
            ModelComparison(
                model_a=label_a,
                model_b=label_b,
                shared_tasks=len(shared),
                only_in_a=len(tasks_a.keys() - tasks_b.keys()),
                only_in_b=len(tasks_b.keys() - tasks_a.keys()),
                differences=tuple(paired_difference(pairs, k) for k in ks),
                solved_only_by_a=sum(1 for a, b in pairs if a.c > 0 and b.c == 0),
                solved_only_by_b=sum(1 for a, b in pairs if b.c > 0 and a.c == 0),
            )
        )
    if not comparisons:
        raise ComparisonError(NO_SHARED_TASKS)
    return ReportsComparison(tuple(comparisons), tuple(left_out))


def _keyed_counts(document: dict[str, Any], name: str) -> dict[str, dict[str, TaskCount]]:
    """Each model's tasks with samples by task key; the same task, model and item twice (a
    merged or hand-edited file: no run writes it) is an error naming the file.
    """
    records = document["tasks"]
    nodeids = [r.get("nodeid") if isinstance(r.get("nodeid"), str) else "" for r in records]
    keys = task_keys([(r["model"], r["task_id"], i) for r, i in zip(records, nodeids, strict=True)])
    counts: dict[str, dict[str, TaskCount]] = {}
    seen: set[tuple[str, str]] = set()
    for record, nodeid, key in zip(records, nodeids, keys, strict=True):
        model = record["model"]
        if (model, key) in seen:
            item = item_of(nodeid, model)
            raise ComparisonError(
                DUPLICATE_TASK.format(path=name, model=model, task=record["task_id"], item=item)
            )
        seen.add((model, key))
        if record["n"] > 0:
            count = TaskCount(record["task_id"], record["n"], record["c"])
            counts.setdefault(model, {})[key] = count
    return counts


def comparison_lines(comparisons: ReportsComparison, name_a: str, name_b: str) -> list[str]:
    """The comparison as terminal lines: each model compared, then each left out."""
    lines = [f"A: {name_a}", f"B: {name_b}"]
    for comparison in comparisons.models:
        model = comparison.model_a
        if comparison.model_b != model:
            model = f"{comparison.model_a} (A) vs {comparison.model_b} (B)"
        lines.append("")
        extra = ""
        if comparison.only_in_a or comparison.only_in_b:
            extra = (
                f" (left out: {comparison.only_in_a} only in A, {comparison.only_in_b} only in B)"
            )
        lines.append(f"{model}: {comparison.shared_tasks} shared tasks{extra}")
        header = ("k", "tasks", "A", "B", "B - A [95% paired CI]")
        rows = [header]
        for d in comparison.differences:
            if d.tasks == 0:
                rows.append((str(d.k), "0", "n/a", "n/a", "n/a (no task has n >= k in both)"))
                continue
            interval = f"{d.diff:+.3f} [{d.low:+.3f}, {d.high:+.3f}]"
            rows.append((str(d.k), str(d.tasks), f"{d.a:.3f}", f"{d.b:.3f}", interval))
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            lines.append(("  " + "  ".join(cells)).rstrip())
        lines.append(
            f"  solved in one run only: {comparison.solved_only_by_a} by A, "
            f"{comparison.solved_only_by_b} by B"
        )
    if comparisons.left_out:
        lines.append("")
        lines.extend(comparisons.left_out)
    return lines
