"""One task per shape of code a model is asked to write: classes, iterators, generators, in-place
mutation, dataclasses, named tuples, enums, callbacks, closures, exceptions and parametrized tests.

Check mode runs every task's reference (``pytest examples/test_shapes.py``); recorded wrong
candidates for each are in ``shapes_wrong_samples.jsonl``::

    pytest --passk=1 --model=replay:examples/shapes_wrong_samples.jsonl examples/test_shapes.py

What crosses between the candidate and the test, and how, is in docs/tasks.md ("What crosses").
"""

from __future__ import annotations

import enum
import itertools
from dataclasses import dataclass
from typing import NamedTuple

import pytest

import pytest_passk as passk

LRU = """\
class LRUCache:
    def __init__(self, capacity):
        self.capacity = capacity
        self.items = {}

    def get(self, key):
        if key not in self.items:
            return -1
        self.items[key] = self.items.pop(key)
        return self.items[key]

    def put(self, key, value):
        self.items.pop(key, None)
        self.items[key] = value
        if len(self.items) > self.capacity:
            del self.items[next(iter(self.items))]

    def __len__(self):
        return len(self.items)

    def __contains__(self, key):
        return key in self.items
"""


@passk.task(entry_point="LRUCache", reference=LRU)
def test_lru_cache(candidate):
    '''
    class LRUCache:
        """A least-recently-used cache of at most `capacity` items: get(key) returns the value
        or -1, put(key, value) inserts or updates, evicting the least recently used item."""
    '''
    cache = candidate(2)
    cache.put(1, "one")
    cache.put(2, "two")
    assert cache.get(1) == "one"
    cache.put(3, "three")  # evicts 2, the least recently used
    assert cache.get(2) == -1
    assert cache.get(3) == "three"
    assert len(cache) == 2
    assert 1 in cache and 2 not in cache


@passk.task(
    entry_point="Query",
    reference="""\
class Query:
    def __init__(self, table):
        self.table, self.filters, self.count = table, [], None

    def where(self, condition):
        self.filters.append(condition)
        return self

    def limit(self, count):
        self.count = count
        return self

    def sql(self):
        text = f"SELECT * FROM {self.table}"
        if self.filters:
            text += " WHERE " + " AND ".join(self.filters)
        if self.count is not None:
            text += f" LIMIT {self.count}"
        return text
""",
)
def test_chained_methods(candidate):
    '''
    class Query:
        """A SQL query builder: Query(table).where(cond).where(cond).limit(n).sql() returns
        "SELECT * FROM table WHERE cond AND cond LIMIT n"; where and limit return the query."""
    '''
    query = candidate("users")
    assert query.where("age > 18") is query
    assert query.where("active").limit(10).sql() == (
        "SELECT * FROM users WHERE age > 18 AND active LIMIT 10"
    )
    assert candidate("t").sql() == "SELECT * FROM t"


@passk.task(
    entry_point="Countdown",
    reference="""\
class Countdown:
    def __init__(self, start):
        self.current = start

    def __iter__(self):
        return self

    def __next__(self):
        if self.current <= 0:
            raise StopIteration
        self.current -= 1
        return self.current + 1
""",
)
def test_iterator_class(candidate):
    '''
    class Countdown:
        """An iterator over start, start - 1, ..., 1."""
    '''
    assert list(candidate(3)) == [3, 2, 1]
    assert list(candidate(0)) == []
    countdown = candidate(2)
    assert next(countdown) == 2
    assert next(countdown) == 1
    with pytest.raises(StopIteration):
        next(countdown)


@passk.task(
    entry_point="fibonacci",
    reference=(
        "def fibonacci():\n    a, b = 0, 1\n"
        "    while True:\n        yield a\n        a, b = b, a + b\n"
    ),
)
def test_generator(candidate):
    '''
    def fibonacci():
        """Yield the Fibonacci numbers 0, 1, 1, 2, 3, 5, ... forever."""
    '''
    assert list(itertools.islice(candidate(), 8)) == [0, 1, 1, 2, 3, 5, 8, 13]


@passk.task(
    entry_point="sort_in_place",
    reference="def sort_in_place(xs):\n    xs.sort()\n",
)
def test_in_place_list(candidate):
    '''
    def sort_in_place(xs: list[int]) -> None:
        """Sort xs in place, ascending; return None."""
    '''
    xs = [3, 1, 2]
    assert candidate(xs) is None
    assert xs == [1, 2, 3]
    rows = [[2, 1], [9, 8, 7]]
    first = rows[0]
    candidate(first)
    assert rows == [[1, 2], [9, 8, 7]]


@passk.task(
    entry_point="count_words",
    reference=(
        "def count_words(counts, text):\n"
        "    for word in text.split():\n"
        "        counts[word] = counts.get(word, 0) + 1\n"
    ),
)
def test_in_place_dict(candidate):
    '''
    def count_words(counts: dict[str, int], text: str) -> None:
        """Add the number of times each word of text occurs to counts, in place."""
    '''
    counts = {"a": 1}
    candidate(counts, "a b a")
    assert counts == {"a": 3, "b": 1}


@dataclass
class Point:
    x: int
    y: int


