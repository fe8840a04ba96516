"""Differential tests: a task's candidates judged against its reference on generated inputs.

Pure core, no hypothesis at import time. The records here are what a task declares
(:class:`DifferentialSpec`: where its inputs come from, how outputs compare, how many) and what a
candidate's job carries into the sandbox (:class:`Differential`: the inputs and the reference's
outputs on them, as plain data, already computed). The inputs are drawn in the trusted pytest
process (:mod:`pytest_passk.inputs`), the reference's outputs computed there too, once per task
(:mod:`pytest_passk.oracle`); the sandbox's judge only calls the candidate and compares
(:mod:`pytest_passk.sandbox.inside.differ`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_EXAMPLES",
    "Approx",
    "Differential",
    "DifferentialSpec",
    "InputSource",
    "approx",
]

#: Generated inputs per differential or augmented task, unless ``examples=``/``--passk-examples``.
DEFAULT_EXAMPLES = 100
#: ``--passk-augment`` and ``--passk-examples`` (``pytest --help``).
AUGMENT_HELP = (
    "Run HumanEval-format tasks with a canonical_solution also on generated inputs checked "
    "against it; report pass@k on the original and on the stronger tests, and false positives"
)
EXAMPLES_HELP = f"Generated inputs per differential or augmented task (default: {DEFAULT_EXAMPLES})"
#: The ``inputs=`` value that derives a strategy from the reference's signature and type hints.
AUTO = "auto"
#: Which tier a differential case belongs to: the task's own tests (``ORIGINAL``: EvalPlus's base
#: inputs) or only the stronger ones (``STRONGER``: generated, augmented, EvalPlus's plus inputs).
ORIGINAL, STRONGER = 0, 1


@dataclass(frozen=True, slots=True)
class Approx:
    """Floats compare within ``rel`` (relative) or ``abs`` (absolute) tolerance; NaN equals NaN.

    Applied to every float inside lists, tuples and dict values; everything else (a set's
    elements among it) compares exactly.
    """

    rel: float = 1e-6
    abs: float = 1e-12

    def to_plain(self) -> dict[str, Any]:
        """The judge's comparison spec (plain data)."""
        return {"kind": "approx", "rel": self.rel, "abs": self.abs}


def approx(rel: float = 1e-6, abs: float = 1e-12) -> Approx:
    """Compare floats within a tolerance in a differential task: ``compare=passk.approx(...)``.

    Like ``pytest.approx``: a float ``x`` agrees with the reference's ``e`` when
    ``|x - e| <= max(rel * |e|, abs)``; NaN agrees with NaN; infinities only with themselves.
    """
    if not (math.isfinite(rel) and rel >= 0 and math.isfinite(abs) and abs >= 0):
        raise ValueError(f"approx(rel={rel!r}, abs={abs!r}): tolerances must be finite and >= 0")
    return Approx(rel, abs)


#: What ``inputs=`` may be: a hypothesis strategy of argument tuples, or ``"auto"``.
InputSource = Any


@dataclass(frozen=True, slots=True)
class DifferentialSpec:
    """How a task's stronger tests are made.

    Attributes:
        inputs: A hypothesis strategy of argument tuples, ``"auto"`` (from the reference's
            signature and type hints), or ``None`` (only ``fixed`` inputs).
        compare: ``None`` for exact equality on plain data, or :class:`Approx`.
        examples: Inputs to draw; ``None`` takes ``--passk-examples``.
        fixed: Inputs given as data (EvalPlus's ``base_input`` and ``plus_input``), each a tuple
            ``(arguments, tier)``.
        seeds: Argument tuples the task's own tests pass, mutated into more (``--passk-augment``).
        reference: The reference as a function, where the decorator got one (for ``"auto"``).
        drop_raising: Leave out inputs on which the reference raises (augmented datasets: the
            task's domain is unknown, and an exception says the input is outside it).
        atol: An EvalPlus task's absolute tolerance for floats: outputs compare as EvalPlus
            compares them (``None``: not an EvalPlus task).

    """

    inputs: InputSource = None
    compare: Approx | None = None
    examples: int | None = None
    fixed: tuple[tuple[tuple[Any, ...], int], ...] = ()
    seeds: tuple[tuple[Any, ...], ...] = ()
    reference: Callable[..., Any] | None = None
    drop_raising: bool = False
    atol: float | None = None

    def compare_plain(self) -> dict[str, Any]:
        """The judge's comparison spec."""
        if self.compare is not None:
            return self.compare.to_plain()
        if self.atol is not None:
            return {"kind": "evalplus", "atol": self.atol}
        return {"kind": "exact"}


@dataclass(frozen=True, slots=True)
class Differential:
    """What a candidate's job carries: the cases and the comparison, as canonical JSON text.

    ``cases`` is a JSON list of ``[arguments, expected, tier]``: ``arguments`` the encoded
    argument list (:func:`pytest_passk.sandbox.plain.encode`), ``expected`` the reference's
    observation (``{"ok": value}``, optionally ``"w"``: the arguments after the call where the
    reference changed them; or ``{"raise": type name}``). Text, so the job stays hashable and the
    verdict cache keys it as is.
    """

    cases: str
    compare: str
    #: Inputs the reference could not answer within its budget, or raised on (augmented
    #: datasets): left out, counted for the report.
    dropped: int = 0

    @classmethod
    def of(cls, cases: list[Any], compare: dict[str, Any], dropped: int = 0) -> Differential:
        """Build from plain data."""
        text = json.dumps(cases, separators=(",", ":"), allow_nan=False)
        return cls(text, json.dumps(compare, sort_keys=True), dropped)

    def request(self) -> dict[str, Any]:
        """The ``differential`` field of a :class:`~pytest_passk.sandbox.protocol.JobRequest`."""
        return {"cases": json.loads(self.cases), "compare": json.loads(self.compare)}

    @property
    def count(self) -> int:
        """How many cases."""
        return len(json.loads(self.cases))
