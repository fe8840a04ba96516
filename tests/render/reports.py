"""Hand-made ``pytest-passk/report/v1`` documents for the rendering tests, with and without the
comparison, selection and cost fields another part of the plugin adds.
"""

from __future__ import annotations

import copy
from typing import Any

from pytest_passk.estimate import aggregate, pass_at_k

#: Each would mark the page (``data-pwned`` on <html>) if it ever ran.
HOSTILE_PROGRAM = (
    "def f():\n    return '</script><script>"
    'document.documentElement.setAttribute("data-pwned", "script")</script>\'\n'
)
HOSTILE_MESSAGE = (
    'AssertionError: <img src=x onerror="document.documentElement.setAttribute('
    "'data-pwned', 'img')\"> &amp; more\nsecond line"
)
HOSTILE_TASK = 'Task/<b id="evil">7</b>'


def _task(task_id: str, model: str, n: int, c: int, ks: list[int]) -> dict[str, Any]:
    passed = {"program": f"def {model.replace('-', '_')}_ok():\n    return 1\n"}
    failed = {"program": HOSTILE_PROGRAM if task_id == HOSTILE_TASK else "def f():\n    pass\n"}
    programs = []
    if c:
        programs.append(passed | {"count": c, "outcome": "passed", "message": ""})
    if n - c:
        message = HOSTILE_MESSAGE.splitlines()[0] if task_id == HOSTILE_TASK else "assert 1 == 2"
        programs.append(failed | {"count": n - c, "outcome": "failed", "message": message})
    for record in programs:
        record |= {"extraction": "fence", "truncated": False}
    return {
        "task_id": task_id,
        "model": model,
        "nodeid": f"passk_x.jsonl::{task_id}[{model}]",
        "n": n,
        "c": c,
        "pass_at_k": {str(k): pass_at_k(n, c, k) for k in ks if n >= k},
        "outcomes": {"passed": c, "failed": n - c, "error": 0, "timeout": 0},
        "n_requested": n,
        "distinct_programs": len(programs),
        "tokens": {"prompt": 10 * n, "completion": 20 * n},
        "duration": 0.1,
        "programs": programs,
        "programs_omitted": 0,
    }


#: (task, c of small, c of large) with n = 10 for small and 5 for large.
SHAPES = [
    ("HumanEval/0", 9, 5),
    ("HumanEval/1", 0, 3),
    ("HumanEval/2", 4, 0),
    ("HumanEval/3", 0, 0),
    ("HumanEval/4", 1, 5),
    (HOSTILE_TASK, 2, 1),
]


def report(models: tuple[str, ...] = ("small", "large"), *, extras: bool = True) -> dict[str, Any]:
    """Two models (or one) on six tasks; ``extras`` adds the comparison/selection/cost fields."""
    ks = [1, 5]
    n_of = {"small": 10, "large": 5}
    tasks = [
        _task(task_id, model, n_of[model], c_small if model == "small" else c_large, ks)
        for model in models
        for task_id, c_small, c_large in SHAPES
    ]
    tasks.sort(key=lambda t: (t["model"], t["task_id"]))
    entries: dict[str, Any] = {}
    for model in models:
        mine = sorted((t for t in tasks if t["model"] == model), key=lambda t: t["task_id"])
        estimates = aggregate([(t["n"], t["c"]) for t in mine], ks)
        samples = sum(t["n"] for t in mine)
        entries[model] = {
            "spec": f"replay:{model}.jsonl",
            "n": n_of[model],
            "tasks": len(mine),
            "pass_at_k": {str(k): e.value for k, e in estimates.items()},
            "ci95": {str(k): [e.low, e.high] for k, e in estimates.items()},
            "outcomes": {"passed": sum(t["c"] for t in mine)},
            "tokens": {"prompt": 1, "completion": 1},
            "cost_usd": None,
            "cost_per_solved_task_usd": None,
            "n_min": n_of[model],
            "samples": samples,
            "distinct_programs": samples,
            "tasks_scored": {str(k): e.tasks for k, e in estimates.items()},
            "tasks_excluded": {str(k): e.excluded for k, e in estimates.items()},
            "tasks_short": 0,
            "tasks_without_samples": 0,
            "extraction": {"fence": samples},
        }
    document: dict[str, Any] = {
        "schema": "pytest-passk/report/v1",
        "k": ks,
        "models": entries,
        "tasks": tasks,
        "mode": "sampling",
        "complete": True,
        "created": "2026-11-30T12:00:00+00:00",
        "version": "0.1.0",
    }
    if extras and set(models) == {"small", "large"}:
        document = with_extras(document)
    return document


def with_extras(document: dict[str, Any]) -> dict[str, Any]:
    """The agreed additions: selected@1, cost per sample, assumptions and a comparison."""
    document = copy.deepcopy(document)
    document["models"]["small"] |= {"selected_at_1": 0.5, "cost_per_sample_usd": 0.0001}
    document["models"]["large"] |= {"selected_at_1": 0.4, "cost_per_sample_usd": 0.002}
    document["assumptions"] = {"gpu_hour_usd": 2.5, "cpu_hour_usd": 0.05}
    document["comparison"] = {
        "baseline": "small",
        "shared_tasks": 6,
        "bootstrap_resamples": 10000,
        "models": {
            "large": {
                "shared_tasks": 6,
                "pass_at_k_diff": {
                    "1": {"diff": 0.05, "ci95": [-0.1, 0.2]},
                    "5": {"diff": -0.1, "ci95": [-0.3, 0.1]},
                },
                "only_model_solved": 1,
                "only_baseline_solved": 1,
            }
        },
        "equal_cost": [
            {
                "budget_usd": 0.002,
                "source": "one sample of large",
                "models": {
                    "large": {"k": 1, "pass_at_k": 0.47},
                    "small": {"k": 20, "pass_at_k": None},
                },
            }
        ],
        "target": {
            "pass_at_k": 0.9,
            "models": {"large": {"k": None, "cost_per_task_usd": None}},
        },
    }
    return document
