"""The verdict cache: what re-executes and what does not."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from pytest_passk.results import Outcome
from pytest_passk.sandbox import ExecutorStats, Job, Verdict
from pytest_passk.sandbox.cache import VERDICT_REPAIRED, CachingExecutor, VerdictCache, job_key
from pytest_passk.tasks import CheckTest, FunctionTest


class CountingExecutor:
    def __init__(self, outcome: Outcome = Outcome.PASSED, isolation: str = "process") -> None:
        self.outcome = outcome
        self._isolation = isolation
        self.ran: list[str] = []

    @property
    def isolation(self) -> str:
        return self._isolation

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        self.ran.extend(job.program for job in jobs)
        return [Verdict(self.outcome, "m", "d", 0.01) for _ in jobs]

    def prefetch(self, jobs: Sequence[Job]) -> None:
        pass

    @property
    def stats(self) -> ExecutorStats:
        return ExecutorStats(executed=len(self.ran))

    def close(self) -> None:
        pass


CHECK = CheckTest("def check(candidate):\n    assert candidate(1, 2) == 3\n")
JOBS = [Job(f"def add(a, b):\n    return a + b  # {i}\n", CHECK, "add", 5.0) for i in range(3)]


def cached(
    tmp_path: Path, inner: CountingExecutor, warn: list[str] | None = None
) -> CachingExecutor:
    sink = warn if warn is not None else []
    return CachingExecutor(inner, VerdictCache(tmp_path, warn=sink.append))


def test_unchanged_jobs_run_once_across_processes(tmp_path: Path) -> None:
    first = CountingExecutor()
    verdicts = cached(tmp_path, first).run(JOBS)
    again = CountingExecutor()
    executor = cached(tmp_path, again)  # a fresh cache object: read back from disk
    assert executor.run(JOBS) == verdicts
    assert again.ran == [] and executor.reused == 3 and executor.executed == 0


@pytest.mark.parametrize(
    "change",
    [
        {"test": CheckTest("def check(candidate):\n    assert candidate(2, 2) == 4\n")},
        {"program": "def add(a, b):\n    return b + a\n"},
        {"entry_point": "plus"},
        {"timeout": 9.0},
    ],
    ids=["test", "program", "entry_point", "timeout"],
)
def test_a_changed_job_runs_again(tmp_path: Path, change: dict[str, object]) -> None:
    cached(tmp_path, CountingExecutor()).run(JOBS[:1])
    inner = CountingExecutor()
    cached(tmp_path, inner).run([dataclasses.replace(JOBS[0], **change)])  # type: ignore[arg-type]
    assert len(inner.ran) == 1


def test_another_isolation_runs_again(tmp_path: Path) -> None:
    cached(tmp_path, CountingExecutor()).run(JOBS)
    inner = CountingExecutor(isolation="bubblewrap")
    cached(tmp_path, inner).run(JOBS)
    assert len(inner.ran) == 3


def test_decorated_task_verdicts_are_never_cached(tmp_path: Path) -> None:
    # What a test function does depends on everything its module imports, which no key follows.
    module = tmp_path / "test_mod.py"
    module.write_text("from helper import EXPECTED\ndef test_add(candidate):\n    assert 1\n")
    test = FunctionTest("test_mod", str(module), "test_add", (str(tmp_path),))
    job = Job("def add(a, b):\n    return a + b\n", test, "add", 5.0)
    assert job_key(job, "strict") is None
    cached(tmp_path, CountingExecutor()).run([job])
    again = CountingExecutor()
    cached(tmp_path, again).run([job])
    assert len(again.ran) == 1


def test_timeouts_are_not_cached(tmp_path: Path) -> None:
    cached(tmp_path, CountingExecutor(Outcome.TIMEOUT)).run(JOBS)
    inner = CountingExecutor()
    cached(tmp_path, inner).run(JOBS)
    assert len(inner.ran) == 3


def test_progress_counts_cached_and_executed(tmp_path: Path) -> None:
    cached(tmp_path, CountingExecutor()).run(JOBS[:2])
    seen: list[tuple[int, int]] = []
    cached(tmp_path, CountingExecutor()).run(JOBS, progress=lambda d, t: seen.append((d, t)))
    assert seen[0] == (2, 3)


def test_a_damaged_verdict_file_is_repaired_with_a_warning(tmp_path: Path) -> None:
    cached(tmp_path, CountingExecutor()).run(JOBS)
    for shard in (tmp_path / "verdicts").glob("*.jsonl"):
        # Every record damaged, whichever shards the jobs' keys fell into.
        lines = shard.read_bytes().splitlines(keepends=True)
        shard.write_bytes(b"".join(line[:-6] + b"\n" for line in lines))
    warned: list[str] = []
    inner = CountingExecutor()
    cached(tmp_path, inner, warned).run(JOBS)
    assert len(inner.ran) == 3
    assert warned and all(w.endswith(VERDICT_REPAIRED.split("}")[-1]) for w in warned)
    clean = CountingExecutor()
    quiet: list[str] = []
    cached(tmp_path, clean, quiet).run(JOBS)
    assert clean.ran == [] and quiet == []


def test_a_changed_harness_does_not_reuse_verdicts() -> None:
    job = JOBS[0]
    assert job_key(job, "strict", "harness-a") != job_key(job, "strict", "harness-b")
