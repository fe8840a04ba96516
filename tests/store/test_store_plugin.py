"""The store inside pytest runs: resume after kill -9, xdist, concurrent runs, repairs, verdicts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from pytest_passk.store import SampleStore
from pytest_passk.terminal import REPLAYED_TOO, STORE_SUMMARY

from .store_scripted import read_log

HOOK = """

def pytest_passk_make_backend(config, model, context):
    if not model.name.startswith("scripted"):
        return None
    log = os.environ.get("PASSK_SCRIPT_LOG")
    delay = float(os.environ.get("PASSK_SCRIPT_DELAY", "0"))
    return ScriptedBackend(model.name, Path(log) if log else None, delay)
"""
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
N = 6
ARGS = ("--passk=1,5", f"--passk-n={N}", "--model=openai:scripted-1", "-p", "no:cacheprovider")
ALL = {
    (f"test_tasks.py::{name}", i)
    for name in ("test_add", "test_add3", "test_add4")
    for i in range(N)
}


@pytest.fixture
def log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    source = Path(__file__).with_name("store_scripted.py").read_text()
    pytester.makeconftest(source + HOOK)
    pytester.makepyfile(test_tasks=TASKS)
    path = pytester.path / "draws.log"
    monkeypatch.setenv("PASSK_SCRIPT_LOG", str(path))
    monkeypatch.setenv("PASSK_SCRIPT_DELAY", "0")
    return path


def drawn(log: Path) -> Counter[tuple[str, int]]:
    return Counter((task, index) for task, index, _ in read_log(log))


def summary(drawn: int, reused: int, executed: int, cached: int, root: Path) -> str:
    return STORE_SUMMARY.format(
        root=root / ".passk", drawn=drawn, reused=reused, executed=executed, cached=cached
    )


def start(pytester: pytest.Pytester, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", *ARGS, *args],
        cwd=pytester.path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, which the test may kill whole
    )


def stored(root: Path) -> int:
    return sum(len(s.samples) for g in SampleStore(root / ".passk").groups() for s in g.streams)


def test_a_run_that_draws_and_replays_counts_both(pytester: pytest.Pytester, log: Path) -> None:
    recording = pytester.path / "recorded.jsonl"
    recording.write_text(
        "".join(
            f'{{"task_id": "{task}", "completion": "    return 0\\n"}}\n'
            for task in (
                "test_tasks.py::test_add",
                "test_tasks.py::test_add3",
                "test_tasks.py::test_add4",
            )
        )
    )
    result = pytester.runpytest_subprocess(*ARGS, f"--model=replay:{recording}")
    result.stdout.fnmatch_lines(
        [summary(18, 0, 6, 0, pytester.path), REPLAYED_TOO.format(replayed=3)]
    )


def test_a_rerun_draws_nothing(pytester: pytest.Pytester, log: Path) -> None:
    first = pytester.runpytest_subprocess(*ARGS)
    first.assert_outcomes(passed=3)
    first.stdout.fnmatch_lines([summary(18, 0, 3, 0, pytester.path)])
    second = pytester.runpytest_subprocess(*ARGS)
    second.assert_outcomes(passed=3)
    # Decorated tasks' verdicts are not cached (their tests depend on what they import).
    second.stdout.fnmatch_lines([summary(0, 18, 3, 0, pytester.path)])
    assert drawn(log) == Counter(ALL)


def test_raising_n_draws_only_the_new_samples(pytester: pytest.Pytester, log: Path) -> None:
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    more = pytester.runpytest_subprocess(*ARGS, "--passk-n=10")
    more.assert_outcomes(passed=3)
    more.stdout.fnmatch_lines(["passk store *: 12 samples drawn, 18 read from the store;*"])
    assert set(drawn(log).values()) == {1} and len(drawn(log)) == 30


def test_a_changed_temperature_draws_fresh_samples(pytester: pytest.Pytester, log: Path) -> None:
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    pytester.runpytest_subprocess(*ARGS, "--passk-temperature=0.2").assert_outcomes(passed=3)
    temperatures = Counter(t for _, _, t in read_log(log))
    assert temperatures == {"0.8": 18, "0.2": 18}


def test_a_corrupt_store_file_is_repaired_with_a_warning(
    pytester: pytest.Pytester, log: Path
) -> None:
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    (stream,) = [
        s
        for g in SampleStore(pytester.path / ".passk").groups()
        for s in g.streams
        if s.task_id.endswith("test_add")
    ]
    stream.path.write_bytes(stream.path.read_bytes()[:-7])  # tear the last record
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"passk: warning: sample store file {stream.path}: dropped 1 damaged record(s)*"]
    )
    result.stdout.fnmatch_lines(["passk store *: 1 samples drawn, 17 read from the store;*"])
    assert drawn(log)[("test_tasks.py::test_add", N - 1)] == 2


def test_an_edited_test_re_executes(pytester: pytest.Pytester, log: Path) -> None:
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=3)
    pytester.makepyfile(test_tasks=TASKS.replace("== 10", "== 11"))
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([summary(0, 18, 3, 0, pytester.path)])


def test_xdist_workers_draw_each_sample_once(pytester: pytest.Pytester, log: Path) -> None:
    result = pytester.runpytest_subprocess(*ARGS, "-n", "2")
    result.assert_outcomes(passed=3)
    assert drawn(log) == Counter(ALL)


def test_concurrent_runs_draw_each_sample_once(
    pytester: pytest.Pytester, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSK_SCRIPT_DELAY", "0.01")
    runs = [start(pytester), start(pytester)]
    outputs = [run.communicate(timeout=120)[0].decode() for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert drawn(log) == Counter(ALL)


def test_kill_9_mid_generation_keeps_every_received_sample(
    pytester: pytest.Pytester, log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PASSK_SCRIPT_DELAY", "0.05")
    run = start(pytester)
    deadline = time.monotonic() + 60
    while len(read_log(log)) < 7 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.01)
    os.killpg(run.pid, signal.SIGKILL)
    run.communicate()
    assert run.returncode == -signal.SIGKILL
    received = stored(pytester.path)
    assert 7 <= received < 18  # killed mid-generation, after the seventh sample
    monkeypatch.setenv("PASSK_SCRIPT_DELAY", "0")
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(
        [f"passk store *: {18 - received} samples drawn, {received} read from the store;*"]
    )
    assert stored(pytester.path) == 18
    # (A kill between keeping a sample and logging it leaves it unlogged, never logged twice.)
    counts = drawn(log)
    assert set(counts) <= ALL
    assert set(counts.values()) == {1}, "a sample received before the kill was drawn again"
