from __future__ import annotations

import json

import pytest

from pytest_passk.sandbox.pool import IsolationLevel

pytest_plugins = ["pytester"]

TASKS = """
import pytest_passk as passk

@passk.task(prompt="def add(a, b):\\n", entry_point="add",
            reference="def add(a, b):\\n    return a + b\\n")
def test_add(candidate):
    assert candidate(2, 3) == 5
"""


def test_header_and_report_state_isolation_and_overhead(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=TASKS)
    samples = pytester.path / "samples.jsonl"
    samples.write_text(
        "\n".join(
            json.dumps({"task_id": "test_tasks.py::test_add", "completion": c})
            for c in [
                "    return a + b\n",
                "    return a + b\n",
                "    while True: pass\n",
                "    import os; os._exit(0)\n",
            ]
        )
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{samples}", "--passk-timeout=3", "--passk-report=r.json",
        "-p", "no:cacheprovider",
    )  # fmt: skip
    result.assert_outcomes(passed=1)
    result.stdout.re_match_lines([r"passk: isolation=\w+ \(.*\), overhead=[\d.]+ ms per candidate"])
    report = json.loads((pytester.path / "r.json").read_text())
    sandbox = report["meta"]["sandbox"] if "meta" in report else report["sandbox"]
    assert sandbox["overhead_ms"] > 0
    assert sandbox["executed"] == 3  # the duplicate ran once
    assert sandbox["timeouts"] == 1
    (task,) = report["tasks"]
    assert task["outcomes"] == {"passed": 2, "failed": 0, "error": 1, "timeout": 1}


def test_required_isolation_level_is_checked(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=TASKS)
    result = pytester.runpytest("--passk-isolation=process", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["passk: isolation=process*"])


def test_unknown_isolation_level_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=TASKS)
    result = pytester.runpytest("--passk-isolation=fortress", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--passk-isolation='fortress'*auto, process, namespaces*"])


def test_levels_are_ordered() -> None:
    assert IsolationLevel.PROCESS < IsolationLevel.NAMESPACES < IsolationLevel.STRICT
    assert IsolationLevel.parse("auto") is None
    with pytest.raises(ValueError):
        IsolationLevel.parse("fortress")


FUNCTION_TASKS = """
import pytest_passk as passk
from hypothesis import given, strategies as st

def helper(a, b):
    return a + b

@passk.task(prompt="def add(a, b):\\n", entry_point="add")
@given(st.integers(), st.integers())
def test_add_property(candidate, a, b):
    assert candidate(a, b) == helper(a, b)

@passk.task(prompt="def area(w, h):\\n")
def test_module_namespace(candidate):
    assert candidate.area(2, 3) == 6
    assert candidate.UNIT == "m2"

@passk.task(prompt="def apply(f, x):\\n", entry_point="apply")
def test_callable_argument(candidate):
    assert candidate(lambda v: v + 1, 1) == 2
"""


def test_decorated_tasks_are_judged_outside_the_candidate(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=FUNCTION_TASKS)
    rows = [
        ("test_add_property", "    return a + b\n"),
        (
            "test_add_property",
            "    class E:\n        def __eq__(s, o): return True\n    return E()\n",
        ),
        ("test_add_property", "    return a - b\n"),
        ("test_module_namespace", "    return w * h\nUNIT = 'm2'\n"),
        (
            "test_module_namespace",
            "    return w * h\nclass U(str):\n    def __eq__(s, o): return True\nUNIT = U('ft')\n",
        ),
        ("test_callable_argument", "    return f(x)\n"),
    ]
    samples = pytester.path / "samples.jsonl"
    samples.write_text(
        "\n".join(
            json.dumps({"task_id": f"test_tasks.py::{task}", "completion": completion})
            for task, completion in rows
        )
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{samples}", "--passk-report=r.json", "-p", "no:cacheprovider"
    )
    report = json.loads((pytester.path / "r.json").read_text())
    outcomes = {t["task_id"].split("::")[1]: t["outcomes"] for t in report["tasks"]}
    assert outcomes["test_add_property"]["passed"] == 1  # the always-equal object did not pass
    assert outcomes["test_module_namespace"]["passed"] == 1  # the lying str subclass did not
    # The test's lambda crosses as a callback the candidate calls back into the judge.
    assert outcomes["test_callable_argument"] == {
        "passed": 1,
        "failed": 0,
        "error": 0,
        "timeout": 0,
    }
    result.assert_outcomes(passed=3)
