"""Differential cases (trusted, in Z): call the candidate on the task's inputs, compare with the
reference's outputs, and fingerprint its behaviour.

The inputs and the reference's observations arrive in the job as plain data (computed in the
pytest process, :mod:`pytest_passk.oracle`). The inputs cross to the candidate in one request
(:attr:`~..protocol.Call.batch`) on the same channel as the test's calls
(:class:`~.remote.Remote`): the candidate calls its function on each and answers with one
observation per input (its output, the arguments it changed in place, or its exception's type),
which the judge reads as a claim. What comes back is compared here, on plain data only: an
object that is not plain data (the candidate's object, an always-equal object) and a malformed
answer never agree. Raising the reference's exception type agrees; changing an argument the
reference left alone does not.

Every case runs, whatever the earlier ones gave: the behaviour fingerprint (a hash of every
observation, in order) must not depend on whether the candidate passed, so that candidates can
be clustered by behaviour alone.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from .. import plain
from ..protocol import MESSAGE_LIMIT

#: Characters of an input or output shown in a failure's message.
SHOWN = 80
MUTATED = "changed its arguments in place, unlike the reference, on {call}"
NOT_PLAIN = "the candidate returned a non-plain value of type {type}"
#: Tiers of a case (see :data:`pytest_passk.differential.ORIGINAL`).
ORIGINAL = 0
#: How arguments changed in place compare with the reference's.
EXACT = {"kind": "exact"}


def canonical(encoded: Any) -> Any:
    """``encoded`` plain data with set elements and dict items in a fixed order (hash seeds and
    insertion order must not change a fingerprint).
    """
    if isinstance(encoded, list):
        return [canonical(item) for item in encoded]
    if not isinstance(encoded, dict):
        return encoded
    tag, payload = encoded.get(plain.TAG), encoded.get("v")
    if tag in ("set", "frozenset") and isinstance(payload, list):
        items = [canonical(item) for item in payload]
        return {plain.TAG: tag, "v": sorted(items, key=_text)}
    if tag == "dict" and isinstance(payload, list):
        pairs = [[canonical(k), canonical(v)] for k, v in payload]
        return {plain.TAG: tag, "v": sorted(pairs, key=lambda pair: _text(pair[0]))}
    if tag == "tuple" and isinstance(payload, list):
        return {plain.TAG: tag, "v": [canonical(item) for item in payload]}
    return encoded


def _text(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def same(got: Any, expected: Any, compare: dict[str, Any]) -> bool:
    """Whether two decoded plain values agree under ``compare`` (NaN agrees with NaN)."""
    if compare.get("kind") == "evalplus":
        # EvalPlus: with atol 0, a tolerance of 1e-6 only where the expected output "is_floats"
        # (a float, or a list or tuple of floats); everywhere else ``out == exp``.
        atol = float(compare.get("atol", 0.0))
        if atol == 0 and _is_floats(expected):
            atol = 1e-6
        compare = {"kind": "evalplus", "atol": atol} if atol else {"kind": "exact"}
    return _same(got, expected, compare)


def _is_floats(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return all(type(item) is float for item in value)
    return type(value) is float


def _same(got: Any, expected: Any, compare: dict[str, Any]) -> bool:
    kind = compare.get("kind")
    if type(got) is float or type(expected) is float:
        if not isinstance(got, int | float) or not isinstance(expected, int | float):
            return False
        if isinstance(got, bool) != isinstance(expected, bool):
            return False
        try:
            a, b = float(got), float(expected)
        except OverflowError:  # an int beyond a float's range equals no float
            return False
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if a == b:
            return True
        if math.isinf(a) or math.isinf(b):  # rel * inf would let any value near an infinity
            return False
        if kind == "approx":
            tolerance = max(float(compare.get("rel", 0.0)) * abs(b), float(compare.get("abs", 0.0)))
            return abs(a - b) <= tolerance
        if kind == "evalplus":
            # EvalPlus: numpy.testing.assert_allclose(out, exp, rtol=1e-7, atol=atol).
            atol = float(compare.get("atol", 0.0))
            return abs(a - b) <= atol + 1e-7 * abs(b)
        return False
    if type(got) is not type(expected):
        if isinstance(got, bool) or isinstance(expected, bool):
            return False
        return _numbers(got, expected) and bool(got == expected)
    if isinstance(got, list | tuple):
        return len(got) == len(expected) and all(
            _same(g, e, compare) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(got, dict):
        # Keys by their strict identity: Python's == (and so a dict's keys view) has True == 1.
        mine, theirs = {_key(k): k for k in got}, {_key(k): k for k in expected}
        return (
            len(got) == len(expected)
            and mine.keys() == theirs.keys()
            and all(_same(got[mine[key]], expected[theirs[key]], compare) for key in mine)
        )
    if isinstance(got, set | frozenset):  # elements compare exactly, whatever ``compare`` is
        return len(got) == len(expected) and {_key(v) for v in got} == {_key(v) for v in expected}
    return bool(got == expected)


def _key(value: Any) -> Any:
    """A hashable plain value (a dict key, a set element) as a key equal exactly where the
    exact comparison says equal: a bool never equals an int, NaN equals NaN, 2 equals 2.0.
    """
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    if isinstance(value, int | float | complex):
        return ("number", value)
    if isinstance(value, tuple):
        return ("tuple", tuple(_key(item) for item in value))
    if isinstance(value, frozenset):
        return ("frozenset", frozenset(_key(item) for item in value))
    return (type(value).__name__, value)


def _numbers(a: Any, b: Any) -> bool:
    return isinstance(a, int | float | complex) and isinstance(b, int | float | complex)


def _shown(encoded: Any) -> str:
    try:
        text = repr(plain.decode(encoded))
    except (ValueError, TypeError, KeyError, RecursionError):
        text = "?"
    return text if len(text) <= SHOWN else text[: SHOWN - 3] + "..."


def _call_text(name: str, arguments: Any) -> str:
    shown = _shown(arguments)
    inner = shown[1:-1] if shown.startswith("[") and shown.endswith("]") else shown
    return f"{name}({inner})"


def _size(arguments: Any) -> tuple[int, str]:
    """The documented order of inputs: shortest canonical text first, then by that text."""
    text = _text(canonical(arguments))
    return (len(text), text)


class Outcome:
    """What the cases gave: the first failure of each tier (smallest input), the fingerprint."""

    __slots__ = ("behaviour", "original", "stronger")

    def __init__(self) -> None:
        self.original: tuple[tuple[int, str], str] | None = None
        self.stronger: tuple[tuple[int, str], str] | None = None
        self.behaviour: str | None = None


def _type_of(value: Any) -> str:
    if isinstance(value, plain.Opaque):  # its attributes refuse every other read
        return value.type_name
    if type(value).__name__ == "Handle":
        return str(object.__getattribute__(value, "_type"))  # the candidate's type's name
    return type(value).__name__


def agree(
    seen: dict[str, Any], expected: dict[str, Any], compare: dict[str, Any], arguments: Any = None
) -> str | None:
    """``None`` when the candidate's observation agrees with the reference's, else why not
    (without the call, which the caller adds). ``arguments`` (encoded) are the case's arguments
    before the call: what a side that reports no change (no ``"w"``) left them as.
    """
    if "nonplain" in seen:
        return NOT_PLAIN.format(type=seen["nonplain"])
    if "raise" in expected or "raise" in seen:
        if seen.get("raise") == expected.get("raise"):
            return None
        want = f"raises {expected['raise']}" if "raise" in expected else _shown(expected.get("ok"))
        got = f"raises {seen['raise']}" if "raise" in seen else _shown(seen.get("ok"))
        return f"expected {want}, got {got}"
    try:
        got, want = plain.decode(seen.get("ok")), plain.decode(expected.get("ok"))
    except (ValueError, TypeError, KeyError, RecursionError):
        return "the reference's output could not be read"
    if not same(got, want, compare):
        return f"expected {_shown(expected.get('ok'))}, got {_shown(seen.get('ok'))}"
    if ("w" in seen or "w" in expected) and not _same_arguments(seen, expected, arguments):
        return "mutated"
    return None


def _same_arguments(seen: dict[str, Any], expected: dict[str, Any], arguments: Any) -> bool:
    """Whether both sides left the arguments equal, compared as values (exactly, as the
    outputs: True is not 1, a set or dict in another order is the same value); a side without
    ``"w"`` left them as they were.
    """
    if arguments is None and ("w" not in seen or "w" not in expected):
        return False
    try:
        after = plain.decode(seen.get("w", arguments))
        wanted = plain.decode(expected.get("w", arguments))
    except (ValueError, TypeError, KeyError, RecursionError):
        return False
    return same(after, wanted, EXACT)


def _observation(claim: Any) -> dict[str, Any]:
    """One of the candidate's observations, as the judge may trust it: well formed, its value
    plain data (an opaque marker, for an object that is not, makes it ``nonplain``).
    """
    if not isinstance(claim, dict):
        return {"nonplain": "malformed"}
    if "raise" in claim:
        return {"raise": str(claim["raise"])[:120]}
    unreadable = (plain.EncodeError, plain.NotPlainData, ValueError, TypeError, KeyError,
                  RecursionError)  # fmt: skip
    try:
        value = plain.decode(claim.get("ok"))
    except unreadable:  # a forged answer the codec cannot decode
        return {"nonplain": "malformed"}
    try:
        seen: dict[str, Any] = {"ok": plain.encode(value, strict=True)}
        if "w" in claim:
            seen["w"] = plain.encode(plain.decode(claim["w"]), strict=True)
    except unreadable:
        return {"nonplain": _type_of(value)}
    return seen


def run(remote: Any, name: str, spec: Mapping[str, Any]) -> Outcome:
    """Run every case of ``spec`` (the job's ``differential``) through one batched request to
    the candidate (``remote.batch``), and compare.
    """
    outcome = Outcome()
    compare = spec.get("compare") if isinstance(spec.get("compare"), dict) else {}
    given = spec.get("cases")
    cases: list[Any] = given if isinstance(given, list) else []
    claims = remote.batch(name, [case[0] for case in cases]) if cases else []
    if not isinstance(claims, list) or len(claims) != len(cases):
        claims = [None] * len(cases)  # a reply that is not one observation per input
    hasher = hashlib.sha256()
    for (arguments, expected, tier), claim in zip(cases, claims, strict=True):
        seen = _observation(claim)
        hasher.update(_text(canonical(seen)).encode() + b"\n")
        why = agree(seen, expected, compare or {}, arguments)
        if why is None:
            continue
        call_text = _call_text(name, arguments)
        if why == "mutated":
            message = MUTATED.format(call=call_text)
        elif why.startswith("expected "):
            message = f"differs from the reference on {call_text}: {why}"
        else:
            message = f"{why}, on {call_text}"
        ranked = (_size(arguments), message[:MESSAGE_LIMIT])
        if outcome.stronger is None or ranked[0] < outcome.stronger[0]:
            outcome.stronger = ranked
        if tier == ORIGINAL and (outcome.original is None or ranked[0] < outcome.original[0]):
            outcome.original = ranked
    # No input, no behaviour: a fingerprint of nothing would make every candidate alike.
    outcome.behaviour = hasher.hexdigest()[:16] if cases else None
    return outcome
