"""Running candidates: the job and verdict records and the :class:`Executor` seam.

An executor runs each candidate program against its task's test in a process of its own and
returns a :class:`Verdict` decided by the harness, never by the candidate's exit code or output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pytest_passk.results import Outcome
from pytest_passk.tasks import TaskTest

__all__ = ["Executor", "Job", "Verdict"]


@dataclass(frozen=True, slots=True)
class Job:
    """One candidate program to judge."""

    program: str
    test: TaskTest
    entry_point: str | None
    timeout: float
    #: The task's reference solution; the pool derives the candidates' CPU budget from its time.
    reference: str | None = None


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

    def close(self) -> None:
        """Release workers and temporary files."""
        ...
