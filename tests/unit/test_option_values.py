"""The option value parsers: typed values, or a ``problem|fix`` ValueError."""

from __future__ import annotations

import pytest

from pytest_passk import option_values as parse
from pytest_passk.extract import ExtractMode


@pytest.mark.parametrize(
    ("text", "expected"), [("1,10", (1, 10)), ("10", (1, 10)), ("5, 1 ,100", (1, 5, 100))]
)
def test_ks_always_include_one_and_are_sorted(text: str, expected: tuple[int, ...]) -> None:
    assert parse.ks(text) == expected


@pytest.mark.parametrize(("text", "expected"), [("0.5", 0.5), ("50%", 0.5), ("90", 0.9)])
def test_fractions_take_shares_and_percentages(text: str, expected: float) -> None:
    assert parse.fraction(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("parser", "text", "problem"),
    [
        (parse.ks, "0,1", "every k must be an integer >= 1"),
        (parse.positive_int, "0", "must be at least 1"),
        (parse.number, "nan", "must be finite"),
        (parse.positive_number, "0", "must be greater than 0"),
        (parse.seconds, "-1", "must not be negative"),
        (parse.temperature, "3", "temperature must be within 0..2"),
        (parse.top_p, "0", "top_p must be within (0, 1]"),
        (parse.fraction, "150%", "outside 0..1 (or 0%..100%)"),
        (parse.extract_mode, "fix", "unknown extraction mode"),
        (parse.flag, "maybe", "not a boolean"),
    ],
)
def test_bad_values_say_the_problem_and_the_fix(parser: object, text: str, problem: str) -> None:
    assert callable(parser)
    with pytest.raises(ValueError) as raised:
        parser(text)
    said, separator, fix = str(raised.value).partition("|")
    assert said == problem and separator and fix


def test_zero_seconds_is_allowed_and_flags_read_ini_words() -> None:
    assert parse.seconds("0") == 0.0
    assert parse.flag("on") is True and parse.flag("") is False
    assert parse.extract_mode("none") is ExtractMode.NONE
