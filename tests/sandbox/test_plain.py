from __future__ import annotations

import math
from collections import OrderedDict, namedtuple
from typing import Any

import pytest

from pytest_passk.sandbox import plain


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, 0, -7, 2**80, 1.5, "text\nwith newline", [1, [2, "x"]], (1, (2,)),
        {"a": 1, 2: [3]}, {1, 2}, frozenset({"x"}), b"\x00\xff", 3 + 4j, [(), {}, set()],
    ],
)  # fmt: skip
def test_round_trip(value: Any) -> None:
    back = plain.decode(plain.loads(plain.dumps(plain.encode(value))))
    assert back == value
    assert type(back) is type(value)


def test_non_finite_floats_round_trip() -> None:
    values = plain.decode(plain.loads(plain.dumps(plain.encode([math.inf, -math.inf, math.nan]))))
    assert values[:2] == [math.inf, -math.inf] and math.isnan(values[2])


def test_subclasses_become_their_base_without_running_their_methods() -> None:
    class Liar(int):
        def __eq__(self, other: object) -> bool:
            return True

        __hash__ = int.__hash__

        def __index__(self) -> int:
            raise AssertionError("never called")

    Point = namedtuple("Point", "x y")
    assert plain.encode(Liar(3)) == 3
    assert plain.decode(plain.encode(Point(1, 2))) == (1, 2)
    assert plain.decode(plain.encode(OrderedDict(a=1))) == {"a": 1}


def test_an_always_equal_object_cannot_be_compared() -> None:
    class AlwaysEqual:
        def __eq__(self, other: object) -> bool:
            return True

    value = plain.decode(plain.encode(AlwaysEqual()))
    assert isinstance(value, plain.Opaque)
    for attempt in (
        lambda: value == 1,
        lambda: value != 1,
        lambda: bool(value),
        lambda: hash(value),
    ):
        with pytest.raises(plain.NotPlainData):
            attempt()


def test_strict_encoding_refuses_non_plain_arguments() -> None:
    with pytest.raises(ValueError):
        plain.encode([1, object()], strict=True)


def test_deep_nesting_is_opaque_not_a_crash() -> None:
    value: list[Any] = []
    for _ in range(plain.MAX_DEPTH + 10):
        value = [value]
    assert isinstance(plain.decode(plain.encode(value)), plain.Opaque)


def test_numpy_values_become_their_plain_equivalents() -> None:
    numpy = pytest.importorskip("numpy")
    value = [numpy.int64(3), numpy.float64(0.5), numpy.bool_(True), numpy.array([[1, 2]])]
    assert plain.decode(plain.encode(value)) == [3, 0.5, True, [[1, 2]]]
