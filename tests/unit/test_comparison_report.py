"""The comparison's terminal lines, JSON and JUnit properties, for what the plugin test lacks."""

from __future__ import annotations

import json

from pytest_passk.comparison import ModelRun, compare
from pytest_passk.comparison_report import (
    NO_TASK_EVERYWHERE,
    comparison_json,
    comparison_lines,
    comparison_properties,
)


def test_unknown_costs_read_as_unknown_everywhere() -> None:
    runs = [
        ModelRun("a", {"T/0": (4, 4), "T/1": (4, 0)}, None),
        ModelRun("b", {"T/0": (4, 1), "T/1": (4, 1)}, None),
    ]
    comparison = compare(runs, "a", (1, 8), target=0.5)
    assert comparison is not None
    lines = comparison_lines(comparison)
    assert "cost per sample: a unknown, b unknown" in lines
    assert "equal cost: no model's cost per sample is known and no --passk-budget given" in lines
    assert lines[-1] == "to reach pass@k >= 0.5: a k=1 (cost unknown); b k=2 (cost unknown)"
    # k = 8 is beyond every task's n: undefined, shown as n/a, null in JSON, nan in JUnit.
    assert any(line.split()[:2] == ["b", "8"] and line.count("n/a") == 3 for line in lines)
    document = json.loads(json.dumps(comparison_json(comparison), allow_nan=False))
    assert document["equal_cost"] == []
    assert document["models"]["b"]["pass_at_k_diff"]["8"]["diff"] is None
    assert document["target"]["models"]["b"] == {
        "k": 2,
        "cost_per_task_usd": None,
        "pass_at_k_at_k": 0.5,
        "n": 4,
    }
    props = dict(comparison_properties(comparison))
    assert props["pass@8[b]-pass@8[a]"] == "nan"
    assert props["target[pass@k>=0.5][b]:cost_per_task_usd"] == "nan"
    assert props["only_solved[b]-vs-[a]"] == "1"


def test_no_task_every_model_ran_is_said_not_left_blank() -> None:
    """Each model shares tasks with the baseline, but no task is shared by all three: the
    equal-cost rows cannot be drawn, and the section says why instead of ending silently.
    """
    runs = [
        ModelRun("a", {"T/0": (4, 4), "T/1": (4, 0)}, 0.01),
        ModelRun("b", {"T/0": (4, 1)}, 0.001),
        ModelRun("c", {"T/1": (4, 2)}, 0.002),
    ]
    comparison = compare(runs, "a", (1,), budgets=(0.02,), target=0.5)
    assert comparison is not None and comparison.shared_tasks == 0
    assert comparison.equal_cost == () and not comparison.reach
    assert comparison_lines(comparison)[-1] == NO_TASK_EVERYWHERE
