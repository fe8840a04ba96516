"""``--passk-extract``: a replay recording of messy answers scored as given and as meant."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .conftest import write_jsonl

#: Demo/0 (``inc``) and Demo/1 (``double``) answered the ways real models answer.
MESSY = [
    # A clean continuation: the same verdict in both modes.
    {"task_id": "Demo/0", "completion": "    return x + 1\n"},
    # The docstring and body restated without the def line, first line stripped (Mistral-7B).
    {"task_id": "Demo/0", "completion": '"""Return x + 1."""\n    return x + 1'},
    # A chat answer in a fence with prose around it and a wrong example after it.
    {
        "task_id": "Demo/1",
        "completion": "Sure! Here it is:\n\n```python\ndef double(x):\n    return 2 * x\n\n"
        "assert double(2) == 5\n```\n\nThis multiplies by two.",
    },
    # Cut at max_tokens after a correct body.
    {"task_id": "Demo/1", "completion": "    return x * 2\n\n\ndef triple(x):\n    return (x"},
    # No code at all.
    {"task_id": "Demo/1", "completion": "I'm sorry, I can't help with that."},
]


def _run(
    pytester: pytest.Pytester, recording: Path, mode: str | None, *extra: str
) -> tuple[pytest.RunResult, dict[str, Any], list[dict[str, Any]]]:
    report = pytester.path / f"report-{mode}.json"
    samples_out = pytester.path / f"samples-{mode}.jsonl"
    options = [] if mode is None else [f"--passk-extract={mode}"]
    result = pytester.runpytest(
        "--passk=1",
        f"--model=replay:{recording.name}",
        f"--passk-report={report}",
        f"--passk-samples-out={samples_out}",
        "-p",
        "no:randomly",
        *options,
        *extra,
    )
    rows = [json.loads(line) for line in samples_out.read_text().splitlines()]
    return result, json.loads(report.read_text()), rows


def test_none_scores_the_text_as_given_and_auto_as_meant(
    pytester: pytest.Pytester, dataset: Path
) -> None:
    recording = write_jsonl(pytester.path / "messy.jsonl", MESSY)
    plain, plain_report, plain_rows = _run(pytester, recording, "none")
    plain.assert_outcomes(passed=1, failed=1)
    assert [row["passed"] for row in plain_rows] == [True, False, False, False, False]
    assert {row["extraction"] for row in plain_rows} == {"as-is"}
    assert plain_report["models"]["replay:messy.jsonl"]["extraction"] == {"as-is": 5}
    assert "extraction:" not in plain.stdout.str()

    repaired, report, rows = _run(pytester, recording, None)  # auto is the default
    repaired.assert_outcomes(passed=2)
    assert [(row["extraction"], row["passed"]) for row in rows] == [
        ("as-is", True),
        ("body", True),
        ("fenced", True),
        ("truncated", True),
        ("no-code", False),
    ]
    assert rows[4]["outcome"] == "error" and rows[4]["solution"] == ""
    assert rows[2]["completion"] == MESSY[2]["completion"]  # the sample keeps its raw text
    assert "assert double(2) == 5" not in rows[2]["solution"]
    counts = {"as-is": 1, "body": 1, "fenced": 1, "no-code": 1, "truncated": 1}
    assert report["models"]["replay:messy.jsonl"]["extraction"] == counts
    repaired.stdout.fnmatch_lines(
        [
            "replay:messy.jsonl: extraction: 1 body, 1 fenced, 1 no-code, 1 truncated "
            "of 5 samples (repaired; --passk-extract=none runs every answer as given)"
        ]
    )
    # The clean continuation is judged the same either way.
    assert rows[0]["solution"] == plain_rows[0]["solution"]


def test_extraction_counts_travel_under_xdist(pytester: pytest.Pytester, dataset: Path) -> None:
    recording = write_jsonl(pytester.path / "messy.jsonl", MESSY)
    _, report, _ = _run(pytester, recording, "auto", "-n", "2")
    model = report["models"]["replay:messy.jsonl"]
    assert model["extraction"] == {
        "as-is": 1,
        "body": 1,
        "fenced": 1,
        "no-code": 1,
        "truncated": 1,
    }


def test_ini_and_a_bad_mode(pytester: pytest.Pytester, dataset: Path) -> None:
    recording = write_jsonl(pytester.path / "messy.jsonl", MESSY)
    pytester.makeini("[pytest]\npassk_extract = none\n")
    _, report, _ = _run(pytester, recording, None)
    assert report["models"]["replay:messy.jsonl"]["extraction"] == {"as-is": 5}
    bad = pytester.runpytest("--passk=1", f"--model=replay:{recording.name}", "--passk-extract=x")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*--passk-extract='x': unknown extraction mode; choose one of*"])
