"""Running an item's programs: the sandbox pool behind the verdict cache, and its lifecycle.

The pool starts only when a program is to run (never for ``--collect-only``, on the xdist
controller, or for a run whose samples hold no code to run), in a background thread while the
remaining items are planned; its workers are fresh interpreters, so a model loaded meanwhile is
never copied into them. Every item's programs are queued on it up front, so workers never idle at
the end of one item while the next item's programs wait. Pure core: a pool that cannot start is a
:class:`~pytest_passk.errors.SandboxUnavailable`, which the shell turns into a usage error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_passk.backends import Completion
from pytest_passk.differential import DEFAULT_EXAMPLES, Differential
from pytest_passk.errors import SandboxUnavailable, TaskFormatError
from pytest_passk.evaluation import ItemIdentity, Plan, evaluate, plan, summarise
from pytest_passk.extract import ExtractMode
from pytest_passk.oracle import Oracle
from pytest_passk.progress import PROGRESS_EVERY, Progress
from pytest_passk.results import CandidateResult, RunCounters, TaskResult
from pytest_passk.sandbox import ExecutorStats, Job, SandboxInfo, Verdict
from pytest_passk.sandbox.cache import CachingExecutor, VerdictCache
from pytest_passk.sandbox.isolation import IsolationLevel
from pytest_passk.tasks import Task

if TYPE_CHECKING:
    from pytest_passk.sandbox.pool import PoolExecutor

__all__ = ["NOT_STARTED", "SANDBOX_FAILED", "SANDBOX_LINE", "Execution", "ExecutionSetup"]

SANDBOX_FAILED = "passk: the sandbox could not start: {error}"
#: The line that says how candidates are isolated, once the pool has started.
SANDBOX_LINE = "passk: isolation={isolation}, overhead={overhead_ms} ms per candidate"
#: What the report says of a sandbox that never started (no program had to run).
NOT_STARTED = SandboxInfo("not started (no program ran)", 0.0)
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
    """The sandbox pool and verdict cache of one process, started when first needed."""

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
        # The start in the background: the pool being started (so close() can abort it), its
        # thread, its failure, and the jobs prefetched meanwhile (handed over once it runs).
        self._lock = threading.Lock()
        self._pool: PoolExecutor | None = None
        self._starting: threading.Thread | None = None
        self._failure: str | None = None
        self._waiting: list[Job] = []
        self._closed = False
        self._announced = False

    # -- the sandbox ---------------------------------------------------------------------------

    def start_soon(self) -> None:
        """Begin starting the pool in a background thread (once); :attr:`executor` waits for it."""
        with self._lock:
            if self._starting is not None or self._closed:
                return
            self._pool = pool = new_pool(self._setup, self._setup.workers)
            self._starting = threading.Thread(
                target=self._start, args=(pool,), name="passk-pool-start"
            )
            self._starting.start()

    def _start(self, pool: PoolExecutor) -> None:
        """The background start: the pool, its verdict cache, then the jobs queued meanwhile."""
        try:
            start_pool(pool)
            executor = CachingExecutor(pool, VerdictCache(self._setup.store, warn=self._warn))
            info = SandboxInfo.of(pool)
        except SandboxUnavailable as exc:
            self._failure = str(exc)
            return
        except BaseException as exc:  # never a pool left running from a thread that died
            pool.close()
            self._failure = SANDBOX_FAILED.format(error=exc)
            raise
        with self._lock:
            if self._closed:  # close() ran meanwhile and has stopped the pool
                return
            self._executor, self._info = executor, info
            waiting, self._waiting = self._waiting, []
            # Under the lock: a prefetch from the items' thread queues behind these.
            if waiting:
                executor.prefetch(waiting)

    @property
    def executor(self) -> CachingExecutor:
        """The sandbox pool behind the verdict cache, started (or waited for) on first use.

        Raises:
            SandboxUnavailable: when the required isolation is missing or the OS refused.

        """
        if self._executor is None:
            self.start_soon()
            thread = self._starting
            if thread is not None:
                thread.join()  # Ctrl-C interrupts the wait; close() then stops the start
            if self._executor is None:
                raise SandboxUnavailable(
                    self._failure or SANDBOX_FAILED.format(error="it was shut down")
                )
        if not self._announced and self._info is not None:
            # Said by the thread that waited first: the one that runs items (and owns the
            # terminal, where this process has one), before any item's result is shown.
            self._announced = True
            info = self._info
            line = SANDBOX_LINE.format(isolation=info.isolation, overhead_ms=info.overhead_ms)
            self._progress.say(line, force=True)
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

    def started_info(self) -> SandboxInfo | None:
        """Isolation and overhead of the pool if it runs; never starts it."""
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
        """Stop the pool, or its start if it is still starting; wait until no worker is left."""
        with self._lock:
            self._closed = True
            pool, executor, self._executor = self._pool, self._executor, None
            thread = self._starting
        if executor is not None:
            executor.close()
        elif pool is not None:
            pool.close()  # a start in progress: its workers are killed and it fails fast
        if thread is not None:
            thread.join()

    def _queue(self, jobs: list[Job]) -> None:
        """Hand ``jobs`` to the pool, or keep them for it while it starts."""
        if not jobs:
            return
        self.start_soon()
        with self._lock:
            executor = self._executor
            if executor is None and not self._closed and self._failure is None:
                self._waiting.extend(jobs)
                return
        (executor or self.executor).prefetch(jobs)

    # -- items ---------------------------------------------------------------------------------

    def prefetch(
        self, items: Sequence[tuple[str, Task, list[Completion] | None]], *, queue: bool = True
    ) -> None:
        """Plan the programs of ``(nodeid, task, samples)`` items and queue them on the pool now
        (uncached ones only), a few items at a time, so the sandbox starts on the first programs
        while the rest are still planned. The pool starts only if there is a program to run, and
        has started when this returns (so no item's time includes it).

        Args:
            items: Every item this process may run, with its samples (``None``: none came).
            queue: ``False`` plans and starts the pool only (an xdist worker does not know
                which items it will be sent).

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
                # The first jobs start the pool in the background; the rest are planned while
                # it starts, and it takes what was queued meanwhile once it runs.
                if queue:
                    self._queue(jobs)
                elif jobs:
                    self.start_soon()
                jobs = []
        if self._starting is not None:
            _ = self.executor  # before the items run: its failure is the run's, said once

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
            _OnDemand(self),
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
        if jobs:  # check mode without references starts no pool
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


class _OnDemand:
    """The pool as one item's evaluation sees it: started only if the item has a program to run
    (samples without code, or an item whose every sample failed to extract, start nothing).
    """

    def __init__(self, execution: Execution) -> None:
        self._execution = execution

    @property
    def isolation(self) -> str:
        return self._execution.executor.isolation

    @property
    def stats(self) -> ExecutorStats:
        return self._execution.executor.stats

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        return self._execution.executor.run(jobs, progress) if jobs else []

    def prefetch(self, jobs: Sequence[Job]) -> None:
        self._execution._queue(list(jobs))

    def close(self) -> None:
        """The pool is the run's: :meth:`Execution.close` stops it."""


def new_pool(setup: ExecutionSetup, workers: int) -> PoolExecutor:
    """A pool of ``workers`` workers at the required isolation level, not started yet (no
    process runs until :func:`start_pool`).
    """
    from pytest_passk.sandbox.pool import PoolExecutor

    return PoolExecutor(workers, required=setup.isolation, hide=list(setup.hide), start=False)


def start_pool(pool: PoolExecutor) -> None:
    """Start ``pool``'s workers.

    Raises:
        SandboxUnavailable: when the level is missing here or the OS refused to start it.

    """
    from pytest_passk.sandbox.pool import IsolationUnavailable

    try:
        pool.start()
    except IsolationUnavailable as exc:
        raise SandboxUnavailable(str(exc)) from None
    except OSError as exc:
        raise SandboxUnavailable(SANDBOX_FAILED.format(error=exc)) from None


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
