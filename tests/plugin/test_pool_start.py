"""When the sandbox pool starts: only when a program is to run, in the process that runs items,
and never leaving a worker behind (Ctrl-C while it starts, or a start that fails).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_passk.execution import NOT_STARTED, SANDBOX_FAILED
from pytest_passk.session import SANDBOX_COLLECT_ONLY, SANDBOX_LATER

# Records, in every process of the run (the xdist workers too), which process started a pool
# and which sandbox workers it spawned; and, once pytest-passk has shut down (trylast), which
# of those workers are still running.
RECORDER = """
import importlib
import os
import signal
import time

import pytest

# By sys.modules, as pytest-passk itself imports it (pytester may have dropped and re-imported
# the module since the package's attribute was set).
pool = importlib.import_module("pytest_passk.sandbox.pool")

ORIGINAL = (pool.PoolExecutor.start, pool.PoolExecutor._measure_overhead, pool.Slot)
LOG = os.environ["POOL_LOG"]


def _log(line):
    with open(LOG, "a", encoding="utf-8") as log:
        log.write(line + "\\n")


def _start(self):
    _log(f"start {os.getpid()}")
    return ORIGINAL[0](self)


def _measure(self):
    if os.environ.get("POOL_INTERRUPT"):  # Ctrl-C while the pool starts
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.5)
    return ORIGINAL[1](self)


class _Slot(ORIGINAL[2]):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        _log(f"slot {os.getpid()} {self.proc.pid}")


def pytest_configure(config):
    if os.environ.get("POOL_INTERRUPT"):
        # A shell's background job (CI's, sometimes) inherits SIGINT ignored: Ctrl-C as a
        # terminal delivers it needs Python's own handler.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    role = "worker" if hasattr(config, "workerinput") else "main"
    _log(f"{role} {os.getpid()}")
    pool.PoolExecutor.start, pool.PoolExecutor._measure_overhead = _start, _measure
    pool.Slot = _Slot


def pytest_runtest_call(item):
    _log(f"call {os.getpid()}")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    pool.PoolExecutor.start, pool.PoolExecutor._measure_overhead, pool.Slot = ORIGINAL
    with open(LOG, encoding="utf-8") as log:
        lines = [line.split() for line in log]
    for line in lines:
        if line[0] == "slot" and int(line[1]) == os.getpid():
            if os.path.exists(f"/proc/{line[2]}"):
                _log(f"alive {line[2]}")
"""

TASK = """
import pytest_passk as passk

@passk.task(prompt="def add(a, b):\\n", entry_point="add")
def test_add(candidate):
    assert candidate(2, 3) == 5

@passk.task(prompt="def sub(a, b):\\n", entry_point="sub")
def test_sub(candidate):
    assert candidate(3, 2) == 1
