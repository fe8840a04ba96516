"""pass@k as a curve: every k from 1 to a model's largest n, with its bootstrap band.

Computed from the per-task ``n`` and ``c`` of a report with the same estimator and the same rules
as the report's own figures (:mod:`pytest_passk.estimate`): a task with ``n < k`` is left out of
that k, and the band at each k is the percentile bootstrap over tasks with the report's seed and
resample count, drawn in the same order, so at the report's k values the curve and its band are
the report's pass@k and ``ci95``.

numpy (a dependency of matplotlib, the ``plot`` extra) is imported when a curve is computed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_passk.estimate import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, pass_at_k
from pytest_passk.report_data import TaskCount

__all__ = ["MAX_POINTS", "Curve", "curve_ks", "pass_at_k_curve"]

#: Beyond this many k values a curve samples k on a log scale (plus every reported k), so a run
#: with n in the tens of thousands still draws in seconds.
MAX_POINTS = 1000
#: Bootstrap resamples whose draw counts are held at once (each a row of distinct (n, c) pairs).
RESAMPLE_BLOCK = 256


@dataclass(frozen=True, slots=True)
class Curve:
    """One model's pass@k at each of ``ks``, with the 95% band and the tasks scored."""

    model: str
    ks: tuple[int, ...]
    values: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    tasks: tuple[int, ...]


def curve_ks(n_max: int, reported: Sequence[int] = (), max_points: int = MAX_POINTS) -> list[int]:
    """Every k from 1 to ``n_max``, or, above ``max_points`` of them, log-spaced k values that
    keep every reported k (up to ``n_max``) and ``n_max`` itself.
    """
    if n_max <= max_points:
        return list(range(1, n_max + 1))
    chosen = {1, n_max, *(k for k in reported if 1 <= k <= n_max)}
    steps = max_points - 1
    chosen.update(round(math.exp(math.log(n_max) * i / steps)) for i in range(steps + 1))
    return sorted(chosen)


def pass_at_k_curve(
    model: str,
    counts: Sequence[TaskCount],
    reported: Sequence[int] = (),
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    max_points: int = MAX_POINTS,
) -> Curve:
    """pass@k of one model for k from 1 to its largest n.

    Args:
        model: The model's label.
        counts: Its tasks' ``(n, c)``, in task-id order (as the report's bootstrap used them).
        reported: The report's k values, always on the curve.
        resamples: Bootstrap resamples (the report's by default).
        seed: Bootstrap seed (the report's by default).
        max_points: See :func:`curve_ks`.

    """
    import numpy as np

    usable = [t for t in counts if t.n > 0]
    if not usable:
        return Curve(model, (), (), (), (), ())
    ks = curve_ks(max(t.n for t in usable), reported, max_points)
    values: list[float] = []
    lows: list[float] = []
    highs: list[float] = []
    scored: list[int] = []
    cache: dict[tuple[int, int, int], float] = {}
    # Tasks with n >= k shrink as k grows; each eligible set shares one set of resamples (the
    # same draws as estimate.bootstrap_interval makes for that set).
    position = 0
    while position < len(ks):
        eligible = [t for t in usable if t.n >= ks[position]]
        end = position
        while end < len(ks) and sum(1 for t in usable if t.n >= ks[end]) == len(eligible):
            end += 1
        group = ks[position:end]
        # A task's pass@k depends only on its (n, c): one row per distinct pair, and each task
        # points at its row, so memory grows with the distinct pairs, not with the tasks.
        pairs = sorted({(t.n, t.c) for t in eligible})
        row_of = {pair: row for row, pair in enumerate(pairs)}
        rows = np.array([row_of[(t.n, t.c)] for t in eligible], dtype=np.intp)
        table = np.array([[_cached(cache, n, c, k) for k in group] for n, c in pairs], dtype=float)
        values.extend(math.fsum(table[rows, j]) / len(eligible) for j in range(len(group)))
        low, high = _bands(table, rows, resamples, seed)
        lows.extend(low)
        highs.extend(high)
        scored.extend(len(eligible) for _ in group)
        position = end
    return Curve(model, tuple(ks), tuple(values), tuple(lows), tuple(highs), tuple(scored))


def _cached(cache: dict[tuple[int, int, int], float], n: int, c: int, k: int) -> float:
    key = (n, c, k)
    if key not in cache:
        cache[key] = pass_at_k(n, c, k)
    return cache[key]


def _bands(table: Any, rows: Any, resamples: int, seed: int) -> tuple[list[float], list[float]]:
    """Percentile bounds per column of the tasks' values (task ``i`` has row ``rows[i]`` of
    ``table``, distinct (n, c) x k), exactly as :func:`pytest_passk.estimate.bootstrap_interval`
    resamples one column: the same tasks drawn in the same order. A resample's mean is its
    count of draws per row times the rows, so a block of :data:`RESAMPLE_BLOCK` resamples is
    held at a time, never one weight per task and resample (160 MB at 10,000 tasks).
    """
    import numpy as np

    matrix = np.asarray(table, dtype=float)
    size = len(rows)
    if size == 1:
        row = [float(v) for v in matrix[rows[0]]]
        return row, row
    draw = _picks(seed, size)
    distinct = matrix.shape[0]
    means = np.empty((resamples, matrix.shape[1]))
    for start in range(0, resamples, RESAMPLE_BLOCK):
        stop = min(start + RESAMPLE_BLOCK, resamples)
        weights = np.empty((stop - start, distinct))
        for r in range(stop - start):
            weights[r] = np.bincount(rows[draw()], minlength=distinct)
        means[start:stop] = weights @ matrix / size
    means.sort(axis=0)
    tail = 0.025
    low = means[math.floor(tail * (resamples - 1))]
    high = means[math.ceil((1.0 - tail) * (resamples - 1))]
    return [float(v) for v in low], [float(v) for v in high]


def _picks(seed: int, size: int) -> Callable[[], Any]:
    """Each call: the task indices of the next resample, the very picks
    :func:`pytest_passk.estimate.bootstrap_interval`'s ``random.Random(seed).choices`` makes
    (``floor(random() * size)`` each).

    numpy's legacy Mersenne Twister draws the same doubles as Python's ``random()`` (both
    ``(a >> 5, b >> 6)`` of two 32-bit outputs) once given the same state, a hundred times
    faster than ``choices``: 20 million picks at 10,000 tasks took 20 s. Where the first draws
    differ (another interpreter), Python's own ``choices`` draws.
    """
    import numpy as np

    rng = random.Random(seed)
    population = range(size)
    try:
        state = rng.getstate()[1]
        legacy = ("MT19937", np.array(state[:-1], dtype=np.uint32), int(state[-1]), 0, 0.0)
        fast = np.random.RandomState()
        fast.set_state(legacy)
        probe = random.Random(seed)
        same = [probe.random() for _ in range(4)] == [float(v) for v in fast.random_sample(4)]
        fast.set_state(legacy)
    except (TypeError, ValueError, IndexError):
        same = False
    if not same:
        return lambda: np.fromiter(rng.choices(population, k=size), dtype=np.intp, count=size)
    scale = float(size)
    return lambda: np.floor(fast.random_sample(size) * scale).astype(np.intp)
