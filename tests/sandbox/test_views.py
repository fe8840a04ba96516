"""Plain views, in-place write-back, parametrize cases and exception stand-ins: the judge's own
logic, without a sandbox.
"""

from __future__ import annotations

import enum
import threading
from collections import namedtuple
from dataclasses import dataclass, field
from typing import Any

import pytest

import pytest_passk as passk
from pytest_passk.sandbox import plain
from pytest_passk.sandbox.inside.cases import CaseError, cases, fixtures_of
from pytest_passk.sandbox.inside.remote import _STAND_INS, MAX_STAND_INS, assign, stand_in


@dataclass
class Point:
    x: int
    y: list[int]
    note: str = field(default="", compare=False)


class Color(enum.Enum):
    RED = 1


Pair = namedtuple("Pair", "a b")


class Slotted:
    __slots__ = ("a",)

    def __init__(self) -> None:
        self.a = Color.RED


def viewed(value: object) -> Any:
    return plain.decode(plain.loads(plain.dumps(plain.view(value))))


def test_views_of_each_kind() -> None:
    point = viewed(Point(1, [2], note="ignored"))
    assert point == plain.View("dataclass", "Point", (("x", 1), ("y", [2])))
    assert repr(point) == "Point(x=1, y=[2])"
    assert viewed(Color.RED) == plain.View("enum", "Color", "RED")
    assert viewed(Pair(1, 2)) == (1, 2)
    assert viewed(Slotted()) == plain.View(
        "object", "Slotted", (("a", plain.View("enum", "Color", "RED")),)
    )
    assert viewed([Point(0, [])]) == [plain.View("dataclass", "Point", (("x", 0), ("y", [])))]


def test_views_compare_by_name_and_fields_and_hash_alike() -> None:
    assert viewed(Point(1, [2])) != viewed(Point(1, [3]))
    assert hash(viewed(Point(1, [2]))) == hash(viewed(Point(1, [2])))
    assert viewed(Point(1, [2])) != (1, [2])


def test_an_object_without_a_view_is_refused() -> None:
    with pytest.raises(plain.EncodeError, match="no plain view"):
        plain.view(threading.Lock())


def test_a_view_cannot_smuggle_a_marker() -> None:
    forged = {"#": "view", "k": "dataclass", "t": "P", "v": [["x", {"#": "handle", "v": 0}]]}
    value = plain.decode(forged)
    with pytest.raises(plain.NotPlainData):
        assert value == plain.View("dataclass", "P", (("x", 1),))


def test_write_back_keeps_nested_identity() -> None:
    inner = [3, 1]
    outer = [inner, {"k": [1]}]
    kept = outer[1]
    assign(outer, [[1, 3], {"k": [1, 2], "new": 0}])
    assert outer == [[1, 3], {"k": [1, 2], "new": 0}]
    assert outer[0] is inner and outer[1] is kept
    shrunk = {"a": 1, "b": 2}
    assign(shrunk, {"b": 3})
    assert shrunk == {"b": 3}
    chars = bytearray(b"ab")
    assign(chars, bytearray(b"xyz"))
    assert chars == bytearray(b"xyz")


def test_write_back_of_another_type_is_refused() -> None:
    with pytest.raises(ValueError, match="a write-back of a dict into a list"):
        assign([1], {})


def test_cases_from_stacked_parametrize_marks() -> None:
    @pytest.mark.parametrize(
        "a", [1, pytest.param(2, id="two"), pytest.param(3, marks=pytest.mark.skip)]
    )
    @pytest.mark.parametrize(("b", "c"), [("x", None), ("", [1])], ids=["first", None])
    def test(candidate: object, a: int, b: str, c: object, tmp_path: object) -> None:
        pass

    found = [(case.case_id, case.arguments) for case in cases(test)]
    assert [case_id for case_id, _ in found] == ["first-1", "first-two", "b1-c1-1", "b1-c1-two"]
    assert found[1][1] == {"a": 2, "b": "x", "c": None}
    assert fixtures_of(test) == ["tmp_path"]


def test_unreadable_parametrize_is_a_case_error() -> None:
    @pytest.mark.parametrize(("a", "b"), [(1, 2, 3)])
    def test(candidate: object, a: int, b: int) -> None:
        pass

    with pytest.raises(CaseError, match="case 0 has 3 values for 2 names"):
        cases(test)


def test_stand_ins_are_the_public_classes_and_bounded() -> None:
    made = stand_in("Insufficient", ValueError)
    assert issubclass(made, passk.candidate_exception("Insufficient"))
    assert issubclass(made, passk.CandidateError) and issubclass(made, ValueError)
    assert stand_in("Insufficient", ValueError) is made
    assert MAX_STAND_INS >= 100 and len(_STAND_INS) <= MAX_STAND_INS
