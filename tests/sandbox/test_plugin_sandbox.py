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
