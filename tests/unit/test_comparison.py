"""The comparison: paired differences against a direct computation, equal cost by hand."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_passk.comparison import (
    USER_BUDGET,
    Afford,
    ModelRun,
    at_budget,
    compare,
    mean_pass_at_k,
    paired_difference,
    reach_target,
    runs_from_results,
)
from pytest_passk.estimate import BOOTSTRAP_SEED, bootstrap_interval, pass_at_k, summarise_models
from pytest_passk.results import TaskResult


def direct_paired_interval(
    model: list[float], baseline: list[float], resamples: int, seed: int
) -> tuple[float, float]:
    """Resample task indices with replacement; score both models on the same resample."""
    rng = random.Random(seed)
    size = len(model)
    diffs = []
    for _ in range(resamples):
        picked = rng.choices(range(size), k=size)
        mean_model = sum(model[i] for i in picked) / size
        mean_base = sum(baseline[i] for i in picked) / size
        diffs.append(mean_model - mean_base)
    diffs.sort()
    return diffs[math.floor(0.025 * (resamples - 1))], diffs[math.ceil(0.975 * (resamples - 1))]


def random_counts(rng: random.Random, tasks: int, n: int) -> dict[str, tuple[int, int]]:
    return {f"T/{i:03d}": (n, rng.randint(0, n)) for i in range(tasks)}


@pytest.mark.parametrize("k", [1, 3, 10])
def test_paired_interval_matches_a_direct_computation(k: int) -> None:
    rng = random.Random(7)
    a, b = random_counts(rng, 40, 10), random_counts(rng, 40, 10)
    comparison = compare(
        [ModelRun("a", a, None), ModelRun("b", b, None)], "b", (k,), resamples=2000
    )
    assert comparison is not None
    (versus,) = comparison.versus
    tasks = sorted(a)
    model = [pass_at_k(*a[t], k) for t in tasks]
    base = [pass_at_k(*b[t], k) for t in tasks]
    low, high = direct_paired_interval(model, base, 2000, BOOTSTRAP_SEED)
    d = versus.diffs[k]
    assert d.tasks == 40
    assert d.diff == pytest.approx(sum(model) / 40 - sum(base) / 40, abs=1e-12)
    assert [d.low, d.high] == pytest.approx([low, high], abs=1e-12)
    assert d.low <= d.diff <= d.high


def test_pairing_removes_the_spread_both_models_share() -> None:
    # The model solves every task one sample in ten more often than the baseline: the difference
    # is exactly 0.1 on every task, so the paired interval is a point, while each model's own
    # interval (tasks from easy to hard) is wide.
    base = {f"T/{i}": (10, i % 9) for i in range(30)}
    better = {task: (n, c + 1) for task, (n, c) in base.items()}
    comparison = compare([ModelRun("m", better, None), ModelRun("b", base, None)], "b", (1,))
    assert comparison is not None
    d = comparison.versus[0].diffs[1]
    assert [d.diff, d.low, d.high] == pytest.approx([0.1, 0.1, 0.1])
    low, high = bootstrap_interval([pass_at_k(n, c, 1) for n, c in base.values()])
    assert high - low > 0.1


def test_paired_difference_edge_cases() -> None:
    assert all(math.isnan(v) for v in paired_difference([], []))
    assert paired_difference([0.5], [0.25]) == (0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="differ in length"):
        paired_difference([0.5], [])


def test_only_one_model_solved_and_shared_tasks() -> None:
    model = {"A": (2, 1), "B": (2, 0), "C": (2, 2), "D": (2, 1)}
    base = {"A": (2, 0), "B": (2, 1), "C": (2, 0), "E": (2, 2)}
    comparison = compare([ModelRun("m", model, None), ModelRun("b", base, None)], "b", (1, 2))
    assert comparison is not None
    (v,) = comparison.versus
    assert (v.shared_tasks, v.only_model_solved, v.only_baseline_solved) == (3, 2, 1)
    assert comparison.shared_tasks == 3
    # pass@1 over A, B, C: model (0.5, 0, 1), baseline (0, 0.5, 0).
    assert v.diffs[1].diff == pytest.approx((1.5 - 0.5) / 3)


def test_a_k_beyond_the_shared_samples_is_undefined() -> None:
    comparison = compare(
        [ModelRun("m", {"A": (2, 1)}, None), ModelRun("b", {"A": (5, 1)}, None)], "b", (1, 5)
    )
    assert comparison is not None
    d = comparison.versus[0].diffs[5]
    assert d.tasks == 0 and math.isnan(d.diff)


def test_no_comparison_with_one_model_or_nothing_shared() -> None:
    one = ModelRun("a", {"A": (1, 1)}, None)
    assert compare([one], "a", (1,)) is None
    assert compare([one, ModelRun("b", {"B": (1, 1)}, None)], "a", (1,)) is None
    assert compare([one, ModelRun("b", {"A": (1, 0)}, None)], "nobody", (1,)) is None


# Hand-computed equal cost. Model "big": one sample costs $0.01, n = 2, tasks (2, 1) and (2, 0).
# Model "small": one sample costs $0.001, n = 20, tasks (20, 2) and (20, 0).
BIG = ModelRun("big", {"A": (2, 1), "B": (2, 0)}, 0.01)
SMALL = ModelRun("small", {"A": (20, 2), "B": (20, 0)}, 0.001)
# pass@10 of (20, 2) = 1 - C(18, 10) / C(20, 10) = 1 - (10 * 9) / (20 * 19) = 1 - 90/380.
SMALL_AT_10 = (1 - 90 / 380) / 2


def test_equal_cost_rows_by_hand() -> None:
    comparison = compare([BIG, SMALL], "big", (1,), budgets=(0.1,))
    assert comparison is not None
    rows = {(row.budget_usd, row.source): row.models for row in comparison.equal_cost}
    assert list(rows) == [
        (0.01, "one sample of big"),
        (0.001, "one sample of small"),
        (0.1, USER_BUDGET),
    ]
    one_big = rows[(0.01, "one sample of big")]
    assert one_big["big"].k == 1 and one_big["big"].pass_at_k == pytest.approx(0.25)
    assert one_big["small"].k == 10 and one_big["small"].affordable == 10
    assert one_big["small"].pass_at_k == pytest.approx(SMALL_AT_10)
    assert one_big["small"].status is Afford.OK
    one_small = rows[(0.001, "one sample of small")]
    assert one_small["big"].k is None and one_small["big"].status is Afford.OVER_BUDGET
    assert one_small["big"].pass_at_k is None and one_small["big"].affordable == 0
    assert one_small["small"].k == 1
    assert one_small["small"].pass_at_k == pytest.approx(0.05)
    user = rows[(0.1, USER_BUDGET)]
    # $0.10 buys 10 samples of big and 100 of small: both capped at the n they were sampled with.
    assert (user["big"].k, user["big"].affordable, user["big"].status) == (2, 10, Afford.CAPPED)
    assert user["big"].pass_at_k == pytest.approx(0.5)
    assert (user["small"].k, user["small"].affordable) == (20, 100)
    assert user["small"].pass_at_k == pytest.approx(0.5)


def test_a_budget_of_exactly_k_samples_affords_k_despite_rounding() -> None:
    # 0.3 / 0.1 is 2.9999999999999996 in floating point.
    cell = at_budget(0.3, 0.1, [(10, 1)])
    assert (cell.k, cell.affordable) == (3, 3)
    assert cell.pass_at_k == pytest.approx(pass_at_k(10, 1, 3))


def test_a_budget_too_large_to_count_in_samples_buys_all_that_were_drawn() -> None:
    # 1e300 / 1e-10 overflows to inf: floor(inf) raised OverflowError and ended the run.
    cell = at_budget(1e300, 1e-10, [(10, 1), (4, 4)])
    assert (cell.k, cell.status, cell.affordable) == (10, Afford.CAPPED, None)
    assert cell.pass_at_k == pytest.approx(pass_at_k(10, 1, 10))


def test_unknown_cost_is_never_a_budget_and_never_free() -> None:
    unpriced = ModelRun("local", {"A": (4, 1), "B": (4, 0)}, None)
    comparison = compare([BIG, unpriced], "big", (1,), target=0.5)
    assert comparison is not None
    sources = [row.source for row in comparison.equal_cost]
    assert sources == ["one sample of big"]
    cell = comparison.equal_cost[0].models["local"]
    assert (cell.k, cell.pass_at_k, cell.status) == (None, None, Afford.UNKNOWN_COST)
    reach = comparison.reach["local"]
    # pass@k reaches 0.5 at k = 4 (task A solved surely, B never), but its cost is unknown.
    assert (reach.k, reach.cost_per_task_usd) == (4, None)


def test_cost_to_reach_a_target_by_hand() -> None:
    comparison = compare([BIG, SMALL], "big", (1,), target=0.3)
    assert comparison is not None
    big, small = comparison.reach["big"], comparison.reach["small"]
    # big: pass@1 = 0.25, pass@2 = 0.5.
    assert big.k == 2 and big.pass_at_k == 0.5
    assert big.cost_per_task_usd == pytest.approx(0.02)
    # small: mean pass@k = (1 - (20-k)(19-k)/380) / 2; k = 7 gives 0.2947, k = 8 gives 0.3263.
    assert small.k == 8
    assert small.cost_per_task_usd == pytest.approx(0.008)
    assert small.pass_at_k == pytest.approx((1 - 12 * 11 / 380) / 2)
    assert mean_pass_at_k([(20, 2), (20, 0)], 7) == pytest.approx((1 - 13 * 12 / 380) / 2)


def test_a_target_out_of_reach_says_so() -> None:
    reach = reach_target(0.9, 0.01, [(2, 1), (2, 0)])
    assert (reach.k, reach.cost_per_task_usd, reach.n) == (None, None, 2)
    assert reach.pass_at_k == pytest.approx(0.5)


def test_the_comparison_is_deterministic_and_independent_of_model_order() -> None:
    rng = random.Random(3)
    a = ModelRun("a", random_counts(rng, 25, 8), 0.002)
    b = ModelRun("b", random_counts(rng, 25, 8), 0.0005)
    c = ModelRun("c", random_counts(rng, 25, 8), None)
    first = compare([a, b, c], "b", (1, 4), budgets=(0.01,), target=0.6)
    again = compare([c, b, a], "b", (1, 4), budgets=(0.01,), target=0.6)
    assert first is not None and again is not None
    assert {v.model: v for v in first.versus} == {v.model: v for v in again.versus}
    assert first == compare([a, b, c], "b", (1, 4), budgets=(0.01,), target=0.6)


@given(
    st.lists(
        st.integers(1, 12).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n))),
        min_size=1,
        max_size=6,
    ),
    st.floats(0.01, 1.0),
)
def test_the_target_search_finds_the_smallest_k(
    counts: list[tuple[int, int]], target: float
) -> None:
    # Tasks of different n: the set of tasks scored changes with k, so pass@k may dip.
    n = max(size for size, _ in counts)
    smallest = next(
        (
            k
            for k in range(1, n + 1)
            if (value := mean_pass_at_k(counts, k)) is not None and value >= target
        ),
        None,
    )
    assert reach_target(target, 0.5, counts).k == smallest


def _result(task_id: str, model: str, nodeid: str, n: int, c: int) -> TaskResult:
    return TaskResult(task_id, model, f"replay:{model}", nodeid, n, n, c, {}, {})


def test_one_task_id_in_two_dataset_files_is_two_tasks_in_the_comparison() -> None:
    """Two dataset files with the same task ids make two items per model; the comparison pairs
    them item by item, as the summary counts them, instead of keeping whichever came last.
    """
    results = [
        _result("HumanEval/0", model, f"{where}/passk_x.jsonl::HumanEval/0[{model}]", 4, c)
        for model, where, c in [("a", "one", 4), ("a", "two", 0), ("b", "one", 0), ("b", "two", 4)]
    ]
    results.append(_result("HumanEval/1", "a", "one/passk_x.jsonl::HumanEval/1[a]", 4, 1))
    results.append(_result("HumanEval/1", "b", "one/passk_x.jsonl::HumanEval/1[b]", 4, 1))
    runs = runs_from_results(results, summarise_models(results, (1,)))
    assert [len(run.counts) for run in runs] == [3, 3]
    comparison = compare(runs, "a", (1,))
    assert comparison is not None and comparison.shared_tasks == 3
    versus = comparison.versus[0]
    assert (versus.only_model_solved, versus.only_baseline_solved) == (1, 1)
    assert versus.diffs[1].diff == pytest.approx(0.0)
    # A task id that occurs once stays the key: saved reports of other runs pair with it.
    assert "HumanEval/1" in runs[0].counts


def test_a_target_equal_to_the_pass_at_k_is_reached_despite_rounding() -> None:
    """pass@1 of 1 in 10 is 0.1 exactly, though the estimator's float is 0.09999999999999998:
    --passk-target=0.1 (or 10%) is reached at k = 1, as the terminal's 0.100 says.
    """
    assert pass_at_k(10, 1, 1) < 0.1  # the rounding this is about
    assert reach_target(0.1, 0.01, [(10, 1)]).k == 1
    assert reach_target(0.2, None, [(5, 1), (5, 1)]).k == 1
    assert reach_target(0.1 + 1e-9, None, [(10, 1)]).k == 2  # above it: not reached at 1
