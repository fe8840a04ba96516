"""The engine's log file and error quoting, without vLLM: the engine's children are stand-ins."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_passk.backends import vllm_process
from pytest_passk.backends.vllm_process import (
    LOG_KEEP_BYTES,
    GeneratedTokens,
    InterruptWatch,
    cpu_dtype,
    engine_log,
    log_tail,
    usable_log,
)

NOISY_CHILD = (
    "import sys, time\n"
    "print('DeprecationWarning: torch.jit.script_method is deprecated', file=sys.stderr)\n"
    "sys.stderr.flush()\n"
    "time.sleep(0.3)\n"  # still writing after the block has ended
    "print('Loading safetensors checkpoint shards: 100%', file=sys.stderr)\n"
)


def test_children_started_in_the_block_write_to_the_log_and_this_process_gets_stderr_back(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "logs" / "vllm.log"
    with engine_log(log):
        child = subprocess.Popen([sys.executable, "-c", NOISY_CHILD])
    os.write(2, b"this process's own line\n")
    child.wait(timeout=60)
    captured = capfd.readouterr()
    assert "this process's own line" in captured.err
    assert "deprecated" not in captured.err and "safetensors" not in captured.err
    text = log.read_text()
    assert "DeprecationWarning" in text and "Loading safetensors checkpoint shards" in text


def test_stderr_comes_back_when_the_block_raises(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    log = tmp_path / "vllm.log"
    with pytest.raises(RuntimeError), engine_log(log):
        raise RuntimeError("engine start failed")
    os.write(2, b"after the failure\n")
    assert "after the failure" in capfd.readouterr().err
    assert "after the failure" not in log.read_text()


def test_no_log_leaves_stderr_alone(capfd: pytest.CaptureFixture[str]) -> None:
    with engine_log(None):
        os.write(2, b"straight to the terminal\n")
    assert "straight to the terminal" in capfd.readouterr().err


def test_a_large_log_is_moved_aside_before_the_next_start(tmp_path: Path) -> None:
    log = tmp_path / "vllm.log"
    log.write_bytes(b"x" * (LOG_KEEP_BYTES + 1))
    with engine_log(log):
        pass
    assert (tmp_path / "vllm.log.1").stat().st_size == LOG_KEEP_BYTES + 1
    assert log.stat().st_size < 100


def test_the_tail_quotes_the_last_lines_and_only_a_progress_bar_s_last_state(
    tmp_path: Path,
) -> None:
    log = tmp_path / "vllm.log"
    log.write_text(
        "--- 2026-11-30 15:00:00 pid 1\n"
        "Loading: 0%\rLoading: 50%\rLoading: 100%\n"
        "\n"
        "RuntimeError: CPU out of memory\n"
    )
    tail = log_tail(log)
    assert tail == (
        f" (vLLM's log: {log}; it ends: Loading: 100% | RuntimeError: CPU out of memory)"
    )
    assert log_tail(None) == ""
    assert log_tail(tmp_path / "absent.log") == ""


def test_a_log_that_cannot_be_opened_leaves_stderr_on_the_terminal(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # The store's "logs" is a file here (as unwritable as a folder of another user's).
    (tmp_path / "logs").write_text("not a folder")
    log = tmp_path / "logs" / "vllm.log"
    assert usable_log(log) is None
    with engine_log(log):
        os.write(2, b"the engine's line\n")
    os.write(2, b"this process's own line\n")
    err = capfd.readouterr().err
    assert "the engine's line" in err and "this process's own line" in err
    folder = tmp_path / "vllm.log"
    folder.mkdir()  # a folder where the file should be
    assert usable_log(folder) is None
    with engine_log(folder):
        os.write(2, b"still here\n")
    assert "still here" in capfd.readouterr().err
    writable = tmp_path / "store" / "logs" / "vllm.log"
    assert usable_log(writable) == writable and writable.parent.is_dir()
    assert usable_log(None) is None


def test_a_log_that_cannot_be_read_is_named_not_quoted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "vllm.log"
    log.write_text("RuntimeError: CPU out of memory\n")

    def unreadable(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(log))

    # Quoted while reporting another error: reading it must not replace that error with its own.
    monkeypatch.setattr(vllm_process, "open", unreadable, raising=False)
    assert log_tail(log) == f" (log: {log})"


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler, whatever this process inherited (a shell's background job,
    as CI may be, starts with SIGINT ignored).
    """
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.mark.usefixtures("python_sigint")
def test_a_ctrl_c_in_the_block_is_noted_and_still_interrupts() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt), InterruptWatch() as watch:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler interrupts the sleep
    assert watch.seen
    assert signal.getsignal(signal.SIGINT) is before
    with InterruptWatch() as quiet:
        pass
    assert not quiet.seen


