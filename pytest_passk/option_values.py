"""Parsers of option and ini values: text in, a typed value out, or a ``ValueError`` worded
``"problem|fix"`` that :mod:`~pytest_passk.settings` turns into a usage error naming the option.

Pure: no pytest here, so the rules are testable on their own and shared by every option.
"""

from __future__ import annotations

import math

from pytest_passk.extract import ExtractMode
from pytest_passk.sandbox.isolation import IsolationLevel

__all__ = [
    "extract_mode",
    "flag",
    "fraction",
    "integer",
    "isolation",
    "ks",
    "number",
    "pass_target",
    "positive_int",
    "positive_number",
    "seconds",
    "temperature",
    "top_p",
    "usd",
    "usd_per_hour",
    "usd_per_task",
]


def ks(text: str) -> tuple[int, ...]:
    try:
        values = {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise ValueError("not a comma-separated list of integers|write e.g. --passk=1,10") from None
    if not values or min(values) < 1:
        raise ValueError("every k must be an integer >= 1|write e.g. --passk=1,10")
    return tuple(sorted(values | {1}))


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError("not an integer|give a whole number") from None


def positive_int(text: str) -> int:
    value = integer(text)
    if value < 1:
        raise ValueError("must be at least 1|give a whole number >= 1")
    return value


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError("not a number|give a number such as 0.8") from None
    if not math.isfinite(value):
        raise ValueError("must be finite|give a number such as 0.8")
    return value


def positive_number(text: str) -> float:
    value = number(text)
    if value <= 0:
        raise ValueError("must be greater than 0|give seconds, e.g. 5")
    return value


def seconds(text: str) -> float:
    value = number(text)
    if value < 0:
        raise ValueError("must not be negative|give seconds, e.g. 600")
    return value


def temperature(text: str) -> float:
    value = number(text)
    if not 0.0 <= value <= 2.0:
        raise ValueError("temperature must be within 0..2|e.g. 0.8")
    return value


def top_p(text: str) -> float:
    value = number(text)
    if not 0.0 < value <= 1.0:
        raise ValueError("top_p must be within (0, 1]|e.g. 0.95")
    return value


def fraction(text: str) -> float:
    percent = text.endswith("%")
    value = number(text.rstrip("%").strip())
    if percent or value > 1.0:
        value /= 100.0
    if not 0.0 <= value <= 1.0:
        raise ValueError("outside 0..1 (or 0%..100%)|give e.g. 0.5 or 50%")
    return value


def isolation(text: str) -> IsolationLevel | None:
    return IsolationLevel.parse(text)  # a ValueError worded "problem|fix"


def extract_mode(text: str) -> ExtractMode:
    try:
        return ExtractMode(text)
    except ValueError:
        modes = ", ".join(mode.value for mode in ExtractMode)
        raise ValueError(f"unknown extraction mode|choose one of {modes}") from None


def flag(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("not a boolean|write true or false")


def usd(text: str) -> float:
    return number(text.removeprefix("$"))  # "$0.01" reads as 0.01


def usd_per_task(text: str) -> float:
    value = usd(text)
    if value <= 0:
        raise ValueError("must be greater than 0|give USD per task, e.g. 0.01")
    return value


def usd_per_hour(text: str) -> float:
    value = usd(text)
    if value < 0:
        raise ValueError("must be 0 or more|give USD per hour, e.g. 2.50")
    return value


def pass_target(text: str) -> float:
    percent = text.endswith("%")
    value = usd(text.rstrip("%").strip())
    if percent:
        value /= 100.0
    if not 0.0 < value <= 1.0:
        raise ValueError("must be above 0 and at most 1|give a pass@k such as 0.9 or 90%")
    return value
