"""Third-party pytest plugins in sampling mode: pytest-timeout and pytest-randomly (each test
skips where its plugin is not installed; the dev extra installs them).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_passk.unjudged import UNJUDGED_SUMMARY

SLOW_TASKS = """
import pytest_passk as passk

@passk.task(prompt="def slow():\\n", entry_point="slow")
def test_slow(candidate):
    assert candidate() == 1

@passk.task(prompt="def quick():\\n", entry_point="quick")
def test_quick(candidate):
    assert candidate() == 1
"""

SLOW_FAKES = """
def answers(task_id, prompt, index):
    if "slow" in prompt:
        return "    import time\\n    time.sleep(4)\\n    return 1\\n"
    return "    return 1\\n"
"""


@pytest.mark.parametrize("xdist", [False, True], ids=["solo", "xdist"])
def test_a_task_interrupted_by_pytest_timeout_is_listed_and_the_run_incomplete(
    pytester: pytest.Pytester, tmp_path: Path, xdist: bool
) -> None:
    pytest.importorskip("pytest_timeout")
    pytester.makepyfile(test_tasks=SLOW_TASKS, fakes=SLOW_FAKES)
    report = tmp_path / "report.json"
    args = ["--passk=1", "--model=fake:fakes:answers", "--timeout=1", f"--passk-report={report}"]
    result = pytester.runpytest(*args, *(["-n", "2"] if xdist else ["-p", "no:xdist"]))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            UNJUDGED_SUMMARY.format(count=1),
            "  test_tasks.py::test_slow[[]fake:fakes:answers[]]: Failed: Timeout (>1.0s)*",
        ]
    )
    document = json.loads(report.read_text())
    assert document["complete"] is False
    assert [task["task_id"] for task in document["tasks"]] == ["test_tasks.py::test_quick"]
    assert document["unjudged"] == [
        {
            "nodeid": "test_tasks.py::test_slow[fake:fakes:answers]",
            "model": "fake:fakes:answers",
            "reason": "Failed: Timeout (>1.0s) from pytest-timeout.",
        }
    ]
