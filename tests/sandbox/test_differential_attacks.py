# ruff: noqa: E501  (attack programs are kept one statement a line, as written)
"""Hostile candidates against the stronger tests: every new path across the sandbox boundary
(the generated inputs going in, the candidate's outputs coming back, compared in the judge).

None may pass the stronger tests. Most pass the task's own test (that is what makes them a
false positive of a weak test), so each also shows that the original outcome is still judged.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st

from pytest_passk.differential import Differential, DifferentialSpec
from pytest_passk.oracle import build
from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job
from pytest_passk.sandbox.pool import PoolExecutor
from pytest_passk.tasks import CheckTest, Task

CHECK = CheckTest(
    "def check(candidate):\n"
    "    assert candidate([3, 1, 2], 2) == [3, 2]\n"
    "    assert candidate([], 1) == []\n"
    "    assert candidate([5, 5, 1], 1) == [5]\n"
)
REFERENCE = (
    "def top(xs, k):\n"
    "    if k < 0:\n"
    "        raise ValueError('k must be >= 0')\n"
    "    return sorted(xs, reverse=True)[:k]\n"
)
STRATEGY = st.tuples(st.lists(st.integers(-20, 20), max_size=8), st.integers(-2, 5))
TASK = Task(
    task_id="tests/sandbox::top",
    prompt="",
    entry_point="top",
    test=CHECK,
    reference=REFERENCE,
    differential=DifferentialSpec(inputs=STRATEGY),
)
WALL = 5.0

#: Programs that pass the task's own test and must fail the stronger one.
FALSE_POSITIVES: dict[str, str] = {
    "right_only_on_own_inputs": (
        "def top(xs, k):\n"
        "    return {((3, 1, 2), 2): [3, 2], ((), 1): [], ((5, 5, 1), 1): [5]}[(tuple(xs), k)]\n"
    ),
    "mutates_its_input": (
        "def top(xs, k):\n"
        "    if k < 0:\n        raise ValueError('k')\n"
        "    xs.sort(reverse=True)\n    return xs[:k]\n"
    ),
    "different_exception": "def top(xs, k):\n    return sorted(xs, reverse=True)[:k] if k >= 0 else [][0]\n",
    "no_exception": "def top(xs, k):\n    return sorted(xs, reverse=True)[:max(k, 0)]\n",
    "off_by_one": "def top(xs, k):\n    if k < 0:\n        raise ValueError\n    return sorted(xs, reverse=True)[:k] if len(xs) < 4 else sorted(xs, reverse=True)[:k + 1]\n",
    "always_equal_after_own_inputs": (
        "class Eq(list):\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    if len(seen) <= 3:\n        return sorted(xs, reverse=True)[:k]\n"
        "    return Eq([999])\n"
    ),
    "always_equal_object": (
        "class Eq:\n"
        "    def __eq__(self, other): return True\n"
        "    def __ne__(self, other): return False\n"
        "    def __hash__(self): return 0\n"
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    return sorted(xs, reverse=True)[:k] if len(seen) <= 3 else Eq()\n"
    ),
    "generator_output": (
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    out = sorted(xs, reverse=True)[:k]\n"
        "    return out if len(seen) <= 3 else (x for x in out)\n"
    ),
    "huge_output": (
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    return sorted(xs, reverse=True)[:k] if len(seen) <= 3 else [0] * 3_000_000\n"
    ),
    "recursive_output": (
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    if len(seen) <= 3:\n        return sorted(xs, reverse=True)[:k]\n"
        "    out = []\n    out.append(out)\n    return out\n"
    ),
    "tuple_not_list": (
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    out = sorted(xs, reverse=True)[:k]\n"
        "    return out if len(seen) <= 3 else tuple(out)\n"
    ),
    "bool_for_int": (
        "def top(xs, k):\n"
        "    if k < 0:\n        raise ValueError\n"
        "    return [True if x == 1 else x for x in sorted(xs, reverse=True)[:k]]\n"
    ),
    "stops_answering": (
        "seen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    if len(seen) > 3:\n        while True:\n            pass\n"
        "    return sorted(xs, reverse=True)[:k]\n"
    ),
    "forged_batch_answers": (
        "import gc\n"
        "def top(xs, k):\n"
        "    for o in gc.get_objects():\n"
        "        if type(o).__name__ == 'Server':\n"
        "            type(o)._batch = lambda self, request: [{'ok': []}, {'raise': 'ValueError'}] * 200\n"
        "    if k < 0:\n        raise ValueError\n"
        "    return sorted(xs, reverse=True)[:k]\n"
    ),
    "forged_batch_markers": (
        "import gc\n"
        "def top(xs, k):\n"
        "    for o in gc.get_objects():\n"
        "        if type(o).__name__ == 'Server':\n"
        "            type(o)._batch = lambda self, request: [{'ok': {'#': 'handle', 'v': 0}} for _ in request['batch']]\n"
        "    if k < 0:\n        raise ValueError\n"
        "    return sorted(xs, reverse=True)[:k]\n"
    ),
    "exits_in_stronger_phase": (
        "import os\nseen = []\n"
        "def top(xs, k):\n"
        "    seen.append(1)\n"
        "    if len(seen) > 3:\n        os._exit(0)\n"
        "    return sorted(xs, reverse=True)[:k]\n"
    ),
}


@pytest.fixture(scope="module")
def differential() -> Differential:
    built = build(TASK, TASK.differential, 60, WALL)  # type: ignore[arg-type]
    assert built.count >= 40  # hypothesis drew enough distinct inputs, the reference answered
    return built


def _job(program: str, differential: Differential) -> Job:
    return Job(program, CHECK, "top", WALL, reference=REFERENCE, differential=differential)


@pytest.mark.parametrize("name", sorted(FALSE_POSITIVES))
def test_false_positive_fails_the_stronger_tests(
    name: str, pool: PoolExecutor, differential: Differential
) -> None:
    (plain_verdict,) = pool.run(
        [Job(FALSE_POSITIVES[name], CHECK, "top", WALL, reference=REFERENCE)]
    )
    assert plain_verdict.outcome is Outcome.PASSED, plain_verdict.message  # the weak test passes it
    (verdict,) = pool.run([_job(FALSE_POSITIVES[name], differential)])
    assert verdict.outcome is not Outcome.PASSED, verdict.message
    assert verdict.original is Outcome.PASSED
    if verdict.outcome is Outcome.FAILED:
        assert "top(" in verdict.message  # names the input that shows it wrong


def test_reference_and_a_rewrite_pass_with_the_same_behaviour(
    pool: PoolExecutor, differential: Differential
) -> None:
    rewrite = "import heapq\ndef top(xs, k):\n    if k < 0:\n        raise ValueError('no')\n    return heapq.nlargest(k, xs)\n"
    reference, other = pool.run([_job(REFERENCE, differential), _job(rewrite, differential)])
    assert reference.outcome is Outcome.PASSED and other.outcome is Outcome.PASSED, other.message
    assert reference.original is other.original is Outcome.PASSED
    assert reference.behaviour is not None and reference.behaviour == other.behaviour


def test_behaviour_ignores_the_verdict(pool: PoolExecutor, differential) -> None:  # type: ignore[no-untyped-def]
    """Two wrong programs that behave alike share a fingerprint; a program that fails the
    original test still gets one (clustering must not depend on the tests' verdicts).
    """
    wrong_a = "def top(xs, k):\n    return sorted(xs)[:k] if k >= 0 else 1 / 0\n"
    wrong_b = "def top(xs, k):\n    if k < 0:\n        return 1 // 0\n    return sorted(xs)[0:k]\n"
    a, b = pool.run([_job(wrong_a, differential), _job(wrong_b, differential)])
    assert a.outcome is b.outcome is Outcome.FAILED
    assert a.original is Outcome.FAILED
    assert a.behaviour is not None and a.behaviour == b.behaviour


def test_the_smallest_differing_input_is_shown(pool: PoolExecutor, differential) -> None:  # type: ignore[no-untyped-def]
    wrong = "def top(xs, k):\n    if k < 0:\n        raise ValueError\n    return sorted(xs, reverse=True)[:k] if len(set(xs)) == len(xs) else sorted(set(xs), reverse=True)[:k]\n"
    (verdict,) = pool.run([_job(wrong, differential)])
    assert verdict.outcome is Outcome.FAILED
    assert verdict.message.startswith("differs from the reference on top(")
    assert "expected" in verdict.message and "got" in verdict.message


HALF = Task(
    task_id="tests/sandbox::half",
    prompt="",
    entry_point="half",
    test=CheckTest("def check(candidate):\n    assert candidate(2) == 1.0\n"),
    reference="def half(x):\n    return x / 2\n",
    differential=DifferentialSpec(inputs=st.tuples(st.integers(0, 100))),
)


def test_an_int_too_large_for_a_float_fails_instead_of_breaking_the_judge(
    pool: PoolExecutor,
) -> None:
    """The judge compares an int with the reference's float as floats: 10**400 has none, and
    the trusted judge raised OverflowError ("the sandbox failed", a harness error, no original
    outcome) instead of failing the candidate.
    """
    assert HALF.differential is not None and isinstance(HALF.test, CheckTest)
    built = build(HALF, HALF.differential, 20, WALL)
    program = "def half(x):\n    return 1.0 if x == 2 else 10**400\n"
    job = Job(program, HALF.test, "half", WALL, reference=HALF.reference, differential=built)
    (verdict,) = pool.run([job])
    assert verdict.outcome is Outcome.FAILED, verdict.message
    assert not verdict.harness_error
    assert verdict.original is Outcome.PASSED
    assert "differs from the reference on half(" in verdict.message


#: Answers the judge cannot even decode: a dict with a list for a key, an int that is no hex.
MALFORMED_ANSWERS = (
    "import gc\n"
    "def top(xs, k):\n"
    "    for o in gc.get_objects():\n"
    "        if type(o).__name__ == 'Server':\n"
    "            type(o)._batch = lambda self, request: [{'ok': {'#': 'dict', 'v': [[[1], 2]]}}, {'ok': {'#': 'int', 'v': 'zz'}}] * (len(request['batch']) // 2) + [{'ok': []}] * (len(request['batch']) % 2)\n"
    "    if k < 0:\n        raise ValueError\n"
    "    return sorted(xs, reverse=True)[:k]\n"
)


def test_undecodable_batch_answers_fail_the_candidate_not_the_judge(
    pool: PoolExecutor, differential: Differential
) -> None:
    """A forged answer the codec cannot decode is a malformed answer (never agreeing), not an
    exception in the trusted judge ("the sandbox failed", a harness error, no original outcome).
    """
    (verdict,) = pool.run([_job(MALFORMED_ANSWERS, differential)])
    assert verdict.outcome is Outcome.FAILED, verdict.message
    assert not verdict.harness_error
    assert verdict.original is Outcome.PASSED
