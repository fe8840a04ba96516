"""Comparing models honestly: paired differences, equal-cost rows and the cost to reach a target.

Everything here is a pure function of each model's per-task counts ``(n, c)`` (tasks matched by
``task_id``; by task id and item where several items share one, :func:`task_keys`) and its cost
per sample:

- **Paired differences.** For each k, the mean over the tasks both models ran (with n >= k for
  both) of ``pass@k(model) - pass@k(baseline)``, with a paired percentile bootstrap interval: the
  shared tasks are resampled with replacement and the same resample scores both models, so the
  interval reflects the difference's own spread, which is far narrower than two independent
  intervals when the models find the same tasks hard. :data:`BOOTSTRAP_RESAMPLES` resamples under
  a fixed seed, tasks in id order: reproducible, identical under pytest-xdist.
- **Tasks only one model solved**: shared tasks with c >= 1 for one model and c = 0 for the other.
- **Equal cost.** A budget per task buys ``floor(budget / cost per sample)`` samples of a model,
  capped at the n it was sampled with; pass@k at that k (the unbiased estimator, from the same
  n and c) is what the model achieves for the money. The budgets are the cost of one sample of
  each model, then the user's ``--passk-budget`` values. These rows use the tasks every model ran.
- **Cost to reach a target**: the smallest k whose pass@k reaches ``--passk-target``, and k times
  the cost per sample; or "not reached within n". On the tasks every model ran in the
  comparison; on each model's own tasks in :func:`own_reach` (which a single model has too).
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pytest_passk.estimate import (
    BOOTSTRAP_SEED,
    ROUNDING_SLACK,
    ModelSummary,
    bootstrap_interval,
    pass_at_k,
)
from pytest_passk.results import TaskResult

__all__ = [
    "BOOTSTRAP_RESAMPLES",
    "Afford",
    "AtBudget",
    "BudgetRow",
    "Comparison",
    "ModelRun",
    "PairedDiff",
    "TargetReach",
    "Versus",
    "at_budget",
    "compare",
    "item_of",
    "mean_pass_at_k",
    "own_reach",
    "paired_difference",
    "reach_target",
    "runs_from_results",
    "task_keys",
]

#: Resamples of the paired bootstrap (more than the per-model 2000: a difference near zero needs
#: a steadier tail).
BOOTSTRAP_RESAMPLES = 10_000
#: Relative slack in ``budget / cost``: a budget of exactly k samples' cost affords k even when
#: the division rounds to just under k.
AFFORD_SLACK = 1e-9
#: Slack below the target a mean pass@k may fall and still reach it: the same rule as
#: ``--passk-fail-under`` (pass@1 of 1 in 10 is 0.09999999999999998, yet exactly the 0.1 the
#: user asked for).
TARGET_SLACK = ROUNDING_SLACK
#: The ``source`` of a budget given with ``--passk-budget``.
USER_BUDGET = "--passk-budget"
ONE_SAMPLE_OF = "one sample of {model}"
#: Between the task id and the item in the key of a task whose id several items share.
ITEM_SEPARATOR = " @ "


@dataclass(frozen=True, slots=True)
class ModelRun:
    """One model's counts ``(n, c)`` by task id, and what one of its samples costs."""

    label: str
    counts: Mapping[str, tuple[int, int]]
    cost_per_sample: float | None


@dataclass(frozen=True, slots=True)
class PairedDiff:
    """Mean ``pass@k(model) - pass@k(baseline)`` over ``tasks`` shared tasks (NaN when none)."""

    k: int
    diff: float
    low: float
    high: float
    tasks: int
    #: Each model's mean pass@k over those same tasks (NaN when none).
    model_value: float = math.nan
    baseline_value: float = math.nan


@dataclass(frozen=True, slots=True)
class Versus:
    """One model against the baseline, on the tasks both ran."""

    model: str
    shared_tasks: int
    diffs: Mapping[int, PairedDiff]
    only_model_solved: int
    only_baseline_solved: int


class Afford(enum.Enum):
    """What a budget buys of a model."""

    OK = "ok"
    #: The budget buys more samples than the model was sampled with: k is its n.
    CAPPED = "capped"
    #: One sample costs more than the budget.
    OVER_BUDGET = "over-budget"
    #: The model's cost per sample is unknown.
    UNKNOWN_COST = "unknown-cost"


@dataclass(frozen=True, slots=True)
class AtBudget:
    """A model at a budget: the k it affords (``None``: none) and its pass@k there."""

    k: int | None
    pass_at_k: float | None
    status: Afford
    #: ``floor(budget / cost per sample)`` before capping at n (``None``: unknown or unbounded).
    affordable: int | None


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """One budget per task, where it came from, and every model at it."""

    budget_usd: float
    source: str
    models: Mapping[str, AtBudget]


