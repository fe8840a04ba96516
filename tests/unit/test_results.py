"""Result records survive a JSON round trip unchanged (they travel on xdist reports)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_passk.results import (
    PROGRAM_TEXT_LIMIT,
    PROGRAMS_LISTED,
    CandidateResult,
    Outcome,
    TaskResult,
    empty_counts,
    program_records,
)


def sample(index: int, outcome: Outcome = Outcome.PASSED) -> CandidateResult:
    return CandidateResult(
        index, outcome, "msg ✓", "  return 1\n", "def f():\n  return 1\n", 0.125, 3, 4
    )


def task_result(**changes: object) -> TaskResult:
    base = TaskResult(
        task_id="HumanEval/0",
        model="gpt-4o",
        spec="openai:gpt-4o",
        nodeid="passk_h.jsonl::HumanEval/0[gpt-4o]",
        n=2,
        n_requested=3,
        c=1,
        outcomes={"passed": 1, "failed": 0, "error": 1, "timeout": 0},
        pass_at_k={1: 0.5, 2: 1.0},
        distinct=2,
        prompt_tokens=10,
        completion_tokens=20,
        cost_usd=0.001,
        duration=1.5,
        samples=(sample(0), sample(1, Outcome.ERROR)),
        first_failure_detail="Traceback ...",
    )
    fields = {name: getattr(base, name) for name in TaskResult.__dataclass_fields__}
    fields.update(changes)
    return TaskResult(**fields)


def test_empty_counts_has_every_outcome_in_report_order() -> None:
    assert list(empty_counts()) == ["passed", "failed", "error", "timeout"]
    assert set(empty_counts().values()) == {0}


def test_task_result_round_trips_through_json_text() -> None:
    original = task_result()
    text = json.dumps(original.to_json())
    assert TaskResult.from_json(json.loads(text)) == original


def test_unknown_cost_round_trips_as_null() -> None:
    original = task_result(cost_usd=None)
    data = json.loads(json.dumps(original.to_json()))
    assert data["cost_usd"] is None
    assert TaskResult.from_json(data) == original


def test_without_samples() -> None:
    data = task_result().to_json(with_samples=False)
    assert "samples" not in data
    programs, omitted = task_result().programs_listed
    assert TaskResult.from_json(data) == task_result(samples=(), programs=programs)
    assert TaskResult.from_json(data).programs_listed == (programs, omitted)


def test_candidate_round_trip_and_outcome_values() -> None:
    for outcome in Outcome:
        original = sample(7, outcome)
        data = json.loads(json.dumps(original.to_json()))
        assert data["outcome"] == outcome.value
        assert CandidateResult.from_json(data) == original


def test_optional_fields_default_when_absent() -> None:
    data = task_result().to_json()
    for key in ("distinct", "tokens", "cost_usd", "duration", "samples", "first_failure_detail"):
        del data[key]
    restored = TaskResult.from_json(data)
    assert (restored.distinct, restored.prompt_tokens, restored.cost_usd) == (0, 0, None)
    assert restored.samples == () and restored.first_failure_detail == ""


@settings(max_examples=50, deadline=None)
@given(
    st.text(),
    st.floats(0.0, 1.0),
    st.integers(0, 10**6),
    st.one_of(st.none(), st.floats(0, 100)),
    st.text(),
)
def test_round_trip_of_arbitrary_values(
    task_id: str, value: float, tokens: int, cost: float | None, detail: str
) -> None:
    original = task_result(
        task_id=task_id,
        pass_at_k={1: value},
        prompt_tokens=tokens,
        cost_usd=cost,
        first_failure_detail=detail,
    )
    assert TaskResult.from_json(json.loads(json.dumps(original.to_json()))) == original


def _candidate(index: int, program: str, outcome: Outcome, message: str = "") -> CandidateResult:
    return CandidateResult(index, outcome, message, program, program, 0.0, extraction="fence")


def test_program_records_group_by_text_most_frequent_first() -> None:
    samples = (
        _candidate(0, "a", Outcome.FAILED, "AssertionError: 1 != 2\n  more"),
        _candidate(1, "b", Outcome.PASSED),
        _candidate(2, "b", Outcome.PASSED),
        _candidate(3, "", Outcome.ERROR, "no code found"),
    )
    records = program_records(samples)
    assert [(r.program, r.count, r.outcome) for r in records] == [
        ("b", 2, "passed"),
        ("a", 1, "failed"),
        ("", 1, "error"),
    ]
    assert records[1].message == "AssertionError: 1 != 2"
    assert records[0].extraction == "fence"


def test_program_records_cap_text_and_count() -> None:
    long = "x" * (PROGRAM_TEXT_LIMIT + 10)
    samples = tuple(_candidate(i, f"p{i}", Outcome.FAILED) for i in range(PROGRAMS_LISTED + 5))
    result = task_result(samples=(_candidate(0, long, Outcome.FAILED), *samples))
    listed, omitted = result.programs_listed
    assert len(listed) == PROGRAMS_LISTED
    assert omitted == 6
    assert len(listed[0].program) == PROGRAM_TEXT_LIMIT
    assert listed[0].truncated
    data = json.loads(json.dumps(result.to_json(with_samples=False)))
    assert data["programs_omitted"] == 6
    assert TaskResult.from_json(data).programs_listed == (listed, omitted)
