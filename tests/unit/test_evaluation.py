"""Judging a task's samples: de-duplication, verdicts per sample, and the task's result."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

import pytest

from pytest_passk.backends import Completion
from pytest_passk.estimate import pass_at_k
from pytest_passk.evaluation import NO_CODE, ItemIdentity, evaluate, plan, program_key
from pytest_passk.prompts import CompletionForm
from pytest_passk.results import Outcome
from pytest_passk.sandbox import Executor, ExecutorStats, Job, Verdict
from pytest_passk.tasks import CheckTest, Task

TASK = Task(
    "T/1",
    "def inc(x):\n",
    "inc",
    CheckTest("def check(candidate):\n    assert candidate(1) == 2\n"),
)
IDENTITY = ItemIdentity("m", "replay:m.jsonl", "data.jsonl::T/1[m]")


class FakeExecutor:
    """Judges by executing the program in-process: enough for the bookkeeping under test."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self.lock = threading.Lock()

    @property
    def isolation(self) -> str:
        return "none (test double)"

    def run(
        self, jobs: Sequence[Job], progress: Callable[[int, int], None] | None = None
    ) -> list[Verdict]:
        verdicts = []
        for done, job in enumerate(jobs, start=1):
            with self.lock:
                self.jobs.append(job)
            verdicts.append(self._judge(job))
            if progress is not None:
                progress(done, len(jobs))
        return verdicts

    def _judge(self, job: Job) -> Verdict:
        if "while True" in job.program:
            return Verdict(Outcome.TIMEOUT, f"timed out after {job.timeout} s", "", job.timeout)
        namespace: dict[str, object] = {}
        try:
            exec(job.program, namespace)
        except Exception as exc:
            return Verdict(Outcome.ERROR, repr(exc), f"Traceback: {exc!r}", 0.01)
        assert isinstance(job.test, CheckTest) and job.entry_point is not None
        try:
            exec(job.test.source, namespace)
            namespace["check"](namespace[job.entry_point])  # type: ignore[operator]
        except AssertionError as exc:
            return Verdict(Outcome.FAILED, "AssertionError", f"Traceback: {exc!r}", 0.01)
        return Verdict(Outcome.PASSED, "", "", 0.01)

    def prefetch(self, jobs: Sequence[Job]) -> None:
        pass

    @property
    def stats(self) -> ExecutorStats:
        return ExecutorStats(executed=len(self.jobs))

    def close(self) -> None:
        pass


def conforms(executor: Executor) -> Executor:
    return executor


def continuation(text: str, tokens: int = 0) -> Completion:
    return Completion(
        text, CompletionForm.CONTINUATION, prompt_tokens=tokens, completion_tokens=tokens
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("def f():\n    return 1\n", "def f():\n    return 1"),
        ("def f():\n    return 1\n", "def f():  # comment\n\n    return (1)\n"),
        ("x = [1,2]\n", "x = [\n    1,\n    2,\n]\n"),
        ("def f():\n    pass\n", "def f():\n    return None\n"),  # the same code
        ("x = 2 * 3\n", "x = 6\n"),
        ("def f(:\n  pass   \n", "\ndef f(:\n  pass\n\n"),  # unparseable: normalised text
    ],
)
def test_program_key_equal(a: str, b: str) -> None:
    assert program_key(a) == program_key(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("def f():\n    return 1\n", "def f():\n    return 2\n"),
        ("def f():\n    '''doc'''\n", "def f():\n    '''other doc'''\n"),
        ("x = 'a b'\n", "x = 'a  b'\n"),
        ("def f(x):\n    return x\n", "def f(y):\n    return y\n"),
        ("x = 1\n", "x = 1.0\n"),
        ("x = 1\n", "x = True\n"),
        ("def f(:\n  pass\n", "def f(:\n    pass\n"),  # unparseable: indentation counts
    ],
)
def test_program_key_different(a: str, b: str) -> None:
    assert program_key(a) != program_key(b)


