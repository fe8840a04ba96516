"""The vLLM backend inside pytest runs: kill and resume through the store, and xdist.

Each run here starts its own engine in a pytest subprocess (30-60 s each on two cores).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_passk.backends.vllm import ENGINE_LOG_ENV
from pytest_passk.session import INTERRUPTED_SAMPLING
from pytest_passk.store import SampleStore
from tests.support.processes import run_in_group

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

TASKS = """
import pytest_passk as passk


@passk.task(prompt="def add(a, b):\\n", entry_point="add")
def test_add(candidate):
    assert candidate(2, 3) == 5


@passk.task(prompt="def add3(a, b, c):\\n", entry_point="add3")
def test_add3(candidate):
    assert candidate(1, 2, 3) == 6


@passk.task(prompt="def add4(a, b, c, d):\\n", entry_point="add4")
def test_add4(candidate):
    assert candidate(1, 2, 3, 4) == 10
"""


def stored(root: Path) -> int:
    store = root / ".passk"
    if not store.exists():
        return 0
    return sum(len(s.samples) for g in SampleStore(store).groups() for s in g.streams)


@pytest.fixture
def run_dir(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    pytester.makepyfile(test_tasks=TASKS)
    monkeypatch.setenv(ENGINE_LOG_ENV, str(pytester.path / "engines.log"))
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "1")
    return pytester.path


def args(model: Path, n: int, max_tokens: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pytest",
        "--passk=1",
        f"--passk-n={n}",
        f"--passk-max-tokens={max_tokens}",
        f"--model=vllm-cpu:{model}",
        "-p",
        "no:cacheprovider",
    ]


def engine_starts(root: Path) -> int:
    log = root / "engines.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_kill_mid_batch_keeps_every_received_sample(run_dir: Path, tiny_model: Path) -> None:
    n, total = 60, 180
    run = subprocess.Popen(
        args(tiny_model, n, 256),
        cwd=run_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the kill takes the engine too
    )
    deadline = time.monotonic() + 900  # engine start: 30-60 s, minutes on a loaded machine
    received = 0
    while time.monotonic() < deadline and run.poll() is None:
        received = stored(run_dir)
        if received >= 5:
            break
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    output = run.communicate()[0].decode()
    assert run.returncode == -signal.SIGKILL, output
    received = stored(run_dir)
    assert 5 <= received < total, output
    result = run_in_group(args(tiny_model, n, 256), cwd=run_dir, timeout=600)
    assert stored(run_dir) == total
    assert f"{total - received} samples drawn, {received} read from the store" in result.stdout, (
        result.stdout + result.stderr
    )
    assert engine_starts(run_dir) == 2


def group_members(pgid: int) -> list[int]:
    """The processes still in process group ``pgid`` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # Fields after the command's closing parenthesis: state, ppid, pgrp, ...
            if int(stat.rsplit(")", 1)[1].split()[2]) == pgid:
                members.append(int(entry.name))
    return members


def test_ctrl_c_mid_batch_ends_the_run_and_keeps_every_received_sample(
    run_dir: Path, tiny_model: Path
) -> None:
    run = subprocess.Popen(
        [*args(tiny_model, 60, 256), "--passk-report=report.json"],
        cwd=run_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # As from a terminal: a shell's background job (CI's, sometimes) has SIGINT ignored,
        # which its children inherit.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and run.poll() is None and stored(run_dir) < 5:
        time.sleep(0.05)
    # A terminal's Ctrl-C reaches the whole foreground group: pytest and the engine's processes.
    os.killpg(run.pid, signal.SIGINT)
    try:
        # Generous for a loaded machine; the bug this guards against never ended at all
        # (pytest's report of the interrupt asked the stopped engine for its repr).
        output = run.communicate(timeout=180)[0].decode()
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        pytest.fail("still running 180 s after Ctrl-C:\n" + run.communicate()[0].decode())
    assert run.returncode == pytest.ExitCode.INTERRUPTED, output
    assert INTERRUPTED_SAMPLING.split(";")[0] in output
    # The engine's own account of the interrupt (a fatal-error traceback) is in its log.
    assert "EngineCore" not in output and "Traceback (most recent" not in output, output
    assert stored(run_dir) >= 5
    # The report is written, and says it covers a run that did not finish.
    assert json.loads((run_dir / "report.json").read_text())["complete"] is False
    deadline = time.monotonic() + 60
    while group_members(run.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert group_members(run.pid) == [], output


def test_xdist_loads_the_model_once(run_dir: Path, tiny_model: Path) -> None:
    result = run_in_group([*args(tiny_model, 4, 32), "-n", "2"], cwd=run_dir, timeout=600)
    assert stored(run_dir) == 12, result.stdout + result.stderr
    assert engine_starts(run_dir) == 1, result.stdout
    # The engine's processes write their warnings and progress bars to the store's log.
    log = run_dir / ".passk" / "logs" / "vllm.log"
    assert "Loading safetensors checkpoint shards" in log.read_text()
    assert "safetensors" not in result.stdout + result.stderr
    assert "DeprecationWarning" not in result.stdout + result.stderr
