# ruff: noqa: E501  (task sources and sample rows are kept one a line)
"""Stronger tests end to end: differential tasks, ``--passk-augment`` and EvalPlus files, with
their figures in the terminal, JUnit and the JSON report, identical under pytest-xdist.
"""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from .conftest import write_jsonl

DIFFERENTIAL_TASKS = """
from hypothesis import strategies as st

import pytest_passk as passk


def clamp(value: int, low: int, high: int) -> int:
    return max(low, min(value, high))


@passk.task(
    prompt="def clamp(value: int, low: int, high: int) -> int:\\n",
    entry_point="clamp",
    reference=clamp,
    inputs=st.tuples(st.integers(-20, 20), st.integers(-10, 0), st.integers(0, 10)),
    examples=40,
)
def test_clamp(candidate):
    assert candidate(5, 0, 10) == 5


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else 0.0


@passk.task(prompt="def mean(xs):\\n", entry_point="mean", reference=mean, inputs="auto",
            compare=passk.approx(rel=1e-9, abs=1e-9), examples=30)
def test_mean(candidate):
    assert candidate([1.0, 3.0]) == 2.0
"""

DIFFERENTIAL_SAMPLES: list[dict[str, Any]] = [
    {
        "task_id": "test_diff.py::test_clamp",
        "solution": "def clamp(v, lo, hi):\n    return max(lo, min(v, hi))\n",
    },
    {
        "task_id": "test_diff.py::test_clamp",
        "solution": "def clamp(v, lo, hi):\n    return min(v, hi)\n",
    },
    {"task_id": "test_diff.py::test_clamp", "solution": "def clamp(v, lo, hi):\n    return 5\n"},
    {
        "task_id": "test_diff.py::test_mean",
        "solution": "def mean(xs):\n    return sum(xs) / len(xs) if xs else 0.0\n",
    },
    {
        "task_id": "test_diff.py::test_mean",
        "solution": "def mean(xs):\n    return sum(xs) / max(len(xs), 1)\n",
    },
    {
        "task_id": "test_diff.py::test_mean",
        "solution": "def mean(xs):\n    return (xs[0] + xs[-1]) / 2\n",
    },
]


def _run(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, Any], Path]:
    report, junit = pytester.path / "report.json", pytester.path / "junit.xml"
    result = pytester.runpytest(
        "-p", "no:randomly", f"--passk-report={report}", f"--junitxml={junit}",
        f"--passk-samples-out={pytester.path / 'samples_out.jsonl'}", *args,
    )  # fmt: skip
    document = json.loads(report.read_text()) if report.exists() else {}
    return result, document, junit


def _stable(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    for key in ("created", "sandbox"):
        document.pop(key, None)
    for task in document["tasks"]:
        task.pop("duration", None)
    return document


def test_differential_tasks_report_original_and_stronger_pass_at_k(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_diff=DIFFERENTIAL_TASKS)
    write_jsonl(pytester.path / "samples.jsonl", DIFFERENTIAL_SAMPLES)
    result, document, junit = _run(pytester, "--passk=1,2", "--model=replay:samples.jsonl")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        ["*stronger tests on 2 task(s): pass@1 1.0000 -> 0.5000, pass@2 1.0000 -> 0.8333; "
         "false positives 3/6 (50.0%)*"]
    )  # fmt: skip
    model = next(iter(document["models"].values()))
    assert model["pass_at_k"]["1"] == pytest.approx(0.5)  # the stronger tests decide
    assert model["stronger"]["pass_at_k_original"] == {"1": 1.0, "2": 1.0}
    assert model["stronger"]["false_positives"] == 3
    clamp = next(t for t in document["tasks"] if t["task_id"].endswith("test_clamp"))
    assert clamp["c"] == 1 and clamp["stronger"]["c_original"] == 3
    rows = [
        json.loads(line) for line in (pytester.path / "samples_out.jsonl").read_text().splitlines()
    ]
    assert all(row["original_outcome"] == "passed" for row in rows)
    assert all(len(row["behaviour"]) == 16 for row in rows)
    assert len({row["behaviour"] for row in rows if row["task_id"].endswith("test_clamp")}) == 3
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    names = {p.get("name"): p.get("value") for p in suite.findall("properties/property")}
    assert names["pass@1[replay:samples.jsonl][original]"] == "1"
    assert float(names["false_positive_rate[replay:samples.jsonl]"] or "nan") == pytest.approx(0.5)
    case_props = {
        p.get("name"): p.get("value") for p in suite.findall("testcase/properties/property")
    }
    assert "passk_c_original" in case_props and "pass@1[original]" in case_props


