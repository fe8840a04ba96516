"""Coding tasks written as ordinary pytest tests with ``@passk.task``.

Run them against the recorded samples shipped beside this file::

    pytest --passk=1,5 --model=replay:examples/synthetic_samples.jsonl examples/

or, without ``--passk``, check that each task's reference solution passes its own test.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

import pytest_passk as passk


def fizzbuzz_reference(n: int) -> str:
    if n % 15 == 0:
        return "FizzBuzz"
    if n % 3 == 0:
        return "Fizz"
    if n % 5 == 0:
        return "Buzz"
    return str(n)


@passk.task(
    prompt='def add(a: int, b: int) -> int:\n    """Return the sum of a and b."""\n',
    entry_point="add",
    reference="def add(a: int, b: int) -> int:\n    return a + b\n",
)
def test_add(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0


@passk.task(entry_point="fizzbuzz", reference=fizzbuzz_reference)
def test_fizzbuzz(candidate):
    '''
    def fizzbuzz(n: int) -> str:
        """Return "Fizz" for multiples of 3, "Buzz" for multiples of 5, "FizzBuzz" for
        multiples of both, and the number itself as a string otherwise."""
    '''
    for n in range(1, 100):
        assert candidate(n) == fizzbuzz_reference(n), n  # the module's helpers are available


@passk.task(
    prompt='def is_palindrome(text: str) -> bool:\n    """Whether text is its own reverse."""\n',
    entry_point="is_palindrome",
    reference="def is_palindrome(text: str) -> bool:\n    return text == text[::-1]\n",
)
@given(st.text(max_size=20))
def test_is_palindrome(candidate, text):
    # A property test: hypothesis draws the inputs inside the sandbox.
    assert candidate(text + text[::-1]) is True
    assert candidate(text) == (text == text[::-1])
