"""Third-party pytest plugins in sampling mode: pytest-timeout, pytest-html and pytest-randomly
(each test skips where its plugin is not installed; the dev extra installs pytest-timeout and
pytest-html).
"""

from __future__ import annotations

import html
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.pytest_html_hooks import SUMMARY_TITLE
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
    # pytest-timeout at 3 s stops the slow task long before its candidate's own limit (30 s);
    # the quick one needs far less than 3 s, even under load.
    args = ["--passk=1", "--model=fake:fakes:answers", "--timeout=3", "--passk-timeout=30"]
    args += [f"--passk-report={report}", *(["-n", "2"] if xdist else ["-p", "no:xdist"])]
    result = pytester.runpytest(*args)
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            UNJUDGED_SUMMARY.format(count=1),
            "  test_tasks.py::test_slow[[]fake:fakes:answers[]]: Failed: Timeout (>3.0s)*",
        ]
    )
    document = json.loads(report.read_text())
    assert document["complete"] is False
    assert [task["task_id"] for task in document["tasks"]] == ["test_tasks.py::test_quick"]
    assert document["unjudged"] == [
        {
            "nodeid": "test_tasks.py::test_slow[fake:fakes:answers]",
            "model": "fake:fakes:answers",
            "reason": "Failed: Timeout (>3.0s) from pytest-timeout.",
        }
    ]


def html_data(page: str) -> dict[str, Any]:
    """The test data pytest-html 4 embeds in its page."""
    blob = re.search(r'data-jsonblob="([^"]*)"', page)
    assert blob is not None
    data: dict[str, Any] = json.loads(html.unescape(blob.group(1)))
    return data


@pytest.mark.parametrize("xdist", [False, True], ids=["solo", "xdist"])
def test_pytest_html_rows_show_c_n_pass_at_k_and_the_first_failure(
    pytester: pytest.Pytester, dataset: Path, samples: Path, xdist: bool
) -> None:
    pytest.importorskip("pytest_html")
    page = pytester.path / "page.html"
    args = ["--passk=1,2", f"--model=replay:{samples}", f"--html={page}", "-p", "no:randomly"]
    result = pytester.runpytest(*args, *(["-n", "2"] if xdist else []))
    result.assert_outcomes(passed=1, failed=1)
    text = page.read_text()
    for column in ("c/n", "pass@1", "pass@2"):
        assert f">{column}</th>" in text
    tests = html_data(text)["tests"]
    passed, failed = (tests[f"passk_demo.jsonl::Demo/{i}[replay:{samples}]"][0] for i in (0, 1))
    cells = passed["resultsTableRow"]
    assert cells[2:5] == [
        '<td class="passk-cn">2/4</td>',
        '<td class="passk-pass-at-k">0.500</td>',
        '<td class="passk-pass-at-k">0.833</td>',
    ]
    assert failed["resultsTableRow"][2] == '<td class="passk-cn">0/4</td>'
    # The first failing candidate, also for the item that passed its criterion.
    (detail,) = [extra["content"] for extra in passed["extras"]]
    assert "first failing candidate: sample 1 (failed)" in detail
    (detail,) = [extra["content"] for extra in failed["extras"]]
    assert "first failing candidate: sample 0 (failed)" in detail
    assert f"<h2>{SUMMARY_TITLE}</h2>" in text and "pass@2 [95% CI]" in text


def test_without_pytest_html_nothing_is_registered(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makeconftest(
        """
def pytest_collection_finish(session):
    print("HTML HOOKS", session.config.pluginmanager.has_plugin("passk-pytest-html"))
"""
    )
    result = pytester.runpytest("--passk=1", f"--model=replay:{samples}", "-p", "no:html", "-s")
    result.stdout.fnmatch_lines(["HTML HOOKS False"])


FIGURES = ("task_id", "model", "n", "c", "pass_at_k", "outcomes")


def test_pytest_randomly_changes_the_order_not_the_figures(
    pytester: pytest.Pytester, dataset: Path, samples: Path, tmp_path: Path
) -> None:
    try:  # installed as a distribution, so its entry point loads it (not a leftover directory)
        metadata.distribution("pytest-randomly")
    except metadata.PackageNotFoundError:
        pytest.skip("pytest-randomly is not installed")
    # Imported here first: pytester drops the modules an in-process run imported, and numpy
    # (which pytest-randomly imports) refuses to load twice in one process.
    pytest.importorskip("pytest_randomly")
    documents = []
    for name, order in (("shuffled", "-p randomly --randomly-seed=3"), ("plain", "-p no:randomly")):
        report = tmp_path / f"{name}.json"
        args = ["--passk=1,2", f"--model=replay:{samples}", f"--passk-report={report}"]
        pytester.runpytest(*args, *order.split())
        document = json.loads(report.read_text())
        tasks = sorted(
            ({key: task[key] for key in FIGURES} for task in document["tasks"]),
            key=lambda task: str(task["task_id"]),
        )
        documents.append((document["models"], tasks))
    shuffled, plain = documents
    assert shuffled == plain and len(plain[1]) == 2
