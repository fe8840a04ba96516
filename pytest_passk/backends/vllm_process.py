"""The vLLM engine's processes: their environment, start, log file and shutdown.

vLLM's offline engine runs in child processes (an engine core and its workers) that write their
own log lines, torch's warnings and progress bars to the standard error they inherit. Started
with :func:`engine_log` active, they write to a log file under the sample store instead, so a
pytest run shows the plugin's lines only; an engine that fails is reported with the file's path
and its last lines.

vLLM and torch are imported only when an engine starts.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from pytest_passk.errors import BackendError

__all__ = [
    "ENGINE_FAILED",
    "LOG_NAME",
    "SHUTDOWN_SECONDS",
    "GeneratedTokens",
    "InterruptWatch",
    "cpu_dtype",
    "cpu_environment",
    "engine_children",
    "engine_log",
    "log_tail",
    "one_line",
    "reap",
    "refused",
    "release_cuda",
    "start_engine",
    "usable_log",
]

ENGINE_FAILED = "vLLM could not start {model}: {error}{log}"
#: The engine's log file, in the store's ``logs`` folder.
LOG_NAME = "vllm.log"
#: The CPU engine's KV cache in GiB when the user has not chosen (vLLM's own default is 4).
CPU_KVCACHE_GIB = "1"
#: vLLM's step and start timeouts on the CPU, in seconds (its defaults: 300 and 600).
CPU_SLOW_TIMEOUT = "1800"
#: Seconds the engine gets to stop by itself before its processes are killed.
SHUTDOWN_SECONDS = 10.0
#: Size past which the log is moved aside (to ``vllm.log.1``) before an engine starts.
LOG_KEEP_BYTES = 8 << 20
#: Lines of the engine's log quoted when it fails.
TAIL_LINES = 3


def cpu_dtype(cpuinfo: str | None = None) -> str | None:
    """``"float32"`` on a CPU without native bfloat16 arithmetic, else ``None`` (the model's own).

    vLLM runs a bfloat16 model in bfloat16 on any x86 CPU, but without AVX512-BF16 or AMX each
    operation is emulated: on a 2-core AVX2 machine SmolLM2 generated 11.8 tokens/s in bfloat16
    and 44.2 in float32 (24 samples of 128 tokens, same load). ``cpuinfo`` is /proc/cpuinfo's
    text (read if omitted); where it cannot be read, the model's dtype stays.
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="replace")
        except OSError:
            return None
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):  # x86, and aarch64 (whose "bf16" is native)
            flags.update(value.split())
    if not flags or flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        return None
    return "float32"


def cpu_environment() -> None:
    """The CPU engine's settings, unless the user chose them; set before vLLM is imported."""
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", CPU_KVCACHE_GIB)
    # The CPU engine compiles its kernels during its first steps; on a small, busy machine that
    # outlasts vLLM's 5-minute step timeout, which kills the engine.
    for name in ("VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS", "VLLM_ENGINE_READY_TIMEOUT_S"):
        os.environ.setdefault(name, CPU_SLOW_TIMEOUT)
    # Dynamo with the eager backend (vLLM's own CPU CI switch): inductor's C++ compile kept
    # SmolLM2 loading for over 6 minutes on an idle 2-core machine; VLLM_CPU_CI_ENV=0 asks for
    # it (faster per token, cached after the first start).
    os.environ.setdefault("VLLM_CPU_CI_ENV", "1")


def usable_log(path: Path | None) -> Path | None:
    """``path`` when the engine's log can be written there (its folder made), else ``None``.

    A store that is not this user's to write, or a ``logs`` that is not a folder, must not stop
    the engine: its output then goes to the terminal, as with no log at all.
    """
    if path is None:
        return None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError:
        return None
    return path


@contextlib.contextmanager
def engine_log(path: Path | None) -> Iterator[None]:
    """Point this process's standard error (file descriptor 2) at ``path`` for the block.

    The engine's processes, started inside the block, inherit the file and keep writing to it
    after the block; this process gets its standard error back. ``None``, or a file that cannot
    be opened (see :func:`usable_log`), leaves it alone.
    """
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(OSError):
            if path.stat().st_size > LOG_KEEP_BYTES:  # one older log is kept beside it
                path.replace(path.with_name(path.name + ".1"))
        log = open(path, "ab")  # noqa: SIM115 (closed below, once duplicated onto stderr)
    except OSError:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} pid {os.getpid()}\n".encode())
            log.flush()
            os.dup2(log.fileno(), 2)
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def log_tail(path: Path | None, lines: int = TAIL_LINES) -> str:
    """`` (vLLM's log, PATH, ends: ...)`` for an error message, or ``""`` without a log."""
    if path is None or not path.is_file():
        return ""
    try:
        with open(path, "rb") as file:
            file.seek(max(0, file.seek(0, os.SEEK_END) - 16384))
            text = file.read().decode(errors="replace")
    except OSError:  # quoted while another error is reported: that one must come through
        return f" (log: {path})"
    # Progress bars redraw with carriage returns; only their last state is worth quoting.
    kept = [line.rsplit("\r", 1)[-1].strip() for line in text.split("\n")]
    kept = [line for line in kept if line and not line.startswith("--- ")][-lines:]
    return f" (vLLM's log: {path}; it ends: {' | '.join(kept)})" if kept else f" (log: {path})"


