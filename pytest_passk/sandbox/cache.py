"""Cached execution verdicts, so re-running a report with unchanged tests re-executes nothing.

:class:`CachingExecutor` wraps any :class:`~pytest_passk.sandbox.Executor` and implements the same
Protocol. A verdict is keyed by everything that can change it: the candidate program, the task's
test (a ``check`` source, or a decorated test's module file by content), the entry point, every
other field of the :class:`~pytest_passk.sandbox.Job`, the inner executor's isolation and the
Python version. Timeouts are never cached: whether a candidate times out depends on the load of
the machine, and a loaded run must not make a slow-but-correct candidate fail forever. Nor are
errors of the harness itself (a worker that stopped, a sandbox shut down): they say nothing of
the program.

The cache lives in the sample store's directory, but the store never imports the sandbox: this
module uses the store's record format (:mod:`pytest_passk.store.records`), not the other way round.

Verdicts live in ``verdicts/<xx>.jsonl`` (256 shards by the key's first byte), appended without a
lock: a record is one checksummed line, and two processes that judge the same program append the
same verdict, which is harmless. Damaged lines are dropped with a warning and rewritten away.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import filelock

from pytest_passk.results import Outcome
from pytest_passk.sandbox import Executor, ExecutorStats, Job, Verdict
from pytest_passk.store.keys import digest, plain
from pytest_passk.store.records import append_record, parse_file, write_atomically
from pytest_passk.tasks import FunctionTest

__all__ = ["VERDICTS_DIR", "VERDICT_REPAIRED", "CachingExecutor", "VerdictCache", "job_key"]

#: The cache's directory in the store.
VERDICTS_DIR = "verdicts"

VERDICT_SCHEMA = "pytest-passk/verdict/v1"
VERDICT_REPAIRED = (
    "verdict cache file {path}: dropped {count} damaged record(s); those programs run again"
)


def harness_digest() -> str:
    """A digest of the sandbox's own code: a changed harness may judge differently, so its
    verdicts must not be served from an older harness's cache.
    """
    import pytest_passk.sandbox as sandbox

    folder = Path(sandbox.__file__).parent
    hasher = hashlib.sha256()
    for source in sorted(folder.rglob("*.py")):
        name = source.relative_to(folder).as_posix()
        hasher.update(name.encode() + b"\0" + source.read_bytes())
    return hasher.hexdigest()


def job_key(job: Job, isolation: str, harness: str = "") -> str | None:
    """The cache key of ``job`` under ``isolation``; ``None`` when its verdict must not be kept.

    A dataset task's test is self-contained source, so program + test + limits + isolation
    decide the verdict. A decorated task's test is a function whose behaviour also depends on
    whatever its module imports (helpers, conftest, data files, the library under test), which
    no key can follow: its verdicts are never cached.
    """
    if isinstance(job.test, FunctionTest):
        return None
    fields = plain(job)
    fields["test"] = {"kind": type(job.test).__name__, **fields["test"]}
    return digest(
        {
            "schema": VERDICT_SCHEMA,
            "job": fields,
            "isolation": isolation,
            "harness": harness,
            "python": sys.version,
        }
    )


class VerdictCache:
    """Verdicts by key, loaded one shard at a time on first use."""

    def __init__(self, root: Path, warn: Callable[[str], None] | None = None) -> None:
        self.root = root / VERDICTS_DIR
        self._warn = warn or (lambda message: None)
        self._shards: dict[str, dict[str, Verdict]] = {}
        self._mutex = threading.Lock()

    def get(self, key: str) -> Verdict | None:
        """The cached verdict of ``key``, if any."""
        with self._mutex:
            return self._shard(key[:2]).get(key)

    def put(self, key: str, verdict: Verdict) -> None:
        """Keep ``verdict`` (timeouts and the harness's own failures are not kept; see the
        module docstring).
        """
        if verdict.outcome is Outcome.TIMEOUT or verdict.harness_error:
            return
        record = {
            "k": key,
            "outcome": verdict.outcome.value,
            "message": verdict.message,
            "detail": verdict.detail,
            "duration": verdict.duration,
        }
        if verdict.original is not None:
            record["original"] = verdict.original.value
        if verdict.behaviour is not None:
            record["behaviour"] = verdict.behaviour
        with self._mutex:
            self._shard(key[:2])[key] = verdict
            self.root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._path(key[:2]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                append_record(fd, record)
            finally:
                os.close(fd)

    def _path(self, shard: str) -> Path:
        return self.root / f"{shard}.jsonl"

    def _shard(self, shard: str) -> dict[str, Verdict]:
        if shard not in self._shards:
            self._shards[shard] = self._load(self._path(shard))
        return self._shards[shard]

    def _load(self, path: Path) -> dict[str, Verdict]:
        parsed = parse_file(path)
        verdicts: dict[str, Verdict] = {}
        good: list[dict[str, Any]] = []
        bad = len(parsed.bad_lines)
        for _, record in parsed.records:
            try:
                verdict = Verdict(
                    Outcome(record["outcome"]),
                    str(record["message"]),
                    str(record["detail"]),
                    float(record["duration"]),
                    original=Outcome(record["original"]) if "original" in record else None,
                    behaviour=str(record["behaviour"]) if "behaviour" in record else None,
                )
                key = str(record["k"])
            except (KeyError, TypeError, ValueError):
                bad += 1
                continue
            verdicts[key] = verdict
            good.append(record)
        if bad:
            # A short lock: a concurrent append during the rewrite may be lost, which only
            # costs one re-execution later.
            with filelock.FileLock(path.with_suffix(".lock"), timeout=30):
                write_atomically(path, good)
            self._warn(VERDICT_REPAIRED.format(path=path, count=bad))
        return verdicts


class CachingExecutor:
    """An :class:`~pytest_passk.sandbox.Executor` that runs only jobs without a cached verdict."""

    def __init__(self, inner: Executor, cache: VerdictCache) -> None:
        self.inner = inner
        self.cache = cache
        self.executed = 0
        self.reused = 0
        self._harness = harness_digest()
        self._mutex = threading.Lock()
        #: Each job's key, computed once: prefetch and run both need it.
        self._keys: dict[Job, str | None] = {}

    @property
    def isolation(self) -> str:
        """The inner executor's isolation."""
        return self.inner.isolation

    @property
    def stats(self) -> ExecutorStats:
        """The inner executor's counters (the cache's own are :attr:`executed` and
        :attr:`reused`).
        """
        return self.inner.stats

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        """Cached verdicts where the key matches; the inner executor for the rest."""
        keys = [self._key(job) for job in jobs]
        verdicts: list[Verdict | None] = [
            None if key is None else self.cache.get(key) for key in keys
        ]
        todo = [i for i, verdict in enumerate(verdicts) if verdict is None]
        cached = len(jobs) - len(todo)
        with self._mutex:
            self.reused += cached
            self.executed += len(todo)
        if progress is not None and cached:
            progress(cached, len(jobs))
        if todo:
            inner_progress = None
            if progress is not None:
                report = progress

                def inner_progress(done: int, total: int) -> None:
                    report(cached + done, len(jobs))

            fresh = self.inner.run([jobs[i] for i in todo], progress=inner_progress)
            for i, verdict in zip(todo, fresh, strict=True):
                verdicts[i] = verdict
                key = keys[i]
                if key is not None:
                    self.cache.put(key, verdict)
        return [v for v in verdicts if v is not None]

    def prefetch(self, jobs: Sequence[Job]) -> None:
        """Let the inner executor start the jobs that have no cached verdict early (the sandbox
        pool does); a later :meth:`run` collects them.
        """
        keys = [self._key(job) for job in jobs]
        self.inner.prefetch(
            [
                job
                for job, key in zip(jobs, keys, strict=True)
                if key is None or self.cache.get(key) is None
            ]
        )

    def _key(self, job: Job) -> str | None:
        if job not in self._keys:
            self._keys[job] = job_key(job, self.inner.isolation, self._harness)
        return self._keys[job]

    def close(self) -> None:
        """Close the inner executor."""
        self.inner.close()
