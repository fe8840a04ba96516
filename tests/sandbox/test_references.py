"""The trusted reference runner: answers, exceptions, mutation, hangs, CPU caps, bad programs."""

from __future__ import annotations

import pytest

from pytest_passk.references import Batch, observations, reference_observations
from pytest_passk.sandbox import plain

REFERENCE = """
class Odd(Exception):
    pass

def f(x, xs):
    if x == 3:
        while True:
            pass
    if x == 5:
        raise Odd("five")
    if x == 6:
        raise ValueError("six")
    if x == 7:
        return object()
    if x == 8:
        return [0] * 200_000
    xs.append(x)
    return x * 2
"""


def _args(*values: object) -> list[object]:
    return [plain.encode([v, []]) for v in values]


def test_answers_exceptions_mutation_and_dropped_outputs() -> None:
    found = reference_observations(REFERENCE, "f", _args(1, 5, 6, 7, 8), 2.0)
    first, odd, six, obj, big = found
    assert first is not None and first["ok"] == 2 and first["w"] == [1, [1]]
    assert odd is not None and odd["raise"] == "own:Odd"
    assert six is not None and six["raise"] == "ValueError"
    assert obj is not None and "not plain data" in obj["drop"]
    assert big is not None and big["drop"] == "its output is too large"


def test_a_hang_loses_only_its_input() -> None:
    found = reference_observations(REFERENCE, "f", _args(1, 3, 2), 0.5)
    assert found[0] is not None and found[0]["ok"] == 2
    assert found[1] is None  # no answer in time: the runner was killed, a new one went on
    assert found[2] is not None and found[2]["ok"] == 4


def test_cpu_caps_drop_without_a_restart() -> None:
    slow = (
        "def g(n):\n    total = 0\n    for i in range(n):\n        total += i\n    return total\n"
    )
    inputs = [plain.encode([n]) for n in (10, 10**8, 20, 30)]
    (found,) = observations([Batch(slow, "g", inputs, input_cpu=0.05, task_cpu=10.0)], 30.0)
    assert not isinstance(found, RuntimeError)
    assert found[0] is not None and found[0]["ok"] == 45
    assert found[1] == {"drop": "too slow"}
    assert found[2] is not None and found[2]["ok"] == 190
    (capped,) = observations([Batch(slow, "g", inputs, input_cpu=5.0, task_cpu=0.0)], 30.0)
    assert not isinstance(capped, RuntimeError)
    assert capped[0] is not None and capped[0]["ok"] == 45
    assert all(a is not None and "drop" in a for a in capped[1:])


def test_many_references_share_one_runner_and_a_bad_one_is_reported() -> None:
    batches = [
        Batch("def f(x):\n    return x + 1\n", "f", [plain.encode([1])]),
        Batch("def f(x:\n", "f", [plain.encode([1])]),
        Batch("def h(x):\n    return -x\n", "h", [plain.encode([2]), plain.encode([3])]),
    ]
    first, broken, third = observations(batches, 2.0)
    assert not isinstance(first, RuntimeError) and first[0] is not None and first[0]["ok"] == 2
    assert isinstance(broken, RuntimeError) and "SyntaxError" in str(broken)
    assert not isinstance(third, RuntimeError) and [a["ok"] for a in third if a] == [-2, -3]
    with pytest.raises(RuntimeError):
        reference_observations("raise SystemExit(3)\n", "f", [plain.encode([1])], 2.0)