def test_each_distinct_program_runs_once_and_duplicates_share_its_verdict() -> None:
    executor = FakeExecutor()
    completions = [
        continuation("    return x + 1\n", 2),
        continuation("    return x + 1  # same program\n", 3),
        continuation("    return x\n"),
        continuation("    return x+1\n"),
        continuation("    while True: pass\n"),
        continuation("    return (\n"),
    ]
    progress: list[tuple[int, int]] = []
    result = evaluate(
        TASK,
        completions,
        conforms(executor),
        timeout=3.0,
        ks=(1, 5, 10),
        identity=IDENTITY,
        n_requested=10,
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert len(executor.jobs) == 4 == result.distinct
    assert all(job.timeout == 3.0 and job.entry_point == "inc" for job in executor.jobs)
    assert progress[-1] == (4, 4)
    outcomes = [s.outcome for s in result.samples]
    assert outcomes == [
        Outcome.PASSED,
        Outcome.PASSED,
        Outcome.FAILED,
        Outcome.PASSED,
        Outcome.TIMEOUT,
        Outcome.ERROR,
    ]
    assert [s.index for s in result.samples] == list(range(6))
    assert result.samples[1].completion == "    return x + 1  # same program\n"
    assert result.samples[1].program == TASK.prompt + "    return x + 1  # same program\n"
    assert (result.n, result.c, result.n_requested) == (6, 3, 10)
    assert result.outcomes == {"passed": 3, "failed": 1, "error": 1, "timeout": 1}
    assert result.pass_at_k == {1: 0.5, 5: pass_at_k(6, 3, 5)}  # no pass@10 with n = 6
    assert (result.prompt_tokens, result.completion_tokens) == (5, 5)
    assert (result.task_id, result.model, result.spec, result.nodeid) == (
        "T/1",
        "m",
        "replay:m.jsonl",
        "data.jsonl::T/1[m]",
    )
    assert result.first_failure_detail == "Traceback: AssertionError()"


def test_program_keys_keep_asserts_and_docstrings_under_python_dash_o() -> None:
    # The sandbox runs every assert: a key made with pytest's own -O must not drop them.
    pairs = [
        ("def f(a):\n    return a\n", "def f(a):\n    assert a\n    return a\n"),
        ("def f():\n    'x'\n", "def f():\n    'y'\n"),
    ]
    code = (
        "from pytest_passk.evaluation import program_key as k\n"
        f"for a, b in {pairs!r}:\n"
        "    if k(a) == k(b):\n"  # not assert: -OO would drop it
        "        raise SystemExit(f'same key: {a!r} {b!r}')\n"
    )
    subprocess.run([sys.executable, "-OO", "-c", code], check=True)


def test_a_sample_that_is_the_reference_up_to_layout_is_judged_as_the_reference() -> None:
    task = dataclasses.replace(TASK, reference=TASK.prompt + "    return x + 1\n")
    planned = plan(
        task, [continuation("    return x+1  # mine\n"), continuation("    return 2\n")], 3.0
    )
    assert [job.program for job in planned.jobs] == [task.reference, TASK.prompt + "    return 2\n"]
    assert planned.programs[0] == TASK.prompt + "    return x+1  # mine\n"  # what the sample was


def test_a_sample_without_code_is_an_error_and_not_executed() -> None:
    executor = FakeExecutor()
    completions = [
        Completion("I cannot help with that.", CompletionForm.CHAT),
        Completion("   ", CompletionForm.PROGRAM),
        Completion("```python\ndef inc(x):\n    return x + 1\n```", CompletionForm.CHAT),
    ]
    result = evaluate(
        TASK, completions, executor, timeout=1.0, ks=(1,), identity=IDENTITY, n_requested=3
    )
    assert len(executor.jobs) == 1
    first, second, third = result.samples
    assert (first.outcome, first.message, first.program) == (Outcome.ERROR, NO_CODE, "")
    assert (second.outcome, second.message) == (Outcome.ERROR, NO_CODE)
    assert third.outcome is Outcome.PASSED
    assert result.first_failure_detail == ""  # nothing ran for the first failing sample
    assert result.distinct == 1


def test_no_completions() -> None:
    executor = FakeExecutor()
    result = evaluate(TASK, [], executor, timeout=1.0, ks=(1,), identity=IDENTITY, n_requested=5)
    assert (result.n, result.c, result.pass_at_k, result.distinct) == (0, 0, {}, 0)
    assert executor.jobs == []


def test_program_forms_reach_the_executor_as_whole_programs() -> None:
    executor = FakeExecutor()
    evaluate(
        TASK,
        [Completion("def inc(x):\n    return x + 1\n", CompletionForm.PROGRAM)],
        executor,
        timeout=1.0,
        ks=(1,),
        identity=IDENTITY,
        n_requested=1,
    )
    (job,) = executor.jobs
    assert job.program == "def inc(x):\n    return x + 1\n"
    assert job.test == TASK.test