@dataclass(frozen=True, slots=True)
class TargetReach:
    """The smallest k reaching the target (``None``: not within n) and its cost per task."""

    k: int | None
    cost_per_task_usd: float | None
    #: pass@k at that k, or at n when the target is not reached.
    pass_at_k: float | None
    n: int


@dataclass(frozen=True, slots=True)
class Comparison:
    """The comparison section of a run with two or more models."""

    baseline: str
    #: Tasks every model ran (the equal-cost and target rows use these).
    shared_tasks: int
    resamples: int
    versus: tuple[Versus, ...]
    equal_cost: tuple[BudgetRow, ...]
    target: float | None
    reach: Mapping[str, TargetReach]
    cost_per_sample: Mapping[str, float | None]


def paired_difference(
    model: Sequence[float],
    baseline: Sequence[float],
    *,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[float, float, float]:
    """``(mean difference, low, high)`` of paired per-task values, with a 95% paired bootstrap.

    Resampling the per-task differences is resampling tasks with the same draw for both models:
    the mean of resampled differences is the difference of the resampled means.
    """
    if len(model) != len(baseline):
        raise ValueError(f"paired values differ in length: {len(model)} and {len(baseline)}")
    if not model:
        return math.nan, math.nan, math.nan
    diffs = [m - b for m, b in zip(model, baseline, strict=True)]
    low, high = bootstrap_interval(diffs, resamples=resamples, seed=seed)
    return math.fsum(diffs) / len(diffs), low, high


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float | None:
    """Mean pass@k over the tasks with n >= k; ``None`` when none qualifies."""
    values = [pass_at_k(n, c, k) for n, c in counts if n >= k]
    return math.fsum(values) / len(values) if values else None


def at_budget(
    budget: float, cost_per_sample: float | None, counts: Sequence[tuple[int, int]]
) -> AtBudget:
    """What ``budget`` per task buys of a model with these per-task counts."""
    n = max((task_n for task_n, _ in counts), default=0)
    if cost_per_sample is None:
        return AtBudget(None, None, Afford.UNKNOWN_COST, None)
    if cost_per_sample <= 0:  # free samples: any budget buys all that were drawn
        return AtBudget(n or None, mean_pass_at_k(counts, n) if n else None, Afford.CAPPED, None)
    samples = budget / cost_per_sample * (1 + AFFORD_SLACK)
    if not math.isfinite(samples):  # more samples than a float counts: all that were drawn
        return AtBudget(n or None, mean_pass_at_k(counts, n) if n else None, Afford.CAPPED, None)
    affordable = math.floor(samples)
    if affordable < 1:
        return AtBudget(None, None, Afford.OVER_BUDGET, affordable)
    k = min(affordable, n)
    if k < 1:
        return AtBudget(None, None, Afford.CAPPED, affordable)
    status = Afford.CAPPED if affordable > n else Afford.OK
    return AtBudget(k, mean_pass_at_k(counts, k), status, affordable)


def reach_target(
    target: float, cost_per_sample: float | None, counts: Sequence[tuple[int, int]]
) -> TargetReach:
    """The smallest k with mean pass@k >= ``target`` (within :data:`TARGET_SLACK`), and k times
    the cost per sample.

    Between two consecutive task sizes n the tasks scored at k do not change, and over a fixed
    set of tasks pass@k never decreases in k: so each such stretch of k is binary-searched
    (a few dozen estimator calls per task instead of one per k, which matters at n = 1000).
    """
    sizes = sorted({n for n, _ in counts if n > 0})
    n = sizes[-1] if sizes else 0
    start = 1
    for end in sizes:
        if start > end:
            continue
        value = mean_pass_at_k(counts, end)
        if value is None or value < target - TARGET_SLACK:
            start = end + 1
            continue
        low, high = start, end  # the answer lies in [low, high]; pass@high reaches the target
        while low < high:
            middle = (low + high) // 2
            reached = mean_pass_at_k(counts, middle)
            if reached is not None and reached >= target - TARGET_SLACK:
                high = middle
            else:
                low = middle + 1
        cost = None if cost_per_sample is None else low * cost_per_sample
        return TargetReach(low, cost, mean_pass_at_k(counts, low), n)
    return TargetReach(None, None, mean_pass_at_k(counts, n) if n else None, n)


def own_reach(runs: Sequence[ModelRun], target: float) -> dict[str, TargetReach]:
    """Each model's reach of ``target`` on its own tasks (one model too: no comparison needed)."""
    return {
        run.label: reach_target(target, run.cost_per_sample, list(run.counts.values()))
        for run in runs
    }


def compare(
    runs: Sequence[ModelRun],
    baseline: str,
    ks: Sequence[int],
    *,
    budgets: Sequence[float] = (),
    target: float | None = None,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> Comparison | None:
    """The comparison of ``runs`` against ``baseline`` (a label among them); ``None`` when fewer
    than two models ran or no model shares a task with the baseline.
    """
    by_label = {run.label: run for run in runs}
    if len(by_label) < 2 or baseline not in by_label:
        return None
    base = by_label[baseline]
    versus = []
    for run in runs:
        if run.label == baseline:
            continue
        versus.append(_versus(run, base, ks, resamples, seed))
    if not any(v.shared_tasks for v in versus):
        return None
    everywhere = sorted(set.intersection(*(set(run.counts) for run in by_label.values())))
    columns = {label: [run.counts[task] for task in everywhere] for label, run in by_label.items()}
    rows: list[BudgetRow] = []
    if everywhere:
        sources = [
            (run.cost_per_sample, ONE_SAMPLE_OF.format(model=run.label))
            for run in by_label.values()
            if run.cost_per_sample is not None and run.cost_per_sample > 0
        ]
        sources += [(budget, USER_BUDGET) for budget in sorted(budgets)]
        for budget, source in sources:
            assert budget is not None
            models = {
                label: at_budget(budget, by_label[label].cost_per_sample, counts)
                for label, counts in columns.items()
            }
            rows.append(BudgetRow(budget, source, models))
    reach: dict[str, TargetReach] = {}
    if target is not None and everywhere:
        reach = {
            label: reach_target(target, by_label[label].cost_per_sample, counts)
            for label, counts in columns.items()
        }
    return Comparison(
        baseline=baseline,
        shared_tasks=len(everywhere),
        resamples=resamples,
        versus=tuple(versus),
        equal_cost=tuple(rows),
        target=target,
        reach=reach,
        cost_per_sample={label: run.cost_per_sample for label, run in by_label.items()},
    )


def _versus(run: ModelRun, base: ModelRun, ks: Sequence[int], resamples: int, seed: int) -> Versus:
    shared = sorted(run.counts.keys() & base.counts.keys())
    diffs: dict[int, PairedDiff] = {}
    for k in ks:
        pairs = [
            (run.counts[task], base.counts[task])
            for task in shared
            if run.counts[task][0] >= k and base.counts[task][0] >= k
        ]
        model = [pass_at_k(n, c, k) for (n, c), _ in pairs]
        baseline = [pass_at_k(n, c, k) for _, (n, c) in pairs]
        diff, low, high = paired_difference(model, baseline, resamples=resamples, seed=seed)
        diffs[k] = PairedDiff(k, diff, low, high, len(pairs), _mean(model), _mean(baseline))
    solved_model = {task for task in shared if run.counts[task][1] > 0}
    solved_base = {task for task in shared if base.counts[task][1] > 0}
    return Versus(
        model=run.label,
        shared_tasks=len(shared),
        diffs=diffs,
        only_model_solved=len(solved_model - solved_base),
        only_baseline_solved=len(solved_base - solved_model),
    )


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else math.nan


def item_of(nodeid: str, model: str) -> str:
    """The item's node id without its model parameter (``f.jsonl::HumanEval/0[gpt-4o]`` gives
    ``f.jsonl::HumanEval/0``).
    """
    suffix = f"[{model}]"
    return nodeid[: -len(suffix)] if nodeid.endswith(suffix) else nodeid


def task_keys(records: Sequence[tuple[str, str, str]]) -> list[str]:
    """The key that matches each ``(model, task_id, nodeid)`` record with the same task of
    another model or run: its task id; or, for an id several items of one model share (two
    dataset files with the same task ids are two tasks), the task id and the item (the node id
    without the model), so that neither overwrites the other. Keys sort in task-id order.
    """
    seen = Counter((model, task_id) for model, task_id, _ in records)
    shared = {task_id for (_, task_id), count in seen.items() if count > 1}
    return [
        f"{task_id}{ITEM_SEPARATOR}{item_of(nodeid, model)}" if task_id in shared else task_id
        for model, task_id, nodeid in records
    ]


def runs_from_results(
    results: Sequence[TaskResult], summaries: Sequence[ModelSummary]
) -> list[ModelRun]:
    """Each summarised model's counts by task key (:func:`task_keys`; tasks without samples
    left out) and cost per sample, in the summaries' order.
    """
    counts: dict[str, dict[str, tuple[int, int]]] = {s.label: {} for s in summaries}
    ordered = sorted(results, key=lambda r: (r.model, r.task_id, r.nodeid))
    keys = task_keys([(r.model, r.task_id, r.nodeid) for r in ordered])
    for result, key in zip(ordered, keys, strict=True):
        if result.n > 0 and result.model in counts:
            counts[result.model][key] = (result.n, result.c)
    return [ModelRun(s.label, counts[s.label], s.cost_per_sample_usd) for s in summaries]
