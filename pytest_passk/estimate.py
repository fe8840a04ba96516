"""The unbiased pass@k estimator (Chen et al. 2021), per-model aggregation and bootstrap intervals.

``pass@k = 1 - C(n-c, k) / C(n, k)`` is computed from exact integers, so the only rounding is the
final division (correctly rounded by Python) and the subtraction: the result is within 1e-15 of the
exact rational value for every n, including n in the tens of thousands.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from pytest_passk.pricing import cost_per_sample
from pytest_passk.results import TaskResult, empty_counts

__all__ = [
    "ROUNDING_SLACK",
    "Estimate",
    "ModelSummary",
    "aggregate",
    "below",
    "bootstrap_interval",
    "pass_at_k",
    "shown",
    "summarise_models",
]

#: Resamples for the bootstrap interval; fixed with the seed so reports are reproducible.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20210707  # the day Chen et al. appeared on arXiv


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples drawn without replacement from n passes.

    Args:
        n: Samples drawn for the task.
        c: How many of them passed.
        k: Budget of samples.

    Raises:
        ValueError: when ``n < k`` (the estimator is undefined; it is never reported as 1.0),
            or when the counts are negative or ``c > n``.

    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < 0 or c < 0 or c > n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if n < k:
        raise ValueError(f"pass@{k} is undefined with only n={n} samples (need n >= k)")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


#: How far a float pass@k may fall short of a value it equals: 1 correct of 10 gives pass@1
#: as 1 - 9/10 = 0.09999999999999998, which must meet a threshold of 0.1. The estimator is exact
#: to far better than this, and no real shortfall is this small.
ROUNDING_SLACK = 1e-12


def below(value: float, threshold: float) -> bool:
    """Whether a pass@k fails a threshold: below it (by more than :data:`ROUNDING_SLACK`), or
    undefined (NaN: no task with n >= k).

    The one rule behind a task's ``min_pass_at_k`` and ``--passk-fail-under``.
    """
    return not value >= threshold - ROUNDING_SLACK


def shown(value: float) -> str:
    """A pass@k in a message: four decimals, or ``undefined`` for NaN."""
    return "undefined" if math.isnan(value) else f"{value:.4f}"


@dataclass(frozen=True, slots=True)
class Estimate:
    """A model's pass@k over the tasks that have enough samples for that k."""

    k: int
    value: float
    low: float
    high: float
    tasks: int
    excluded: int


def aggregate(counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[int, Estimate]:
    """Mean pass@k over tasks with ``n >= k``, with a 95% bootstrap interval for every k.

    Args:
        counts: ``(n, c)`` per task, in a fixed order (the interval depends on it only through
            the seeded resampling, so callers sort by task for reproducibility).
        ks: The k values to report.

    Tasks with fewer than k samples are left out of that k and counted in ``excluded``; when no
    task qualifies the value and interval are NaN.

    """
    result: dict[int, Estimate] = {}
    for k in ks:
        values = [pass_at_k(n, c, k) for n, c in counts if n >= k]
        excluded = len(counts) - len(values)
        if not values:
            nan = math.nan
            result[k] = Estimate(k, nan, nan, nan, 0, excluded)
            continue
        low, high = bootstrap_interval(values)
        result[k] = Estimate(k, math.fsum(values) / len(values), low, high, len(values), excluded)
    return result


def bootstrap_interval(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``, tasks resampled with replacement."""
    if not values:
        return math.nan, math.nan
    if len(values) == 1:
        return values[0], values[0]
    rng = random.Random(seed)
    size = len(values)
    means = sorted(math.fsum(rng.choices(values, k=size)) / size for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    low = means[math.floor(tail * (resamples - 1))]
    high = means[math.ceil((1.0 - tail) * (resamples - 1))]
    return low, high


@dataclass(frozen=True, slots=True)
class ModelSummary:
    """One model's results over the tasks of a run."""

    label: str
    spec: str
    tasks: int
    n: int
    n_min: int
    samples: int
    distinct: int
    estimates: dict[int, Estimate]
    outcomes: dict[str, int]
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float | None
    tasks_short: int
    tasks_without_samples: int
    #: Tasks with at least one passing candidate (c >= 1).
    tasks_solved: int = 0
    #: Samples per extraction kind (``as-is``, each repair's name, ``no-code``).
    extraction: dict[str, int] = field(default_factory=dict)
    #: Mean over tasks of whether the candidate picked without tests passes; ``None`` when no
    #: task had samples.
    selected_at_1: float | None = None
    #: Samples whose token usage the server undercounted: token totals and cost are lower bounds.
    undercounted: int = 0

    @property
    def cost_per_sample_usd(self) -> float | None:
        """The model's cost divided by its samples; ``None`` when unknown."""
        return cost_per_sample(self.cost_usd, self.samples)


def summarise_models(results: Sequence[TaskResult], ks: Sequence[int]) -> list[ModelSummary]:
    """Aggregate task results per model, tasks in id order (so intervals are reproducible)."""
    by_model: dict[str, list[TaskResult]] = {}
    for result in sorted(results, key=lambda r: (r.model, r.task_id, r.nodeid)):
        by_model.setdefault(result.model, []).append(result)
    summaries = []
    for label, group in by_model.items():
        outcomes = empty_counts()
        for result in group:
            for name, count in result.outcomes.items():
                outcomes[name] = outcomes.get(name, 0) + count
        extraction: dict[str, int] = {}
        for result in group:
            for kind, count in result.extraction.items():
                extraction[kind] = extraction.get(kind, 0) + count
        costs = [r.cost_usd for r in group]
        ns = [r.n for r in group]
        summaries.append(
            ModelSummary(
                label=label,
                spec=group[0].spec,
                tasks=len(group),
                n=max(ns),
                n_min=min(ns),
                samples=sum(ns),
                distinct=sum(r.distinct for r in group),
                estimates=aggregate([(r.n, r.c) for r in group], ks),
                outcomes=outcomes,
                prompt_tokens=sum(r.prompt_tokens for r in group),
                completion_tokens=sum(r.completion_tokens for r in group),
                cost_usd=None
                if any(c is None for c in costs)
                else math.fsum(c or 0.0 for c in costs),
                tasks_short=sum(1 for r in group if 0 < r.n < r.n_requested),
                tasks_without_samples=sum(1 for r in group if r.n == 0),
                tasks_solved=sum(1 for r in group if r.c > 0),
                extraction=dict(sorted(extraction.items())),
                selected_at_1=_mean([float(r.selected) for r in group if r.selected is not None]),
                undercounted=sum(r.undercounted for r in group),
            )
        )
    return summaries


def _mean(values: Sequence[float]) -> float | None:
    return math.fsum(values) / len(values) if values else None
