"""Judging items: the sandbox pool behind the verdict cache, and the item's pass criterion.

The pool starts before any backend loads a model (so its workers never copy model memory); every
item's programs are queued on it up front, so workers never idle at the end of one item while the
next item's programs wait.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from pytest_passk.backends.registry import ModelSpec
from pytest_passk.collect import TaskFailed, TaskItem
from pytest_passk.estimate import pass_at_k
from pytest_passk.evaluation import ItemIdentity, Plan, evaluate, plan, summarise
from pytest_passk.progress import PROGRESS_EVERY, Progress
from pytest_passk.report import item_properties
from pytest_passk.results import CandidateResult, TaskResult
from pytest_passk.sandbox import Executor, Job
from pytest_passk.settings import Settings
from pytest_passk.store import CachingExecutor, VerdictCache
from pytest_passk.supply import SampleSupply

__all__ = ["BELOW_MIN", "NO_REFERENCE", "NO_SAMPLES", "RESULT_KEY", "ItemRunner"]

RESULT_KEY = pytest.StashKey[TaskResult]()
#: Items planned per batch handed to the pool ahead of time (each batch's references first).
PREFETCH_ITEMS = 8
NO_REFERENCE = (
    "task {task_id} has no reference solution: give @passk.task(reference=...) "
    "or a canonical_solution"
)
NO_SAMPLES = "no samples for task {task_id} from {model}"
BELOW_MIN = "pass@{k} = {value} is below the task's min_pass_at_k={threshold:g}"
REFERENCE_FAILS = (
    "the reference solution does not pass the task's test in the sandbox (its error is below)"
)


class ItemRunner:
    """Runs items through the sandbox and decides whether each passes."""

    def __init__(
        self,
        settings: Settings,
        supply: SampleSupply,
        progress: Progress,
        *,
        runs_items: bool,
    ) -> None:
        self._settings = settings
        self._supply = supply
        self._progress = progress
        self._runs_items = runs_items
        self._executor: CachingExecutor | None = None
        self._info: dict[str, Any] | None = None
        self._plans: dict[str, Plan] = {}

    # -- the sandbox ---------------------------------------------------------------------------

    @property
    def executor(self) -> CachingExecutor:
        """The sandbox pool behind the verdict cache, started on first use."""
        if self._executor is None:
            pool = self._start_pool(self._settings.workers)
            self._info = _sandbox_info(pool)
            self._executor = CachingExecutor(
                pool, VerdictCache(self._settings.store, warn=self._supply.store_warning)
            )
        return self._executor

    @property
    def started(self) -> bool:
        """Whether this process's pool is running."""
        return self._executor is not None

    def _start_pool(self, workers: int) -> Executor:
        from pytest_passk.sandbox.pool import IsolationLevel, IsolationUnavailable, PoolExecutor

        required = IsolationLevel.parse(self._settings.isolation or "auto")
        try:
            return PoolExecutor(workers, required=required, hide=[str(self._settings.rootdir)])
        except IsolationUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        except OSError as exc:
            raise pytest.UsageError(f"passk: the sandbox could not start: {exc}") from None

    def isolation(self) -> str:
        """Isolation level in force, for the header and the report.

        A process that runs no items (the xdist controller) starts a one-worker probe pool to
        find out, which also checks ``--passk-isolation`` before any worker draws a sample.
        """
        if self._info is None:
            if self._executor is not None or self._runs_items:
                _ = self.executor
            else:
                probe = self._start_pool(1)
                self._info = _sandbox_info(probe)
                probe.close()
        assert self._info is not None
        return str(self._info["isolation"])

    def overhead_ms(self) -> object:
        """Measured per-candidate overhead of the sandbox, if known."""
        return (self._info or {}).get("overhead_ms")

    def pool_counters(self) -> dict[str, int]:
        """Pool counters of this process: programs run in the sandbox, timeouts, retries."""
        stats = getattr(self._executor.inner if self._executor else None, "stats", None)
        if stats is None:
            return {}
        data = stats.to_json()
        return {
            "sandbox_executed": data["executed"],
            "timeouts": data["timeouts"],
            "retries": data["retries"],
            "reference_reused": data["reference_reused"],
        }

    def sandbox_report(
        self, results: Sequence[TaskResult], counters: Mapping[str, int]
    ) -> dict[str, Any]:
        """Isolation, per-candidate overhead, execution counters (``counters``: every process's,
        so they are right under xdist too) and the samples' timeout rate, for the JSON report.
        """
        self.isolation()
        info = dict(self._info or {})
        executed = counters.get("sandbox_executed", 0)
        timeouts = counters.get("timeouts", 0)
        info["executed"] = executed
        info["timeouts"] = timeouts
        info["timeout_rate"] = timeouts / executed if executed else 0.0
        info["retries"] = counters.get("retries", 0)
        info["reference_reused"] = counters.get("reference_reused", 0)
        samples = sum(r.n for r in results)
        sample_timeouts = sum(r.outcomes.get("timeout", 0) for r in results)
        info["samples"] = samples
        info["sample_timeouts"] = sample_timeouts
        info["sample_timeout_rate"] = sample_timeouts / samples if samples else 0.0
        return info

    def close(self) -> None:
        """Stop the pool."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    # -- items ---------------------------------------------------------------------------------

    def prefetch(self, items: Sequence[TaskItem]) -> None:
        """Queue every item's programs on the pool now (uncached ones only), a few items at a
        time, so the sandbox starts on the first programs while the rest are still planned.
        """
        jobs: list[Job] = []
        for index, item in enumerate(items, start=1):
            completions = self._supply.peek(item.nodeid)
            if completions is not None:
                timeout = item.task.timeout or self._settings.timeout
                self._plans[item.nodeid] = planned = plan(
                    item.task, completions, timeout, self._settings.extract
                )
                jobs.extend(planned.jobs)
            if index % PREFETCH_ITEMS == 0 or index == len(items):
                self.executor.prefetch(jobs)
                jobs = []

    def run(self, item: TaskItem, model: ModelSpec | None) -> None:
        """Judge one item; raise :class:`TaskFailed` when its criterion is not met."""
        if model is None:
            self._run_reference(item)
            return
        task = item.task
        completions, requested = self._supply.take(item.nodeid, model, task)
        ks = self._settings.ks or (1,)
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - started > PROGRESS_EVERY:
                self._progress.say(f"passk: {item.nodeid}: {done}/{total} programs executed")

        result = evaluate(
            task,
            completions,
            self.executor,
            timeout=task.timeout or self._settings.timeout,
            ks=ks,
            identity=ItemIdentity(model.label, model.spec, item.nodeid),
            n_requested=requested,
            on_progress=progress,
            planned=self._plans.pop(item.nodeid, None),
            mode=self._settings.extract,
        )
        item.stash[RESULT_KEY] = result
        if result.n == 0:
            pytest.skip(NO_SAMPLES.format(task_id=task.task_id, model=model.label))
        item.user_properties.extend(item_properties(result, ks))
        if task.min_pass_at_k is not None:
            k = self._settings.max_k
            value = pass_at_k(result.n, result.c, k) if result.n >= k else math.nan
            if not value >= task.min_pass_at_k:
                shown = "undefined (n < k)" if math.isnan(value) else f"{value:.4f}"
                raise TaskFailed(
                    result, BELOW_MIN.format(k=k, value=shown, threshold=task.min_pass_at_k)
                )
        elif result.c == 0:
            raise TaskFailed(result)

    def prefetch_references(self, items: Sequence[TaskItem]) -> None:
        """Check mode: queue every task's reference on the pool now."""
        jobs = [job for item in items if (job := self._reference_job(item)) is not None]
        self.executor.prefetch(jobs)

    def _reference_job(self, item: TaskItem) -> Job | None:
        task = item.task
        if task.reference is None:
            return None
        timeout = task.timeout or self._settings.timeout
        return Job(task.reference, task.test, task.entry_point, timeout)

    def _run_reference(self, item: TaskItem) -> None:
        task = item.task
        job = self._reference_job(item)
        if job is None or task.reference is None:
            pytest.skip(NO_REFERENCE.format(task_id=task.task_id))
        (verdict,) = self.executor.run([job])
        sample = CandidateResult(
            0, verdict.outcome, verdict.message, "", task.reference, verdict.duration
        )
        identity = ItemIdentity("reference", "reference", item.nodeid)
        result = summarise(
            task, [sample], (1,), identity, 1, 1, verdict.duration, {0: verdict.detail}
        )
        item.stash[RESULT_KEY] = result
        item.user_properties.extend(item_properties(result, (1,)))
        if result.c == 0:
            raise TaskFailed(result, REFERENCE_FAILS)


def _sandbox_info(executor: Executor) -> dict[str, Any]:
    stats = getattr(executor, "stats", None)
    overhead = stats.to_json()["overhead_ms"] if stats is not None else None
    return {"isolation": executor.isolation, "overhead_ms": overhead}
