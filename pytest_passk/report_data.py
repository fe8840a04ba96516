"""Reading a ``pytest-passk/report/v1`` document back: loading and checking a saved file, and the
per-model views the curves, the HTML report and ``pytest-passk compare`` are drawn from.

Everything rendered after a run goes through the JSON document (never the in-memory results),
so a run and a saved report give the same pictures.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_passk.errors import PassKError
from pytest_passk.report import REPORT_SCHEMA

__all__ = [
    "BAD_FIELD",
    "NOT_A_REPORT",
    "ReportFileError",
    "TaskCount",
    "check_report",
    "cost_per_sample",
    "load_report",
    "model_labels",
    "target_cells",
    "task_counts",
]

NO_FILE = "{path}: no such file; give the path of a --passk-report file"
NOT_JSON = "{path}: not JSON ({error}); give the path of a --passk-report file"
NOT_A_REPORT = "{path}: not a pytest-passk report ({problem}); give a --passk-report file"
WRONG_SCHEMA = (
    "{path}: report schema {schema!r} is not {expected!r}; "
    "render it with the pytest-passk version that wrote it"
)

#: A model's ``pass_at_k`` or ``ci95`` (or one k of it) not in the shape every run writes.
BAD_FIELD = (
    "{path}: {field} is {value!r}, not {shape}; write it as a run writes it ({shape}) "
    "or delete the field"
)
PASS_AT_K_SHAPE = "an object of k to a number or null"
CI95_SHAPE = "an object of k to [low, high]"
BOUNDS_SHAPE = "[low, high] with numbers or nulls"
VALUE_SHAPE = "a number or null"


class ReportFileError(PassKError):
    """A saved report cannot be read: missing, not JSON, not a report, or another schema."""


@dataclass(frozen=True, slots=True)
class TaskCount:
    """One task of one model: samples drawn and passed."""

    task_id: str
    n: int
    c: int


def load_report(path: Path) -> dict[str, Any]:
    """Read and check a saved report.

    Raises:
        ReportFileError: one line saying what is wrong with which file.

    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ReportFileError(NO_FILE.format(path=path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportFileError(NOT_JSON.format(path=path, error=exc)) from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportFileError(NOT_JSON.format(path=path, error=exc)) from None
    return check_report(document, str(path))


def check_report(document: object, source: str) -> dict[str, Any]:
    """``document`` if it has the report's shape (schema, models, tasks), else a
    :class:`ReportFileError` naming ``source``.
    """
    if not isinstance(document, dict):
        problem = f"the top level is a {type(document).__name__}, not an object"
        raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
    schema = document.get("schema")
    if schema is None:
        raise ReportFileError(NOT_A_REPORT.format(path=source, problem="no 'schema' field"))
    if schema != REPORT_SCHEMA:
        raise ReportFileError(
            WRONG_SCHEMA.format(path=source, schema=schema, expected=REPORT_SCHEMA)
        )
    if not isinstance(document.get("models"), dict) or not isinstance(document.get("tasks"), list):
        problem = "'models' must be an object and 'tasks' a list"
        raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
    ks = document.get("k", [])
    if not isinstance(ks, list) or not all(_count(k) and k >= 1 for k in ks):
        problem = f"'k' must be a list of integers >= 1, not {ks!r}"
        raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
    for label, entry in document["models"].items():
        if not isinstance(entry, dict):
            problem = f"models[{label!r}] is not an object"
            raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
        _check_figures(entry, f"models[{label!r}]", source)
    for index, task in enumerate(document["tasks"]):
        if (
            not isinstance(task, dict)
            or not all(isinstance(task.get(name), str) for name in ("task_id", "model"))
            or not (_count(task.get("n")) and _count(task.get("c")))
        ):
            problem = f"task record {index} lacks task_id, model, n or c"
            raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
        n, c = task["n"], task["c"]
        if not 0 <= c <= n:
            # The estimator is undefined there: no run writes such counts.
            problem = f"task record {index} has n={n}, c={c}; need 0 <= c <= n"
            raise ReportFileError(NOT_A_REPORT.format(path=source, problem=problem))
    return document


def _check_figures(entry: dict[str, Any], where: str, source: str) -> None:
    """A model's ``pass_at_k`` and ``ci95``, where present, in the shape a run writes them
    (the summary, the HTML page and the curves read them as such).
    """
    figures = (("pass_at_k", PASS_AT_K_SHAPE, VALUE_SHAPE), ("ci95", CI95_SHAPE, BOUNDS_SHAPE))
    for name, shape, item_shape in figures:
        value = entry.get(name)
        if value is None:
            continue
        field = f"{where}.{name}"
        if not isinstance(value, dict):
            raise ReportFileError(
                BAD_FIELD.format(path=source, field=field, value=value, shape=shape)
            )
        for k, item in value.items():
            if name == "ci95":
                good = isinstance(item, list) and len(item) == 2 and all(map(_number, item))
            else:
                good = _number(item)
            if not good:
                raise ReportFileError(
                    BAD_FIELD.format(
                        path=source, field=f"{field}[{k!r}]", value=item, shape=item_shape
                    )
                )


def _number(value: object) -> bool:
    """A JSON number or null (``NaN`` is written as null)."""
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _count(value: object) -> bool:
    """An integer that is not a bool (JSON ``true`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def target_cells(document: dict[str, Any]) -> tuple[object, dict[str, Any], bool] | None:
    """The run's ``--passk-target`` reach as saved: ``(target, cell per model, shared)``, from the
    comparison (``shared``: on the tasks every model ran) where it has any, else each model's
    reach on its own tasks (``models[M].target``); ``None`` for a run without a target.
    """
    comparison = document.get("comparison")
    shared = comparison.get("target") if isinstance(comparison, dict) else None
    if isinstance(shared, dict) and isinstance(shared.get("models"), dict) and shared["models"]:
        return shared.get("pass_at_k"), shared["models"], True
    cells = {
        label: entry["target"]
        for label, entry in document["models"].items()
        if isinstance(entry.get("target"), dict)
    }
    if not cells:
        return None
    return next(iter(cells.values())).get("pass_at_k"), cells, False


def model_labels(document: dict[str, Any]) -> list[str]:
    """The models in report order, then any that only have task records."""
    labels = list(document["models"])
    for task in document["tasks"]:
        if task["model"] not in labels:
            labels.append(task["model"])
    return labels


def task_counts(document: dict[str, Any], model: str) -> list[TaskCount]:
    """``(task, n, c)`` of ``model``'s tasks in task-id order (the order the report's own
    bootstrap used), tasks without samples left out.
    """
    counts = [
        TaskCount(task["task_id"], task["n"], task["c"])
        for task in document["tasks"]
        if task["model"] == model and task["n"] > 0
    ]
    return sorted(counts, key=lambda t: t.task_id)


def cost_per_sample(document: dict[str, Any], model: str) -> float | None:
    """A model's cost per sample in USD: the report's ``cost_per_sample_usd`` when present, else
    its ``cost_usd`` over its samples; ``None`` when unknown (never 0 for unknown).
    """
    entry = document["models"].get(model, {})
    value = entry.get("cost_per_sample_usd")
    if _finite(value):
        return float(value)
    total, samples = entry.get("cost_usd"), entry.get("samples")
    if _finite(total) and isinstance(samples, int) and samples > 0:
        return float(total) / samples
    return None


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