def start_engine(args: dict[str, Any], log: Path | None) -> Any:
    """Start the engine; once more if the first start dies (a rare, silent failure on the CPU).

    The engine's repr is fixed at once: vLLM's ``LLM.__repr__`` asks the engine's workers for a
    description of the model, which never returns once they are gone, and pytest formats every
    object on an interrupted traceback (Ctrl-C, which also stops the workers) with ``repr``.
    """
    with engine_log(log):
        # Importing vLLM (torch's deprecation warnings) belongs in the log as much as its start.
        from vllm import LLM

        try:
            llm = LLM(**args)
        except Exception as first:
            gc.collect()
            try:
                llm = LLM(**args)
            except Exception as exc:
                error = ENGINE_FAILED.format(model=args["model"], error=one_line(exc), log="")
                raise BackendError(error + log_tail(log)) from first
    if hasattr(llm, "_cached_repr"):
        llm._cached_repr = f"LLM(model={args['model']!r})"
    return llm


class InterruptWatch:
    """Notes a Ctrl-C (SIGINT) in its block, and lets it interrupt as it would have.

    A terminal's Ctrl-C reaches the engine's processes too, which stop at once: the engine's
    death may then reach this process before its own ``KeyboardInterrupt`` does, and must be
    reported as the interrupt it is, not as a failed engine. Inside :meth:`holding` the
    interrupt waits for the end of the hold (samples already received are being stored); a
    second Ctrl-C interrupts at once.
    Python handles signals in the main thread only; elsewhere the block runs unwatched.
    """

    def __init__(self) -> None:
        self.seen = False
        self._previous: Any = None
        self._holding = False
        self._held: tuple[int, FrameType | None] | None = None

    def __enter__(self) -> InterruptWatch:
        previous = signal.getsignal(signal.SIGINT)
        if threading.current_thread() is threading.main_thread() and callable(previous):
            self._previous = previous
            signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """A Ctrl-C in this block interrupts when it ends, not inside it (a second one does)."""
        self._holding = True
        try:
            yield
        finally:
            self._holding = False
            held, self._held = self._held, None
            if held is not None and self._previous is not None:
                self._previous(*held)

    def _note(self, number: int, frame: FrameType | None) -> Any:
        self.seen = True
        if self._holding and self._held is None:
            self._held = (number, frame)
            return None
        return self._previous(number, frame)


class GeneratedTokens:
    """Counts the tokens an engine generates, in finished samples or not, for a true rate.

    Every sample of a batch runs at once, so the tokens of finished samples alone undercount
    the engine's work for most of a run. Each engine step's outputs carry the tokens it added
    per request (``EngineCoreOutput.new_token_ids``); this wraps the engine client's
    ``get_output`` to add them up, at a few microseconds a step. Where a vLLM version lacks
    the method, :attr:`available` is false and the count stays 0.
    """

    def __init__(self, engine: Any) -> None:
        self.count = 0
        client: Any = getattr(engine, "engine_core", None)
        original: Any = getattr(client, "get_output", None)
        self.available = callable(original)
        if not self.available:
            return

        def counting() -> Any:
            outputs = original()
            for output in getattr(outputs, "outputs", None) or ():
                self.count += len(getattr(output, "new_token_ids", None) or ())
            return outputs

        client.get_output = counting


def one_line(exc: BaseException) -> str:
    """``Type: last line of the message``."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[-1] if text else ''}"


def refused(exc: BaseException) -> bool:
    """Whether vLLM refused a request (a prompt too long), rather than failed.

    vLLM raised ``ValueError`` for that before 0.30, and now ``VLLMValidationError``, one of its
    ``VLLMClientError``s ("caused by the request"); matched by name, so any version works.
    """
    return isinstance(exc, ValueError) or any(
        cls.__name__ == "VLLMClientError" for cls in type(exc).__mro__
    )


def engine_children(before: set[int]) -> set[int]:
    """The :mod:`multiprocessing` children of this process that are not in ``before``: those an
    engine started in between (its engine core), which :func:`reap` may wait for.
    """
    return {child.pid for child in multiprocessing.active_children() if child.pid} - before


def reap(pids: set[int]) -> None:
    """Wait for the engine's processes ``pids``, so none is left behind, not even as a zombie.

    Only those: another backend's engine, started later in this process, keeps running.
    """
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    for child in multiprocessing.active_children():
        if child.pid in pids:
            child.join(max(0.0, deadline - time.monotonic()))
            if child.is_alive():
                child.kill()
                child.join(1.0)


def release_cuda() -> None:
    """Tear vLLM's distributed state down and return the GPU memory torch still caches."""
    try:
        import torch
        from vllm.distributed.parallel_state import (
            destroy_distributed_environment,
            destroy_model_parallel,
        )
    except ImportError:
        return
    destroy_model_parallel()
    destroy_distributed_environment()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
