"""Rendering a :class:`~pytest_passk.comparison.Comparison`: terminal lines, JSON, JUnit properties.

Pure functions; :mod:`pytest_passk.report` calls them beside the pass@k table and the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from pytest_passk.comparison import Afford, AtBudget, Comparison, TargetReach
from pytest_passk.pricing import HourPrices
from pytest_passk.table import table

__all__ = [
    "NOT_REACHED",
    "NO_TASK_EVERYWHERE",
    "TARGET_LINE",
    "assumptions_json",
    "comparison_json",
    "comparison_lines",
    "comparison_properties",
    "diff_property",
    "reach_json",
    "reach_properties",
    "target_line",
    "usd",
]

#: Cells for a model a budget buys nothing of.
NOT_AFFORDABLE = {
    Afford.OVER_BUDGET: "over budget",
    Afford.UNKNOWN_COST: "cost unknown",
}
NOT_REACHED = "not reached within n={n}"
#: The equal-cost part when no task was run by every model (its rows need such tasks).
NO_TASK_EVERYWHERE = "equal cost: no task every model ran; run the models on the same tasks"
#: ``--passk-target``'s line: each model's ``label k=K ($C/task)`` or not reached.
TARGET_LINE = "to reach pass@k >= {target:g}: {reaches}"


def usd(value: float | None) -> str:
    """USD in a terminal line: four decimals, two significant digits below $0.0001 (never
    ``$0.0000`` for a cost above 0), ``unknown`` for ``None``.
    """
    if value is None:
        return "unknown"
    if 0 < value < 0.0001:  # two significant digits, never an exponent
        return f"${value:.{1 - math.floor(math.log10(value))}f}".rstrip("0")
    return f"${value:.4f}"


def _signed(value: float) -> str:
    return f"{value:+.3f}"


def _float(value: float) -> float | None:
    return None if math.isnan(value) else value


def comparison_lines(comparison: Comparison) -> list[str]:
    """The terminal ``comparison`` part: paired differences, equal cost, target."""
    c = comparison
    lines = [
        f"against {c.baseline}: pass@k on the tasks both ran (n >= k), "
        f"95% CI by paired bootstrap ({c.resamples} resamples)"
    ]
    header = ["model", "k", "tasks", "pass@k", c.baseline, "difference [95% CI]", "only it"]
    header.append(f"only {c.baseline}")
    rows = []
    for v in c.versus:
        for number, (k, d) in enumerate(v.diffs.items()):
            if math.isnan(d.diff):
                cells = ["n/a", "n/a", "n/a"]
            else:
                interval = f"{_signed(d.diff)} [{_signed(d.low)}, {_signed(d.high)}]"
                cells = [f"{d.model_value:.3f}", f"{d.baseline_value:.3f}", interval]
            solved = [str(v.only_model_solved), str(v.only_baseline_solved)]
            if number:  # once per model
                solved = ["", ""]
            rows.append([v.model, str(k), str(d.tasks), *cells, *solved])
    lines.extend(table(header, rows))
    costs = ", ".join(f"{label} {usd(cost)}" for label, cost in c.cost_per_sample.items())
    lines.append(f"cost per sample: {costs}")
    labels = list(c.cost_per_sample)
    if c.equal_cost:
        lines.append(
            f"equal cost per task ({c.shared_tasks} tasks every model ran; * = all n drawn)"
        )
        budget_rows = [
            [usd(row.budget_usd), row.source, *(_at_budget(row.models[m]) for m in labels)]
            for row in c.equal_cost
        ]
        lines.extend(table(["budget/task", "from", *labels], budget_rows))
    elif c.shared_tasks:
        lines.append("equal cost: no model's cost per sample is known and no --passk-budget given")
    else:
        lines.append(NO_TASK_EVERYWHERE)
    if c.target is not None and c.reach:
        lines.append(target_line(c.target, {label: c.reach[label] for label in labels}))
    return lines


def target_line(target: float, reach: Mapping[str, TargetReach]) -> str:
    """The ``to reach pass@k >= P`` line, models in ``reach``'s order."""
    parts = [f"{label} {_reach(r)}" for label, r in reach.items()]
    return TARGET_LINE.format(target=target, reaches="; ".join(parts))


def _at_budget(cell: AtBudget) -> str:
    if cell.k is None or cell.pass_at_k is None:
        return NOT_AFFORDABLE.get(cell.status, "n/a")
    star = "*" if cell.status is Afford.CAPPED else ""
    return f"k={cell.k}{star} {cell.pass_at_k:.3f}"


