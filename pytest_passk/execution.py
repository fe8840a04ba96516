"""Running an item's programs: the sandbox pool behind the verdict cache, and its lifecycle.

The pool starts before any backend loads a model (so its workers never copy model memory). Every
item's programs are queued on it up front, so workers never idle at the end of one item while
the next item's programs wait. Pure core: a pool that cannot start is a
:class:`~pytest_passk.errors.SandboxUnavailable`, which the shell turns into a usage error.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_passk.backends import Completion
from pytest_passk.differential import DEFAULT_EXAMPLES, Differential
from pytest_passk.errors import SandboxUnavailable, TaskFormatError
from pytest_passk.evaluation import ItemIdentity, Plan, evaluate, plan, summarise
from pytest_passk.extract import ExtractMode
from pytest_passk.oracle import Oracle
from pytest_passk.progress import PROGRESS_EVERY, Progress
from pytest_passk.results import CandidateResult, RunCounters, TaskResult
from pytest_passk.sandbox import Executor, Job, SandboxInfo
from pytest_passk.sandbox.cache import CachingExecutor, VerdictCache
from pytest_passk.sandbox.isolation import IsolationLevel
from pytest_passk.tasks import Task

__all__ = ["SANDBOX_FAILED", "Execution", "ExecutionSetup"]

SANDBOX_FAILED = "passk: the sandbox could not start: {error}"
#: Items planned per batch handed to the pool ahead of time (each batch's references first).
PREFETCH_ITEMS = 8


@dataclass(frozen=True, slots=True)
class ExecutionSetup:
    """What the sandbox needs to know of the run."""

    workers: int
    timeout: float
    #: Required isolation level (``--passk-isolation``), ``None`` for the strongest available.
    isolation: IsolationLevel | None
    store: Path
    #: Directories candidates must not see (the project's own tree).
    hide: tuple[str, ...] = ()
    #: ``--passk-extract``: how answers become programs.
    extract: ExtractMode = ExtractMode.AUTO
    #: ``--passk-augment`` and ``--passk-examples``: stronger tests (:mod:`..oracle`).
    augment: bool = False
    examples: int = DEFAULT_EXAMPLES


class Execution:
    """The sandbox pool and verdict cache of one process, started on first use."""

    def __init__(
        self, setup: ExecutionSetup, progress: Progress, *, warn: Callable[[str], None]
    ) -> None:
        self._setup = setup
        self._progress = progress
        self._warn = warn
        self._executor: CachingExecutor | None = None
        self._info: SandboxInfo | None = None
        self._plans: dict[str, Plan] = {}
        self.oracle = Oracle(
            augment=setup.augment, examples=setup.examples, store=setup.store, warn=warn
        )

    # -- the sandbox ---------------------------------------------------------------------------

    @property
    def executor(self) -> CachingExecutor:
        """The sandbox pool behind the verdict cache, started on first use.

        Raises:
            SandboxUnavailable: when the required isolation is missing or the OS refused.

        """
        if self._executor is None:
            pool = start_pool(self._setup, self._setup.workers)
            self._info = SandboxInfo.of(pool)
            self._executor = CachingExecutor(pool, VerdictCache(self._setup.store, warn=self._warn))
        return self._executor

    @property
    def started(self) -> bool:
        """Whether this process's pool is running."""
        return self._executor is not None

    def info(self) -> SandboxInfo:
        """Isolation and overhead, starting the pool if it has not started."""
        _ = self.executor
        assert self._info is not None
        return self._info

    def counters(self) -> RunCounters:
        """Programs executed and verdicts reused by this process (zero before the pool starts)."""
        if self._executor is None:
            return RunCounters()
        stats = self._executor.inner.stats
        return RunCounters(
            executed=self._executor.executed,
            cached=self._executor.reused,
            sandbox_executed=stats.executed,
            timeouts=stats.timeouts,
            retries=stats.retries,
            reference_reused=stats.reference_reused,
        )

    def close(self) -> None:
        """Stop the pool."""
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    # -- items ---------------------------------------------------------------------------------

    def prefetch(self, items: Sequence[tuple[str, Task, list[Completion] | None]]) -> None:
        """Queue the programs of ``(nodeid, task, samples)`` items on the pool now (uncached ones
        only), a few items at a time, so the sandbox starts on the first programs while the rest
        are still planned.
        """
        jobs: list[Job] = []
        # Every task's stronger tests first, with one reference runner for all of them.
        self.oracle.prepare([(task, self._timeout(task)) for _, task, c in items if c is not None])
        for index, (nodeid, task, completions) in enumerate(items, start=1):
            if completions is not None:
                try:
                    differential = self.differential(task)
                except TaskFormatError:
                    differential = None  # not planned: the item reports the error when it runs
                else:
                    self._plans[nodeid] = planned = plan(
                        task, completions, self._timeout(task), self._setup.extract, differential
                    )
                    jobs.extend(planned.jobs)
            if index % PREFETCH_ITEMS == 0 or index == len(items):
                self.executor.prefetch(jobs)
                jobs = []

    def evaluate(
        self,
        task: Task,
        completions: Sequence[Completion],
        identity: ItemIdentity,
        *,
        ks: Sequence[int],
        n_requested: int,
    ) -> TaskResult:
        """Judge one item's samples (with the plan :meth:`prefetch` made, if it made one)."""
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if time.perf_counter() - started > PROGRESS_EVERY:
                self._progress.say(f"passk: {identity.nodeid}: {done}/{total} programs executed")

        return evaluate(
            task,
            completions,
            self.executor,
            timeout=self._timeout(task),
            ks=ks,
            identity=identity,
            n_requested=n_requested,
            on_progress=progress,
            planned=self._plans.pop(identity.nodeid, None),
            mode=self._setup.extract,
            differential=self.differential(task),
        )

    def differential(self, task: Task) -> Differential | None:
        """The task's stronger tests (built once per task; ``None`` without).

        Raises:
            TaskFormatError: its inputs cannot be drawn, or its reference does not load.

        """
        return self.oracle.differential(task, self._timeout(task))

    def prefetch_references(self, tasks: Sequence[Task]) -> None:
        """Check mode: queue every task's reference on the pool now."""
        self.oracle.prepare([(task, self._timeout(task)) for task in tasks])
        jobs = []
        for task in tasks:
            try:
                job = self.reference_job(task)
            except TaskFormatError:
                continue  # its item fails with the message when it runs
            if job is not None:
                jobs.append(job)
        self.executor.prefetch(jobs)

    def reference_job(self, task: Task) -> Job | None:
        """The job that runs ``task``'s reference solution, if it has one."""
        if task.reference is None:
            return None
        timeout = self._timeout(task)
        return Job(
            task.reference, task.test, task.entry_point, timeout,
            differential=self.oracle.differential(task, timeout),
        )  # fmt: skip

    def evaluate_reference(self, task: Task, nodeid: str) -> TaskResult | None:
        """Check mode: run ``task``'s reference; ``None`` when it has none."""
        job = self.reference_job(task)
        if job is None:
            return None
        (verdict,) = self.executor.run([job])
        sample = CandidateResult(
            0,
            verdict.outcome,
            verdict.message,
            "",
            job.program,
            verdict.duration,
            task_error=verdict.task_error,
        )
        identity = ItemIdentity("reference", "reference", nodeid)
        return summarise(
            task, [sample], (1,), identity, 1, 1, verdict.duration, {0: verdict.detail}
        )

    def _timeout(self, task: Task) -> float:
        return task.timeout or self._setup.timeout


