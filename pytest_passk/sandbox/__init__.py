"""Running candidates: the job and verdict records and the :class:`Executor` seam.

An executor runs each candidate program against its task's test in a process of its own and
returns a :class:`Verdict` decided by the harness, never by the candidate's exit code or output.

The modules: :mod:`~pytest_passk.sandbox.pool` (the executor: a pool of warm workers),
:mod:`~pytest_passk.sandbox.slot` (one worker process), :mod:`~pytest_passk.sandbox.isolation`
(levels), :mod:`~pytest_passk.sandbox.cache` (the verdict cache, an executor decorator),
:mod:`~pytest_passk.sandbox.protocol` (every message between the processes),
:mod:`~pytest_passk.sandbox.plain` (the codec of what crosses from a candidate) and
:mod:`~pytest_passk.sandbox.inside` (what runs in a worker, one module per process role).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pytest_passk.differential import Differential
from pytest_passk.results import Outcome
from pytest_passk.tasks import TaskTest

__all__ = ["Executor", "ExecutorStats", "Job", "SandboxInfo", "Verdict"]


@dataclass(frozen=True, slots=True)
class Job:
    """One candidate program to judge."""

    program: str
    test: TaskTest
    entry_point: str | None
    timeout: float
    #: The task's reference solution; the pool derives the candidates' CPU budget from its time.
    reference: str | None = None
    #: Stronger tests: inputs and the reference's outputs, run after the test in the same
    #: candidate process (``None``: the task's own tests only).
    differential: Differential | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the harness observed. ``message`` is one line; ``detail`` a capped traceback."""

    outcome: Outcome
    message: str
    detail: str
    duration: float
    #: The harness failed, not the program (an ``error`` that says nothing of it): never
    #: cached, never inherited.
    harness_error: bool = False
    #: The task cannot run (its test failed to load, asks for a fixture the sandbox lacks, has
    #: unreadable parametrize marks): an ``error`` that says nothing of the program either.
    task_error: bool = False
    #: With stronger tests: the outcome on the task's own tests alone (``outcome`` is on the
    #: stronger tests too); ``None`` without stronger tests.
    original: Outcome | None = None
    #: With stronger tests: a stable hash of the candidate's outputs (or exception types) on
    #: the generated inputs, computed without the test's verdict (for clustering by behaviour).
    behaviour: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutorStats:
    """Counters of one executor, at one moment (per process: xdist workers each keep their own)."""

    #: Programs judged (a candidate that inherits its reference's verdict included).
    executed: int = 0
    timeouts: int = 0
    #: Programs judged again after a timeout while mostly off the CPU (starved by load).
    retries: int = 0
    #: Candidates whose program is their task's reference: judged by the reference's own run.
    reference_reused: int = 0
    #: Seconds the sandbox itself costs per candidate (measured at start-up; 0 if unknown).
    overhead: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        rate = self.timeouts / self.executed if self.executed else 0.0
        return {
            "executed": self.executed,
            "timeouts": self.timeouts,
            "timeout_rate": rate,
            "retries": self.retries,
            "reference_reused": self.reference_reused,
            "overhead_ms": round(self.overhead * 1000, 2),
        }


@dataclass(frozen=True, slots=True)
class SandboxInfo:
    """What the report header and the JSON report say of the sandbox in force."""

    #: The isolation level and its layers, e.g. ``strict (rlimits, scrubbed env, ...)``.
    isolation: str
    #: Milliseconds the sandbox itself costs per candidate.
    overhead_ms: float

    @classmethod
    def of(cls, executor: Executor) -> SandboxInfo:
        """The info of a running executor."""
        return cls(executor.isolation, executor.stats.to_json()["overhead_ms"])

    def to_json(self) -> dict[str, Any]:
        """Plain data for the JSON report."""
        return {"isolation": self.isolation, "overhead_ms": self.overhead_ms}


class Executor(Protocol):
    """Runs candidate programs in isolation. Implementations must be safe to call from threads."""

    @property
    def isolation(self) -> str:
        """Name of the isolation level in force, for the report header."""
        ...

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        """Judge every job, in parallel where possible; verdicts in the order of ``jobs``.

        ``progress(done, total)`` is called as jobs finish, from any thread.
        """
        ...

    def prefetch(self, jobs: Sequence[Job]) -> None:
        """Start judging ``jobs`` now, where the executor can; a later :meth:`run` of the same
        jobs collects their verdicts. An executor that cannot start early does nothing.
        """
        ...

    @property
    def stats(self) -> ExecutorStats:
        """The executor's counters so far."""
        ...

    def close(self) -> None:
        """Release workers and temporary files."""
        ...