"""
NO_CODE = ["    return (\n", "I cannot help with that."]


@pytest.fixture
def log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = pytester.path / "pools.log"
    monkeypatch.setenv("POOL_LOG", str(path))
    pytester.makeconftest(RECORDER)
    pytester.makepyfile(test_tasks=TASK)
    return path


def _samples(pytester: pytest.Pytester, completions: list[str]) -> str:
    rows = [
        {"task_id": f"test_tasks.py::{name}", "completion": text}
        for name in ("test_add", "test_sub")
        for text in completions
    ]
    path = pytester.path / "samples.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return f"--model=replay:{path}"


def _read(log: Path) -> dict[str, list[list[str]]]:
    lines: dict[str, list[list[str]]] = {}
    for line in log.read_text().splitlines() if log.exists() else []:
        kind, *rest = line.split()
        lines.setdefault(kind, []).append(rest)
    return lines


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--passk=1", "-p", "no:cacheprovider", "-p", "no:randomly", *args)


@pytest.mark.parametrize("xdist", [False, True], ids=["solo", "xdist"])
def test_samples_without_code_start_no_sandbox(
    pytester: pytest.Pytester, log: Path, xdist: bool
) -> None:
    report = pytester.path / "r.json"
    result = _run(
        pytester, _samples(pytester, NO_CODE), f"--passk-report={report}",
        *(["-n", "2"] if xdist else ["-p", "no:xdist"]),
    )  # fmt: skip
    result.assert_outcomes(failed=2)
    lines = _read(log)
    assert len(lines["main"]) == 1 and len(lines.get("worker", [])) == (2 if xdist else 0)
    assert "start" not in lines and "slot" not in lines
    sandbox = json.loads(report.read_text())["sandbox"]
    assert sandbox["isolation"] == NOT_STARTED.isolation and sandbox["executed"] == 0
    result.stdout.fnmatch_lines([f"*{SANDBOX_LATER}*"])
    result.stdout.no_fnmatch_line("passk: isolation=*")


def test_collect_only_starts_no_sandbox(pytester: pytest.Pytester, log: Path) -> None:
    result = _run(pytester, _samples(pytester, ["    return a + b\n"]), "--collect-only")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines([SANDBOX_COLLECT_ONLY])
    assert "start" not in _read(log)


def test_one_pool_starts_when_a_program_is_to_run(pytester: pytest.Pytester, log: Path) -> None:
    # One item's samples hold no code, the other's do: the pool starts once, and says so
    # before the items run.
    samples = _samples(pytester, ["    return a + b\n", *NO_CODE])
    result = _run(pytester, samples, "-p", "no:xdist")
    result.assert_outcomes(passed=1, failed=1)
    lines = _read(log)
    assert lines["start"] == lines["main"]
    out = result.stdout.lines
    said = [i for i, line in enumerate(out) if line.startswith("passk: isolation=")]
    first_item = next(i for i, line in enumerate(out) if line.startswith("test_tasks.py"))
    assert len(said) == 1 and said[0] < first_item


def test_the_xdist_controller_starts_no_sandbox(pytester: pytest.Pytester, log: Path) -> None:
    report = pytester.path / "r.json"
    samples = _samples(pytester, ["    return a + b\n", "    return a - b\n"])
    result = _run(pytester, samples, "-n", "2", f"--passk-report={report}")
    result.assert_outcomes(passed=2)
    lines = _read(log)
    (main,) = lines["main"]
    starters = {pid for (pid,) in lines["start"]}
    assert main[0] not in starters
    assert starters <= {pid for (pid,) in lines["worker"]} and starters
    # Each worker's pool starts before its first item runs: no item's time includes it.
    order = [line.split() for line in log.read_text().splitlines()]
    for pid in starters:
        mine = [kind for kind, who, *_ in order if who == pid and kind in ("start", "call")]
        assert mine[0] == "start", mine
    # The report names the workers' sandbox, as they reported it.
    sandbox = json.loads(report.read_text())["sandbox"]
    assert sandbox["isolation"] != NOT_STARTED.isolation and sandbox["overhead_ms"] > 0
    result.stdout.fnmatch_lines(["sandbox: isolation=*"])
    result.stdout.no_fnmatch_line(f"sandbox: isolation={NOT_STARTED.isolation}")


def test_ctrl_c_while_the_pool_starts_leaves_no_worker(
    pytester: pytest.Pytester, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POOL_INTERRUPT", "1")
    samples = _samples(pytester, ["    return a + b\n"])
    result = pytester.runpytest_subprocess(
        "--passk=1", samples, "-p", "no:cacheprovider", "-p", "no:randomly", "-p", "no:xdist"
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    lines = _read(log)
    assert len(lines["start"]) == 1 and len(lines["slot"]) >= 1
    assert "alive" not in lines, lines


def test_a_sandbox_that_cannot_start_is_a_usage_error(
    pytester: pytest.Pytester, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pytest_passk.sandbox.slot import Slot

    def refuse(self: Slot, timeout: float) -> object:
        raise OSError("no namespaces for you")

    monkeypatch.setattr(Slot, "hello", refuse)
    result = _run(pytester, _samples(pytester, ["    return a + b\n"]), "-p", "no:xdist")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = SANDBOX_FAILED.format(error="no namespaces for you")
    result.stderr.fnmatch_lines([f"*{message}*"])
    assert "alive" not in _read(log)
    assert all(not os.path.exists(f"/proc/{pid}") for _, pid in _read(log)["slot"])