def start_pool(setup: ExecutionSetup, workers: int) -> Executor:
    """Start a sandbox pool of ``workers`` workers at the required isolation level.

    Raises:
        SandboxUnavailable: when the level is missing here or the OS refused to start it.

    """
    from pytest_passk.sandbox.pool import IsolationUnavailable, PoolExecutor

    try:
        return PoolExecutor(workers, required=setup.isolation, hide=list(setup.hide))
    except IsolationUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from None
    except OSError as exc:
        raise SandboxUnavailable(SANDBOX_FAILED.format(error=exc)) from None


def probe_sandbox(setup: ExecutionSetup) -> SandboxInfo:
    """Isolation of a one-worker pool, started and stopped (a process that runs no items)."""
    pool = start_pool(setup, 1)
    try:
        return SandboxInfo.of(pool)
    finally:
        pool.close()


def sandbox_report(
    info: SandboxInfo, results: Sequence[TaskResult], counters: RunCounters
) -> dict[str, Any]:
    """Isolation, per-candidate overhead, execution counters (every process's, so they are right
    under xdist too) and the samples' timeout rate, for the JSON report.
    """
    executed = counters.sandbox_executed
    samples = sum(r.n for r in results)
    sample_timeouts = sum(r.outcomes.get("timeout", 0) for r in results)
    return {
        "isolation": info.isolation,
        "overhead_ms": info.overhead_ms,
        "executed": executed,
        "timeouts": counters.timeouts,
        "timeout_rate": counters.timeouts / executed if executed else 0.0,
        "retries": counters.retries,
        "reference_reused": counters.reference_reused,
        "samples": samples,
        "sample_timeouts": sample_timeouts,
        "sample_timeout_rate": sample_timeouts / samples if samples else 0.0,
    }
