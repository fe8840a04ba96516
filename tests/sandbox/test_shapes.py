"""Shapes of tasks beyond plain data: handles, views, lazy iteration, write-back, callbacks,
stand-in exceptions, and the limits on what crosses (docs/tasks.md, "What crosses").
"""

from __future__ import annotations

import pytest

from pytest_passk.evaluation import REFERENCE_FAILS, TASK_CANNOT_RUN
from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job
from pytest_passk.sandbox.inside.remote import LIMIT_CALLBACKS, MAX_CALLBACKS
from pytest_passk.sandbox.pool import PoolExecutor
from pytest_passk.tasks import CheckTest

WALL = 5.0

LRU = """
class LRUCache:
    def __init__(self, n):
        self.n, self.d = n, {}
    def get(self, k):
        if k not in self.d:
            return -1
        self.d[k] = self.d.pop(k)
        return self.d[k]
    def put(self, k, v):
        self.d.pop(k, None)
        self.d[k] = v
        if len(self.d) > self.n:
            del self.d[next(iter(self.d))]
    def __len__(self):
        return len(self.d)
    def __contains__(self, k):
        return k in self.d
    def __getitem__(self, k):
        return self.d[k]
"""
POINT = "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\n"

#: name: (program, entry point, check source)
PASSING: dict[str, tuple[str, str | None, str]] = {
    "class_with_state": (
        LRU, "LRUCache",
        "def check(candidate):\n    c = candidate(2)\n    c.put(1, 1); c.put(2, 2)\n"
        "    assert c.get(1) == 1\n    c.put(3, 3)\n    assert c.get(2) == -1\n"
        "    assert len(c) == 2 and 3 in c and c[3] == 3 and c.n == 2\n"
        "    c.n = 5\n    assert c.n == 5\n",
    ),
    "same_object_same_handle": (
        "class Q:\n    def me(self): return self\ndef f(): return Q()\n", "f",
        "def check(candidate):\n    q = candidate()\n    assert q.me() is q and q.me().me() is q\n",
    ),
    "infinite_generator_lazily": (
        "def f(n):\n    i = 0\n    while True:\n        yield i * n\n        i += 1\n", "f",
        "import itertools\ndef check(candidate):\n"
        "    assert list(itertools.islice(candidate(7), 4)) == [0, 7, 14, 21]\n",
    ),
    "iterator_class": (
        "class C:\n    def __init__(s, n): s.n = n\n    def __iter__(s): return s\n"
        "    def __next__(s):\n        if s.n == 0: raise StopIteration\n"
        "        s.n -= 1\n        return s.n\n",
        "C", "def check(candidate):\n    assert list(candidate(3)) == [2, 1, 0]\n",
    ),
    "in_place_list_nested_and_identity": (
        "def f(xs):\n    xs.sort()\n    xs.append([0])\n", "f",
        "def check(candidate):\n    xs = [3, 1]\n    assert candidate(xs) is None\n"
        "    assert xs == [1, 3, [0]]\n",
    ),
    "in_place_dict_set_bytearray_keyword": (
        "def f(d, s, *, b):\n    d['k'].append(1)\n    s.add(2)\n    b[0] = 65\n", "f",
        "def check(candidate):\n    inner = []\n"
        "    d, s, b = {'k': inner}, set(), bytearray(b'x')\n"
        "    candidate(d, s, b=b)\n    assert d == {'k': [1]} and inner == [1]\n"
        "    assert s == {2} and b == bytearray(b'A')\n",
    ),
    "dataclass_against_the_tests_own": (
        POINT + "def f(a):\n    return [P(a, a + 1)]\n", "f",
        POINT + "def check(candidate):\n    (p,) = candidate(1)\n    assert p == P(1, 2)\n"
        "    assert p != P(1, 3) and p.y == 2\n    assert len({p, p}) == 1\n",
    ),
    "named_tuple_and_enum": (
        "import enum, collections\nT = collections.namedtuple('T', 'a b')\n"
        "class Color(enum.Enum):\n    RED = 1\ndef f():\n    return T(1, Color.RED)\n", "f",
        "import enum, collections\nT = collections.namedtuple('T', 'a b')\n"
        "class Color(enum.Enum):\n    RED = 1\ndef check(candidate):\n    t = candidate()\n"
        "    assert t == T(1, Color.RED) and t.a == 1 and t.b == Color.RED\n",
    ),
    "object_with_slots_and_dict": (
        "class S:\n    __slots__ = ('a',)\n    def __init__(s): s.a = 1\nclass D:\n"
        "    def __init__(s): s.b = [S()]\ndef f(): return D()\n", "f",
        "class S:\n    __slots__ = ('a',)\n    def __init__(s): s.a = 1\nclass D:\n"
        "    def __init__(s): s.b = [S()]\ndef check(candidate):\n    assert candidate() == D()\n",
    ),
    "callbacks_and_returned_closure": (
        "def f(xs, key):\n    return sorted(xs, key=key)\n"
        "def adder(n):\n    return lambda x: x + n\n", None,
        "def check(candidate):\n    assert candidate.f([3, -1, 2], key=abs) == [-1, 2, 3]\n"
        "    assert candidate.f(['bb', 'a'], lambda s: len(s)) == ['a', 'bb']\n"
        "    assert candidate.adder(3)(4) == 7\n",
    ),
    "callback_calls_the_candidate_again": (
        "def twice(g, x):\n    return g(g(x))\ndef inc(x):\n    return x + 1\n", None,
        "def check(candidate):\n    assert candidate.twice(lambda v: candidate.inc(v), 1) == 3\n",
    ),
    "own_exception_as_a_stand_in": (
        "class Broke(KeyError):\n    pass\ndef f():\n    raise Broke('gone')\n", "f",
        "def check(candidate):\n    try:\n        candidate()\n    except KeyError as exc:\n"
        "        assert type(exc).__name__ == 'Broke' and exc.args == ('gone',)\n"
        "    else:\n        raise AssertionError('no exception')\n",
    ),
    "handle_passed_back_as_an_argument": (
        "class B:\n    def __init__(s): s.v = 4\ndef make(): return B()\n"
        "def read(b): return b.v\n", None,
        "def check(candidate):\n    assert candidate.read(candidate.make()) == 4\n",
    ),
}  # fmt: skip