def test_results_are_identical_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_diff=DIFFERENTIAL_TASKS)
    write_jsonl(pytester.path / "samples.jsonl", DIFFERENTIAL_SAMPLES)
    solo, solo_doc, _ = _run(pytester, "--passk=1,2", "--model=replay:samples.jsonl")
    rows_solo = (pytester.path / "samples_out.jsonl").read_text()
    shutil.rmtree(pytester.path / ".passk", ignore_errors=True)
    spread, spread_doc, _ = _run(pytester, "--passk=1,2", "--model=replay:samples.jsonl", "-n", "2")
    solo.assert_outcomes(passed=2)
    spread.assert_outcomes(passed=2)
    assert _stable(solo_doc) == _stable(spread_doc)
    strip = [
        {k: v for k, v in json.loads(x).items() if k != "duration"} for x in rows_solo.splitlines()
    ]
    spread_rows = (pytester.path / "samples_out.jsonl").read_text().splitlines()
    assert strip == [
        {k: v for k, v in json.loads(x).items() if k != "duration"} for x in spread_rows
    ]


def test_augment_catches_a_candidate_right_only_on_the_tasks_own_inputs(
    pytester: pytest.Pytester,
) -> None:
    rows = [{
        "task_id": "Demo/0", "prompt": 'def inc(x: int) -> int:\n    """Return x + 1."""\n',
        "entry_point": "inc", "canonical_solution": "    return x + 1\n",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n",
    }]  # fmt: skip
    write_jsonl(pytester.path / "passk_demo.jsonl", rows)
    write_jsonl(pytester.path / "samples.jsonl", [
        {"task_id": "Demo/0", "completion": "    return x + 1\n"},
        {"task_id": "Demo/0", "completion": "    return {1: 2, -1: 0}[x]\n"},
    ])  # fmt: skip
    _, plain_doc, _ = _run(pytester, "--passk=1", "--model=replay:samples.jsonl")
    assert plain_doc["tasks"][0]["c"] == 2 and "stronger" not in plain_doc["tasks"][0]
    result, document, _ = _run(
        pytester, "--passk=1", "--model=replay:samples.jsonl", "--passk-augment", "-v"
    )
    result.assert_outcomes(passed=1)
    task = document["tasks"][0]
    assert task["c"] == 1 and task["stronger"]["c_original"] == 2
    out = [
        json.loads(line) for line in (pytester.path / "samples_out.jsonl").read_text().splitlines()
    ]
    assert out[1]["outcome"] == "failed" and out[1]["original_outcome"] == "passed"
    assert "differs from the reference on inc(" in out[1]["result"]
    assert "got raises KeyError" in out[1]["result"]


def test_check_mode_runs_the_reference_on_its_own_inputs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_diff=DIFFERENTIAL_TASKS)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_auto_inputs_that_cannot_be_derived_fail_the_item_naming_the_task(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_bad='''
import pytest_passk as passk

def f(x):
    return x

@passk.task(prompt="def f(x):\\n", entry_point="f", reference=f, inputs="auto")
def test_f(candidate):
    pass
''')  # fmt: skip
    write_jsonl(
        pytester.path / "samples.jsonl",
        [{"task_id": "test_bad.py::test_f", "solution": "def f(x):\n    return x\n"}],
    )
    result = pytester.runpytest("-p", "no:randomly", "--passk=1", "--model=replay:samples.jsonl")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*test_bad.py:6*cannot derive a strategy for parameter 'x' of f*"])