@pytest.mark.usefixtures("python_sigint")
def test_a_ctrl_c_while_held_interrupts_when_the_hold_ends() -> None:
    done: list[int] = []
    with pytest.raises(KeyboardInterrupt), InterruptWatch() as watch:
        with watch.holding():
            os.kill(os.getpid(), signal.SIGINT)
            for step in range(3):
                time.sleep(0.01)  # the handler runs here, and must not interrupt
                done.append(step)
        done.append(99)  # never reached: the interrupt comes as the hold ends
    assert done == [0, 1, 2] and watch.seen
    with InterruptWatch() as quiet, quiet.holding():
        pass
    assert not quiet.seen
    # A hold that never ends (a store on a hung disk) still yields to a second Ctrl-C.
    with pytest.raises(KeyboardInterrupt), InterruptWatch() as stuck, stuck.holding():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        done.append(3)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # interrupted
        done.append(4)
    assert done == [0, 1, 2, 3]


def test_an_ignored_sigint_stays_ignored() -> None:
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with InterruptWatch() as watch:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert not watch.seen
    finally:
        signal.signal(signal.SIGINT, inherited)


def test_outside_the_main_thread_the_block_runs_unwatched() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen: list[object] = []

    def run() -> None:
        with InterruptWatch():
            seen.append(signal.getsignal(signal.SIGINT))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert seen == [before]


@pytest.mark.parametrize(
    ("cpuinfo", "dtype"),
    [
        ("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n", "float32"),  # AVX2 only: emulated
        ("flags\t\t: avx2 avx512f avx512_bf16\n", None),
        ("flags\t\t: avx2 avx512f amx_bf16 amx_tile\n", None),
        ("Features\t: fp asimd bf16 sve\n", None),  # aarch64 with native bf16
        ("Features\t: fp asimd\n", "float32"),
        ("", None),  # unknown: the model's own dtype
    ],
)
def test_float32_where_the_cpu_has_no_native_bfloat16(cpuinfo: str, dtype: str | None) -> None:
    assert cpu_dtype(cpuinfo) == dtype


class _Output:
    def __init__(self, tokens: list[int]) -> None:
        self.new_token_ids = tokens


class _Outputs:
    def __init__(self, *outputs: _Output) -> None:
        self.outputs = list(outputs)


class _Client:
    def __init__(self) -> None:
        self.steps = [_Outputs(_Output([1]), _Output([2, 3])), _Outputs(), _Outputs(_Output([4]))]

    def get_output(self) -> _Outputs:
        return self.steps.pop(0)


class _Engine:
    def __init__(self) -> None:
        self.engine_core = _Client()


def test_generated_tokens_are_counted_per_step_and_the_outputs_pass_through() -> None:
    engine = _Engine()
    counter = GeneratedTokens(engine)
    assert counter.available
    first = engine.engine_core.get_output()
    assert [o.new_token_ids for o in first.outputs] == [[1], [2, 3]]
    assert counter.count == 3
    engine.engine_core.get_output()
    engine.engine_core.get_output()
    assert counter.count == 4


def test_without_the_engine_client_nothing_is_counted() -> None:
    counter = GeneratedTokens(object())
    assert not counter.available and counter.count == 0
