r"""pytest-passk: sample LLM code, run each candidate in a sandbox, report the unbiased pass@k.

Public API::

    import pytest_passk as passk

    @passk.task(prompt="def add(a, b):\\n    \\"\\"\\"Return a + b.\\"\\"\\"\\n", entry_point="add")
    def test_add(candidate):
        assert candidate(2, 3) == 5

This module imports neither pytest nor any backend library: test modules import it inside the
sandbox too.
"""

from __future__ import annotations

from pytest_passk.differential import Approx, approx
from pytest_passk.errors import (
    BackendError,
    BackendUnavailable,
    ModelSpecError,
    PassKError,
    RecordingError,
    SandboxError,
    StoreError,
    TaskFormatError,
)
from pytest_passk.estimate import pass_at_k
from pytest_passk.raised import CandidateError, candidate_exception
from pytest_passk.results import CandidateResult, Outcome, TaskResult
from pytest_passk.tasks import Task, task

__all__ = [
    "Approx",
    "BackendError",
    "BackendUnavailable",
    "CandidateError",
    "CandidateResult",
    "ModelSpecError",
    "Outcome",
    "PassKError",
    "RecordingError",
    "SandboxError",
    "StoreError",
    "Task",
    "TaskFormatError",
    "TaskResult",
    "approx",
    "candidate_exception",
    "pass_at_k",
    "task",
]