@passk.task(
    entry_point="parse_point",
    reference=(
        "from dataclasses import dataclass\n\n"
        "@dataclass\nclass Point:\n    x: int\n    y: int\n\n"
        "def parse_point(text):\n"
        "    x, y = text.split(',')\n"
        "    return Point(int(x), int(y))\n"
    ),
)
def test_dataclass(candidate):
    '''
    from dataclasses import dataclass

    @dataclass
    class Point:
        x: int
        y: int

    def parse_point(text: str) -> Point:
        """Parse "x,y" into a Point."""
    '''
    # The candidate's Point is compared with the test's by its plain view: the same class name
    # and the same fields.
    point = candidate("3,-4")
    assert point == Point(3, -4)
    assert point.x == 3 and point.y == -4
    assert [candidate("0,0"), candidate("1,2")] == [Point(0, 0), Point(1, 2)]


class DivMod(NamedTuple):
    quotient: int
    remainder: int


@passk.task(
    entry_point="divide",
    reference=(
        "from typing import NamedTuple\n\n"
        "class DivMod(NamedTuple):\n    quotient: int\n    remainder: int\n\n"
        "def divide(a, b):\n    return DivMod(a // b, a % b)\n"
    ),
)
def test_named_tuple(candidate):
    '''
    from typing import NamedTuple

    class DivMod(NamedTuple):
        quotient: int
        remainder: int

    def divide(a: int, b: int) -> DivMod:
        """The quotient and remainder of a divided by b."""
    '''
    result = candidate(17, 5)
    assert result == DivMod(3, 2)
    assert result == (3, 2)  # a named tuple is a tuple
    assert result.remainder == 2
    quotient, remainder = candidate(9, 3)
    assert (quotient, remainder) == (3, 0)


class Level(enum.Enum):
    COLD = "cold"
    WARM = "warm"
    HOT = "hot"


@passk.task(
    entry_point="classify",
    reference=(
        "import enum\n\n"
        "class Level(enum.Enum):\n    COLD = 'cold'\n    WARM = 'warm'\n    HOT = 'hot'\n\n"
        "def classify(celsius):\n"
        "    if celsius < 10:\n        return Level.COLD\n"
        "    return Level.WARM if celsius < 25 else Level.HOT\n"
    ),
)
def test_enum(candidate):
    '''
    import enum

    class Level(enum.Enum):
        COLD = "cold"
        WARM = "warm"
        HOT = "hot"

    def classify(celsius: float) -> Level:
        """COLD below 10, WARM below 25, HOT from 25."""
    '''
    # Enum members compare by their class's name and their own.
    assert candidate(3) == Level.COLD
    assert candidate(20) == Level.WARM
    assert candidate(30) == Level.HOT
    assert candidate(30).value == "hot"


@passk.task(
    entry_point="apply_all",
    reference="def apply_all(functions, value):\n    return [f(value) for f in functions]\n",
)
def test_callbacks(candidate):
    '''
    def apply_all(functions: list, value):
        """The results of calling each function on value, in order."""
    '''
    seen = []

    def record(value):
        seen.append(value)
        return "recorded"

    assert candidate([abs, lambda v: v * 2, record], -3) == [3, -6, "recorded"]
    assert seen == [-3]


@passk.task(
    entry_point="make_counter",
    reference=(
        "def make_counter(start):\n"
        "    count = start\n"
        "    def step(by=1):\n"
        "        nonlocal count\n"
        "        count += by\n"
        "        return count\n"
        "    return step\n"
    ),
)
def test_closure(candidate):
    '''
    def make_counter(start: int):
        """A function that adds `by` (default 1) to a running count from start, returning it."""
    '''
    step = candidate(10)
    assert step() == 11
    assert step(by=5) == 16
    other = candidate(0)
    assert other() == 1 and step() == 17


@passk.task(
    entry_point="withdraw",
    reference=(
        "class InsufficientFunds(ValueError):\n    pass\n\n"
        "def withdraw(balance, amount):\n"
        "    if amount <= 0:\n        raise ValueError('amount must be positive')\n"
        "    if amount > balance:\n"
        "        raise InsufficientFunds(f'balance {balance} is below {amount}')\n"
        "    return balance - amount\n"
    ),
)
def test_raises(candidate):
    '''
    class InsufficientFunds(ValueError):
        pass

    def withdraw(balance: int, amount: int) -> int:
        """The balance after withdrawing amount. Raise ValueError if amount is not positive,
        InsufficientFunds if it exceeds the balance."""
    '''
    assert candidate(100, 30) == 70
    with pytest.raises(ValueError, match="positive"):
        candidate(100, 0)
    # The candidate's own exception class arrives as a stand-in of the same name.
    with pytest.raises(passk.candidate_exception("InsufficientFunds"), match="below 500"):
        candidate(100, 500)


@pytest.mark.parametrize(("n", "expected"), [(0, 1), (1, 1), (5, 120), (10, 3628800)])
@passk.task(
    entry_point="factorial",
    reference="def factorial(n):\n    return 1 if n < 2 else n * factorial(n - 1)\n",
)
def test_parametrize(candidate, n, expected):
    '''
    def factorial(n: int) -> int:
        """n! for n >= 0."""
    '''
    # Every case is this task's test: a candidate passes only if it passes them all.
    assert candidate(n) == expected


@passk.task(
    entry_point="word_lengths",
    reference="def word_lengths(text):\n    return [len(w) for w in text.split()]\n",
)
@pytest.mark.parametrize("text", ["a bb ccc", ""])
def test_parametrize_below(candidate, text, tmp_path):
    '''
    def word_lengths(text: str) -> list[int]:
        """The length of each word of text."""
    '''
    # tmp_path is the test's own directory, in the sandbox (the candidate cannot see it).
    (tmp_path / "text.txt").write_text(text)
    assert candidate((tmp_path / "text.txt").read_text()) == [len(w) for w in text.split()]
