"""selected@1: the pick uses nothing of the task's tests, and never beats the oracle (pass@n)."""

from __future__ import annotations

import dataclasses
import random

from hypothesis import given
from hypothesis import strategies as st

from pytest_passk.estimate import pass_at_k
from pytest_passk.results import CandidateResult, Outcome
from pytest_passk.selection import (
    Basis,
    Candidate,
    pick,
    pick_sample,
    select_task,
    selected_at_1,
    selected_passed,
)

RECORDS = st.lists(
    st.tuples(
        st.one_of(st.none(), st.sampled_from(["p", "q", "r", "s"])),
        st.one_of(st.none(), st.sampled_from(["B1", "B2", "B3"])),
        st.booleans(),
    ),
    min_size=1,
    max_size=30,
)


@given(RECORDS)
def test_selected_is_one_only_where_a_sample_passes(
    records: list[tuple[str | None, str | None, bool]],
) -> None:
    n, c = len(records), sum(passed for _, _, passed in records)
    selected = selected_at_1(records)
    assert selected is not None
    assert float(selected) <= pass_at_k(n, c, n)  # the oracle bound: 1 only where c >= 1


@given(RECORDS, st.randoms(use_true_random=False))
def test_permuting_the_outcomes_never_moves_the_pick(
    records: list[tuple[str | None, str | None, bool]], rng: random.Random
) -> None:
    candidates = [Candidate(program, behaviour) for program, behaviour, _ in records]
    chosen = pick(candidates)
    assert chosen is not None
    flags = [passed for _, _, passed in records]
    rng.shuffle(flags)
    # The same pick, scored with whatever outcome now sits at its position.
    assert selected_passed(candidates, flags) is flags[chosen.position]
    assert pick(candidates) == chosen


def sample(index: int, program: str, outcome: Outcome, message: str = "") -> CandidateResult:
    return CandidateResult(index, outcome, message, program, program, 0.01 * index)


@given(st.lists(st.sampled_from(list(Outcome)), min_size=6, max_size=6))
def test_a_tasks_verdicts_do_not_reach_the_pick(outcomes: list[Outcome]) -> None:
    programs = [
        "def f(x):\n    return x + 1\n",
        "def f(x):\n    return x - 1\n",
        "def f(x):\n    return x + 1  # again\n",
        "",
        "def f(x):\n    return x - 1\n",
        "def f(x):\n\n    return x + 1\n",
    ]
    judged = [
        sample(i, p, o, f"message {o.value}")
        for i, (p, o) in enumerate(zip(programs, outcomes, strict=True))
    ]
    # "x + 1" appears three times (layout and comments aside): its first sample is the pick,
    # whatever the verdicts, messages and durations say.
    assert pick_sample(judged) == 0
    assert select_task(judged) is (outcomes[0] is Outcome.PASSED)
    tampered = [
        dataclasses.replace(s, duration=9.0, message="assert candidate(1) == 2") for s in judged
    ]
    assert pick_sample(tampered) == 0


def test_the_most_frequent_program_wins_and_ties_go_to_the_earliest() -> None:
    chosen = pick([Candidate("a"), Candidate("b"), Candidate("b")])
    assert chosen is not None and (chosen.position, chosen.group) == (1, 2)
    tie = pick([Candidate("a"), Candidate("b"), Candidate("b"), Candidate("a")])
    assert tie is not None and (tie.position, tie.group, tie.basis) == (0, 2, Basis.PROGRAM)


def test_behaviour_groups_programs_that_agree_on_generated_inputs() -> None:
    # Three different programs that behave alike outvote two copies of one program.
    candidates = [
        Candidate("p1", "B"),
        Candidate("q", "C"),
        Candidate("p2", "B"),
        Candidate("q", "C"),
        Candidate("p3", "B"),
    ]
    chosen = pick(candidates)
    assert chosen is not None and (chosen.position, chosen.group) == (0, 3)
    assert chosen.basis is Basis.BEHAVIOUR
    # Candidates without a behaviour (not run on the inputs) do not vote when others have one.
    mixed = [Candidate("q"), Candidate("q"), Candidate("p", "B")]
    chosen = pick(mixed)
    assert chosen is not None and chosen.position == 2


def test_samples_without_code_are_picked_only_when_none_has_code() -> None:
    chosen = pick([Candidate(None), Candidate(None), Candidate("p")])
    assert chosen is not None and chosen.position == 2
    nothing = pick([Candidate(None), Candidate(None)])
    assert nothing is not None and (nothing.position, nothing.basis) == (0, Basis.NONE)
    assert pick([]) is None
    assert select_task([]) is None


def test_samples_are_taken_in_index_order() -> None:
    judged = [
        sample(3, "def f():\n    return 2\n", Outcome.PASSED),
        sample(1, "def f():\n    return 1\n", Outcome.FAILED),
        sample(2, "def f():\n    return 2\n", Outcome.PASSED),
        sample(0, "def f():\n    return 1\n", Outcome.FAILED),
    ]
    # Two groups of two: the one holding sample 0 came first.
    assert pick_sample(judged) == 0
    assert select_task(judged) is False