def _reach(reach: TargetReach) -> str:
    if reach.k is None:
        return NOT_REACHED.format(n=reach.n)
    if reach.cost_per_task_usd is None:
        return f"k={reach.k} (cost unknown)"
    return f"k={reach.k} ({usd(reach.cost_per_task_usd)}/task)"


def comparison_json(comparison: Comparison) -> dict[str, Any]:
    """The report's ``comparison`` object."""
    c = comparison
    models = {
        v.model: {
            "shared_tasks": v.shared_tasks,
            "pass_at_k_diff": {
                str(k): {
                    "diff": _float(d.diff),
                    "ci95": [_float(d.low), _float(d.high)],
                    "tasks": d.tasks,
                    "model_pass_at_k": _float(d.model_value),
                    "baseline_pass_at_k": _float(d.baseline_value),
                }
                for k, d in v.diffs.items()
            },
            "only_model_solved": v.only_model_solved,
            "only_baseline_solved": v.only_baseline_solved,
        }
        for v in c.versus
    }
    equal_cost = [
        {
            "budget_usd": row.budget_usd,
            "source": row.source,
            "models": {
                label: {
                    "k": cell.k,
                    "pass_at_k": cell.pass_at_k,
                    "status": cell.status.value,
                    "affordable_k": cell.affordable,
                }
                for label, cell in row.models.items()
            },
        }
        for row in c.equal_cost
    ]
    target = None
    if c.target is not None:
        target = {
            "pass_at_k": c.target,
            "models": {label: reach_json(r) for label, r in c.reach.items()},
        }
    return {
        "baseline": c.baseline,
        "shared_tasks": c.shared_tasks,
        "bootstrap_resamples": c.resamples,
        "models": models,
        "equal_cost": equal_cost,
        "target": target,
    }


def reach_json(reach: TargetReach) -> dict[str, Any]:
    """A model's reach of the target: ``k`` (``null``: not within n), its cost per task, pass@k
    there (at n when not reached) and n.
    """
    return {
        "k": reach.k,
        "cost_per_task_usd": reach.cost_per_task_usd,
        "pass_at_k_at_k": reach.pass_at_k,
        "n": reach.n,
    }


def assumptions_json(hours: HourPrices) -> dict[str, float]:
    """The report's ``assumptions``: the hourly prices local models' engine time is costed at."""
    return {"gpu_hour_usd": hours.gpu, "cpu_hour_usd": hours.cpu}


def diff_property(k: int, model: str, baseline: str) -> str:
    """``pass@1[gpt-4o]-pass@1[llama3.1]``: a paired difference's JUnit property name."""
    return f"pass@{k}[{model}]-pass@{k}[{baseline}]"


def _prop(value: float | None) -> str:
    return "nan" if value is None or math.isnan(value) else f"{value:.6g}"


def comparison_properties(comparison: Comparison) -> list[tuple[str, str]]:
    """Suite-level JUnit properties of the comparison (undefined values are ``nan``)."""
    c = comparison
    props: list[tuple[str, str]] = []
    for v in c.versus:
        for k, d in v.diffs.items():
            name = diff_property(k, v.model, c.baseline)
            props.append((name, _prop(d.diff)))
            props.append((f"{name}:ci95_low", _prop(d.low)))
            props.append((f"{name}:ci95_high", _prop(d.high)))
        props.append((f"only_solved[{v.model}]-vs-[{c.baseline}]", str(v.only_model_solved)))
        props.append((f"only_solved[{c.baseline}]-vs-[{v.model}]", str(v.only_baseline_solved)))
    for row in c.equal_cost:
        budget = f"{row.budget_usd:.6g}"
        for label, cell in row.models.items():
            props.append((f"equal_cost[${budget}][{label}]:k", str(cell.k or 0)))
            props.append((f"equal_cost[${budget}][{label}]:pass@k", _prop(cell.pass_at_k)))
    if c.target is not None:
        props.extend(reach_properties(c.target, c.reach))
    return props


def reach_properties(target: float, reach: Mapping[str, TargetReach]) -> list[tuple[str, str]]:
    """``target[pass@k>=P][model]:k`` (0: not reached) and ``:cost_per_task_usd`` (``nan``:
    unknown or not reached) per model.
    """
    props: list[tuple[str, str]] = []
    for label, r in reach.items():
        name = f"target[pass@k>={target:g}][{label}]"
        props.append((f"{name}:k", str(r.k or 0)))
        props.append((f"{name}:cost_per_task_usd", _prop(r.cost_per_task_usd)))
    return props