RAISING_STRATEGY = """
from hypothesis import strategies as st

import pytest_passk as passk

def f(x):
    return x

@passk.task(prompt="def f(x):\\n", entry_point="f", reference=f,
            inputs=st.tuples(st.integers()).map(lambda t: (1 // 0,)))
def test_f(candidate):
    pass

@passk.task(prompt="def g(x):\\n", entry_point="g", reference="def g(x):\\n    return x\\n",
            inputs=st.tuples(st.integers()))
def test_g(candidate):
    pass
"""


def _raising_strategy_run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_bad=RAISING_STRATEGY)
    write_jsonl(
        pytester.path / "samples.jsonl",
        [
            {"task_id": "test_bad.py::test_f", "solution": "def f(x):\n    return x\n"},
            {"task_id": "test_bad.py::test_g", "solution": "def g(x):\n    return x\n"},
        ],
    )
    return pytester.runpytest("-p", "no:randomly", *args)


def test_a_strategy_that_raises_fails_its_item_not_the_session(pytester: pytest.Pytester) -> None:
    """A bug in a task's own ``inputs=`` strategy is that task's error: it ended the whole
    session in an INTERNALERROR, and no other task ran.
    """
    result = _raising_strategy_run(pytester, "--passk=1", "--model=replay:samples.jsonl")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_bad.py:*inputs= raised ZeroDivisionError while drawing*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


def test_check_mode_a_strategy_that_raises_fails_its_item_not_the_session(
    pytester: pytest.Pytester,
) -> None:
    result = _raising_strategy_run(pytester)
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1, failed=1)


def test_evalplus_file_is_collected_and_judged_on_plus_inputs(pytester: pytest.Pytester) -> None:
    source = Path(__file__).parents[1] / "data" / "evalplus"
    shutil.copy(source / "mbppplus_slice.jsonl", pytester.path / "passk_mbpp.jsonl")
    shutil.copy(source / "mbppplus_samples.jsonl", pytester.path / "samples.jsonl")
    result, document, _ = _run(pytester, "--passk=1", "--model=replay:samples.jsonl")
    result.assert_outcomes(passed=2)
    model = next(iter(document["models"].values()))
    assert model["stronger"] == {
        "tasks": 2, "pass_at_k_original": {"1": 1.0}, "pass_at_k_stronger": {"1": 0.5},
        "passed_original": 4, "false_positives": 2, "false_positive_rate": 0.5,
    }  # fmt: skip


EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_the_differential_examples_catch_every_wrong_sample(pytester: pytest.Pytester) -> None:
    """examples/test_differential.py: every hand-written wrong sample passes the test body and
    fails the generated inputs; the correct ones pass both.
    """
    shutil.copy(EXAMPLES / "test_differential.py", pytester.path / "test_differential.py")
    rows = [
        json.loads(line)
        for line in (EXAMPLES / "differential_samples.jsonl").read_text().splitlines()
    ]
    for row in rows:
        row["task_id"] = row["task_id"].removeprefix("examples/")
    write_jsonl(pytester.path / "samples.jsonl", rows)
    result, document, _ = _run(pytester, "--passk=1", "--model=replay:samples.jsonl")
    result.assert_outcomes(passed=3)
    model = next(iter(document["models"].values()))
    assert model["stronger"]["passed_original"] == len(rows)
    assert model["stronger"]["false_positives"] == 7
    out = [
        json.loads(line) for line in (pytester.path / "samples_out.jsonl").read_text().splitlines()
    ]
    messages = [row["result"] for row in out if row["outcome"] != "passed"]
    assert any("changed its arguments in place" in m for m in messages)
    assert any("expected raises ValueError, got raises IndexError" in m for m in messages)
