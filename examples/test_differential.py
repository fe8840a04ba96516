"""Differential tasks: every candidate is called on the same generated inputs and must agree with
the reference, besides passing the test body.

    pytest --passk=1,5 --model=replay:examples/differential_samples.jsonl \
        examples/test_differential.py -v

``differential_samples.jsonl`` holds **synthetic** samples written by hand, not drawn from any
model: for each task a correct solution and subtly wrong ones that pass the test body (an
off-by-one, a flipped comparison, a candidate right only on the test's own inputs, one that
sorts its input in place, one that raises another exception). The summary then shows pass@k on
the test bodies alone, pass@k with the generated inputs, and the false positives.
"""

from __future__ import annotations

from hypothesis import strategies as st

import pytest_passk as passk


def clamp(value: int, low: int, high: int) -> int:
    """Limit value to low..high (low <= high)."""
    return max(low, min(value, high))


def median(values: list[float]) -> float:
    """The median of a non-empty list; ValueError on an empty one."""
    if not values:
        raise ValueError("median of an empty list")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def run_lengths(text: str) -> list[tuple[str, int]]:
    """Run-length encoding: ("aab") -> [("a", 2), ("b", 1)]."""
    runs: list[tuple[str, int]] = []
    for char in text:
        if runs and runs[-1][0] == char:
            runs[-1] = (char, runs[-1][1] + 1)
        else:
            runs.append((char, 1))
    return runs


@passk.task(
    entry_point="clamp",
    reference=clamp,
    inputs=st.integers(-50, 50).flatmap(
        lambda low: st.tuples(st.integers(-100, 100), st.just(low), st.integers(low, 60))
    ),
)
def test_clamp(candidate):
    '''
    def clamp(value: int, low: int, high: int) -> int:
        """Limit value to the range low..high (low <= high)."""
    '''
    assert candidate(5, 0, 10) == 5
    assert candidate(-3, 0, 10) == 0


@passk.task(
    entry_point="median",
    reference=median,
    inputs=st.tuples(st.lists(st.floats(-1e6, 1e6), max_size=9)),
    compare=passk.approx(rel=1e-9, abs=1e-9),
    examples=60,
)
def test_median(candidate):
    '''
    def median(values: list[float]) -> float:
        """The median of values; raise ValueError when values is empty."""
    '''
    assert candidate([3.0, 1.0, 2.0]) == 2.0


@passk.task(entry_point="run_lengths", reference=run_lengths, inputs="auto", examples=50)
def test_run_lengths(candidate):
    '''
    def run_lengths(text: str) -> list[tuple[str, int]]:
        """Run-length encoding of text: "aab" -> [("a", 2), ("b", 1)]."""
    '''
    assert candidate("aab") == [("a", 2), ("b", 1)]
