"""The curve agrees with the report's own pass@k and interval at every k."""

from __future__ import annotations

import math
import random
import time
import tracemalloc

import pytest

from pytest_passk.curves import curve_ks, pass_at_k_curve
from pytest_passk.estimate import aggregate, bootstrap_interval, pass_at_k
from pytest_passk.report_data import TaskCount

pytest.importorskip("numpy")


def _counts() -> list[TaskCount]:
    # Mixed n: tasks with n < k leave that k, as in the report.
    shapes = [(10, 0), (10, 3), (10, 10), (6, 1), (6, 5), (3, 0), (10, 1), (8, 2)]
    return [TaskCount(f"t{i:02d}", n, c) for i, (n, c) in enumerate(shapes)]


def test_curve_matches_the_reports_estimate_and_interval_at_every_k() -> None:
    counts = _counts()
    curve = pass_at_k_curve("m", counts)
    assert curve.ks == tuple(range(1, 11))
    expected = aggregate([(t.n, t.c) for t in counts], curve.ks)
    for k, value, low, high, tasks in zip(
        curve.ks, curve.values, curve.low, curve.high, curve.tasks, strict=True
    ):
        assert value == pytest.approx(expected[k].value, abs=1e-12)
        assert low == pytest.approx(expected[k].low, abs=1e-9)
        assert high == pytest.approx(expected[k].high, abs=1e-9)
        assert tasks == expected[k].tasks
        assert low <= value <= high


def test_single_task_band_is_the_value() -> None:
    curve = pass_at_k_curve("m", [TaskCount("a", 4, 1)])
    assert curve.values == curve.low == curve.high
    assert curve.values[0] == pytest.approx(0.25)
    assert curve.values[-1] == 1.0


def test_no_samples_gives_an_empty_curve() -> None:
    assert pass_at_k_curve("m", [TaskCount("a", 0, 0)]).ks == ()


def test_large_n_samples_k_on_a_log_scale_keeping_reported_k() -> None:
    ks = curve_ks(20_000, reported=(1, 10, 100, 7777), max_points=200)
    assert ks[0] == 1 and ks[-1] == 20_000
    assert {10, 100, 7777} <= set(ks)
    assert len(ks) <= 204
    assert ks == sorted(set(ks))


def test_hundreds_of_tasks_with_n_200_take_seconds_not_minutes() -> None:
    counts = [TaskCount(f"t{i:03d}", 200, (i * 7) % 201) for i in range(164)]
    started = time.process_time()
    curve = pass_at_k_curve("m", counts)
    assert len(curve.ks) == 200
    assert all(not math.isnan(v) for v in curve.values)
    assert time.process_time() - started < 60


def test_the_band_of_many_tasks_takes_memory_bounded_by_k_not_by_tasks() -> None:
    """The bootstrap draws must not be held as a resamples x tasks matrix: at 10,000 tasks and
    the report's 2,000 resamples that alone was 160 MB. 20,000 tasks and 200 resamples (32 MB
    that way) keep this test quick; the band stays the report's interval.
    """
    counts = [TaskCount(f"t{i:05d}", 20, (i * 7) % 21) for i in range(20_000)]
    tracemalloc.start()
    try:
        curve = pass_at_k_curve("m", counts, resamples=200)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    for k in (1, 20):
        values = [pass_at_k(t.n, t.c, k) for t in counts]
        low, high = bootstrap_interval(values, resamples=200)
        assert curve.low[k - 1] == pytest.approx(low, abs=1e-9)
        assert curve.high[k - 1] == pytest.approx(high, abs=1e-9)


def test_tasks_with_the_same_counts_are_still_drawn_one_by_one() -> None:
    """Grouping tasks with equal (n, c) must not change which tasks a resample draws."""
    counts = [TaskCount(f"t{i:02d}", 6, c) for i, c in enumerate([0, 6, 0, 3, 6, 0, 1, 0])]
    curve = pass_at_k_curve("m", counts)
    for k in curve.ks:
        low, high = bootstrap_interval([pass_at_k(t.n, t.c, k) for t in counts])
        assert (curve.low[k - 1], curve.high[k - 1]) == pytest.approx((low, high), abs=1e-12)


def test_the_fast_draws_are_the_reports_and_python_draws_where_they_would_not_be(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The band's picks come from numpy's Mersenne Twister in Python's state; where that ever
    disagrees with Python's own draws, Python's choices are used: the band is the same.
    """
    counts = [TaskCount(f"t{i:02d}", 8, (i * 5) % 9) for i in range(30)]
    fast = pass_at_k_curve("m", counts)
    monkeypatch.setattr(random.Random, "getstate", lambda self: (3, (), None))
    slow = pass_at_k_curve("m", counts)
    assert (fast.low, fast.high) == (slow.low, slow.high)
    for k in (1, 4, 8):
        low, high = bootstrap_interval([pass_at_k(t.n, t.c, k) for t in counts])
        assert (fast.low[k - 1], fast.high[k - 1]) == pytest.approx((low, high), abs=1e-12)