#: name: (program, entry point, check source, outcome, text in the message)
FAILING: dict[str, tuple[str, str, str, Outcome, str]] = {
    "wrong_dataclass_says_what_differed": (
        POINT + "def f(a):\n    return P(a, a)\n", "f",
        POINT + "def check(candidate):\n    assert candidate(1) == P(1, 2)\n",
        Outcome.FAILED, "the candidate's P(x=1, y=1) != P(x=1, y=2)",
    ),
    "no_plain_view_names_the_type": (
        "import threading\ndef f():\n    return threading.Lock()\n", "f",
        "def check(candidate):\n    assert candidate() == 1\n",
        Outcome.ERROR, "no plain view of the candidate's lock",
    ),
    "ordering_is_not_offered": (
        POINT + "def f():\n    return P(1, 2)\n", "f",
        POINT + "def check(candidate):\n    assert candidate() < P(2, 2)\n",
        Outcome.ERROR, "TypeError",
    ),
    "a_test_object_cannot_cross": (
        "def f(x):\n    return x\n", "f",
        POINT + "def check(candidate):\n    assert candidate(P(1, 2)) == P(1, 2)\n",
        Outcome.ERROR, "cannot cross to the candidate",
    ),
    "callbacks_are_bounded": (
        "def f(g):\n    for i in range(10**6):\n        g(i)\n    return 1\n", "f",
        "def check(candidate):\n    assert candidate(lambda x: x) == 1\n",
        Outcome.ERROR, LIMIT_CALLBACKS,
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PASSING))
def test_shape_passes(name: str, pool: PoolExecutor) -> None:
    program, entry_point, check = PASSING[name]
    (verdict,) = pool.run([Job(program, CheckTest(check), entry_point, WALL)])
    assert verdict.outcome is Outcome.PASSED, verdict


@pytest.mark.parametrize("name", sorted(FAILING))
def test_shape_fails_and_says_why(name: str, pool: PoolExecutor) -> None:
    program, entry_point, check, outcome, text = FAILING[name]
    # A generous wall: the callback limit must be what stops the candidate, even under load.
    (verdict,) = pool.run([Job(program, CheckTest(check), entry_point, 60.0)])
    assert verdict.outcome is outcome, verdict
    assert text in verdict.message, verdict


def test_the_callback_limit_is_below_what_a_candidate_can_make() -> None:
    assert 1_000 <= MAX_CALLBACKS < 10**6


CANNOT_RUN = """
import pytest
import pytest_passk as passk

@passk.task(prompt="def f(x):\\n", entry_point="f", reference="def f(x):\\n    return x\\n")
def test_fixture(candidate, monkeypatch):
    assert candidate(1) == 1

@passk.task(prompt="def f(x):\\n", entry_point="f", reference="def f(x):\\n    return x\\n")
@pytest.mark.parametrize("x", [1, 2], indirect=True)
def test_indirect(candidate, x):
    assert candidate(x) == x

@passk.task(prompt="def f(x):\\n", entry_point="f", reference="def f(x):\\n    return x + 1\\n")
@pytest.mark.parametrize(("x", "y"), [(1, 1), (2, 2)])
def test_wrong_reference(candidate, x, y):
    assert candidate(x) == y
"""


def test_check_mode_tells_a_task_that_cannot_run_from_a_wrong_reference(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_tasks=CANNOT_RUN)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2, errors=1)  # an ERROR decision fails the item in its call
    result.stdout.fnmatch_lines_random(
        [
            "*test_tasks.py:*the task's test asks for the fixture 'monkeypatch'*tmp_path*",
            f"*{TASK_CANNOT_RUN.split(' (')[0].format(task_id='test_tasks.py::test_indirect')}*"
            "indirect parametrization*",
            "*[[]1-1[]] AssertionError: assert 2 == 1*",
        ]
    )
    assert REFERENCE_FAILS not in "\n".join(
        line for line in result.outlines if "test_indirect" in line or "monkeypatch" in line
    )
