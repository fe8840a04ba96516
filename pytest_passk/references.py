"""Running trusted reference solutions on many inputs, in a fresh interpreter of their own.

The runner process is :mod:`pytest_passk.sandbox.reference` (stdlib and the plain-data codec),
started as ``python -I -S -B`` (never a fork of pytest, so it never copies a model's memory),
with a scrubbed environment, in a scratch directory. One runner serves every task of a batch in
turn; each input has a time budget, and a runner that misses one is killed and replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAX_STUCK", "START_BUDGET", "Batch", "observations", "reference_observations"]

#: Inputs a reference may fail to answer in time before the rest of its task is left out.
MAX_STUCK = 5
#: Wall seconds for the runner to start and load a reference.
START_BUDGET = 30.0
SANDBOX_DIR = Path(__file__).parent / "sandbox"

#: The runner's start: the sandbox directory as a package of its own (``-I -S``: the installed
#: package is not importable), so the runner and the codec load without the rest.
BOOT = (
    "import sys\n"
    "package = type(sys)('_passk_ref')\n"
    f"package.__path__ = [{str(SANDBOX_DIR)!r}]\n"
    "sys.modules['_passk_ref'] = package\n"
    "import _passk_ref.reference as runner\n"
    "runner.main()\n"
)


@dataclass(frozen=True, slots=True)
class Batch:
    """One task's reference run: its program, entry point and encoded inputs; optionally CPU
    seconds per input and for the whole batch, past which the runner answers ``drop`` (it stops
    the reference with a CPU timer, without a restart).
    """

    program: str
    entry_point: str
    inputs: Sequence[Any]
    input_cpu: float | None = None
    task_cpu: float | None = None


def reference_observations(
    program: str, entry_point: str, inputs: Sequence[Any], budget: float
) -> list[dict[str, Any] | None]:
    """The reference's observation on each encoded argument list (``None``: no answer within
    ``budget`` seconds, or the runner died on it).

    Raises:
        RuntimeError: the reference does not load.

    """
    (found,) = observations([Batch(program, entry_point, inputs)], budget)
    if isinstance(found, RuntimeError):
        raise found
    return found


def observations(
    batches: Sequence[Batch], budget: float
) -> list[list[dict[str, Any] | None] | RuntimeError]:
    """Each batch's observations (or why its reference does not load), from one runner.

    Every line is written at once (by a thread: the pipe may fill) and the answers read as they
    come, each within ``budget`` of the previous one, so the exchange is bound by the
    references' own time, not by round trips. A runner that misses an answer is killed and a new
    one started after that input; a task whose reference misses :data:`MAX_STUCK` answers keeps
    no more.
    """
    from pytest_passk.sandbox.pool import site_dirs

    site = list(site_dirs())
    results: list[list[dict[str, Any] | None] | RuntimeError] = [[] for _ in batches]
    stuck = [0] * len(batches)
    # Each line encoded once: a restart sends the rest again.
    encoded = [[_line(x) for x in batch.inputs] for batch in batches]
    position = (0, 0)  # (batch, input) where the next runner starts
    while position[0] < len(batches):
        lines: list[bytes] = []
        order: list[tuple[int, int]] = []
        for b in range(position[0], len(batches)):
            batch = batches[b]
            start = position[1] if b == position[0] else 0
            if stuck[b] >= MAX_STUCK or isinstance(results[b], RuntimeError):
                continue
            header = {"program": batch.program, "entry_point": batch.entry_point,
                      "site_dirs": site, "input_cpu": batch.input_cpu,
                      "task_cpu": batch.task_cpu}  # fmt: skip
            lines.append(_line(header))
            order.append((b, -1))
            lines.extend(encoded[b][start:])
            order.extend((b, i) for i in range(start, len(batch.inputs)))
        answered = _run(lines, budget)
        for (b, i), answer in zip(order, answered, strict=False):
            if i < 0:
                if answer is None or "load_error" in answer:
                    error = answer.get("load_error") if answer else "it did not start"
                    results[b] = RuntimeError(str(error))
                continue
            found = results[b]
            if not isinstance(found, RuntimeError):
                found.append(answer)
        if len(answered) >= len(order):
            break
        b, i = order[len(answered)]  # the line the runner did not answer in time
        found = results[b]
        if i < 0:
            results[b] = RuntimeError("it did not load in time")
            position = (b + 1, 0)
            continue
        if not isinstance(found, RuntimeError):
            found.append(None)
        stuck[b] += 1
        position = (b, i + 1) if i + 1 < len(batches[b].inputs) else (b + 1, 0)
    for b, batch in enumerate(batches):
        found = results[b]
        if not isinstance(found, RuntimeError):
            found.extend([None] * (len(batch.inputs) - len(found)))
    return results


def _line(value: Any) -> bytes:
    return json.dumps(value, allow_nan=False).encode() + b"\n"


def _run(lines: Sequence[bytes], budget: float) -> list[Any]:
    """One runner's answers to ``lines``, up to the first not answered within ``budget``."""
    from pytest_passk.sandbox.pool import real_python
    from pytest_passk.sandbox.slot import safe_environment

    payload = b"".join(lines)
    with tempfile.TemporaryDirectory(prefix="passk-ref-") as scratch:
        process = subprocess.Popen(
            [real_python(), "-I", "-S", "-B", "-c", BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=scratch,
            env=safe_environment(),
            start_new_session=True,
        )
        writer = threading.Thread(target=_feed, args=(process, payload), daemon=True)
        writer.start()
        try:
            assert process.stdout is not None
            reader = _Lines(process.stdout.fileno())
            answers: list[Any] = []
            for line in lines:
                answer = reader.next(START_BUDGET if line.startswith(b"{") else budget)
                if answer is None:
                    break
                answers.append(answer)
            return answers
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, 9)
            process.wait()
            writer.join(timeout=5)
            for stream in (process.stdin, process.stdout):
                if stream is not None:
                    with contextlib.suppress(OSError):
                        stream.close()


def _feed(process: subprocess.Popen[bytes], payload: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        assert process.stdin is not None
        process.stdin.write(payload)
        process.stdin.close()


class _Lines:
    """JSON lines from a descriptor, each within a deadline (``None``: none came)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def next(self, budget: float) -> Any:
        deadline = time.monotonic() + budget
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        try:
            return json.loads(line)
        except ValueError:
            return None
