"""EvalPlus-format tasks (HumanEval+, MBPP+): given inputs, and outputs compared as EvalPlus does.

A line holds ``task_id``, ``prompt``, ``entry_point``, ``canonical_solution`` (HumanEval+: a
completion of the prompt; MBPP+: a whole program), ``base_input`` and ``plus_input`` (lists of
argument lists) and ``atol``; ``test`` (HumanEval+'s original ``check``) is optional. The
expected outputs are not read from the file: the canonical solution computes them in the trusted
pytest process (:mod:`pytest_passk.oracle`), as EvalPlus does. Outputs compare as EvalPlus's
``unsafe_execute`` compares them: ``==``, else, where ``atol`` is set or the expected output is a
float (then ``atol`` 1e-6), within ``atol`` (``numpy.testing.assert_allclose``'s rule).

The original tests are the task's ``check`` plus its base inputs; the stronger ones add the plus
inputs. EvalPlus's special oracles for three tasks (HumanEval/32 ``find_zero``, HumanEval/151,
Mbpp/295) are not reproduced: those tasks compare with ``==`` here.
"""

from __future__ import annotations

import ast
import keyword
import math
from typing import Any

from pytest_passk.differential import ORIGINAL, STRONGER, DifferentialSpec
from pytest_passk.errors import TaskFormatError
from pytest_passk.tasks import CheckTest, Task

__all__ = ["EVALPLUS_FIX", "evalplus_task"]

EVALPLUS_FIX = (
    "an EvalPlus line needs string fields task_id, prompt, entry_point and canonical_solution, "
    "lists base_input and plus_input (one argument list per input) and a number atol"
)
#: The test of a task whose line has no ``check``: its base inputs are its original tests.
NO_CHECK = "def check(candidate):\n    pass\n"


def evalplus_task(
    record: dict[str, Any], where: str, seen: dict[str, int]
) -> Task | TaskFormatError:
    """The task of one EvalPlus line, or why it is not one."""
    fields = ("task_id", "prompt", "entry_point", "canonical_solution")
    missing = [name for name in fields if not isinstance(record.get(name), str)]
    if missing:
        return TaskFormatError(
            where, f"missing or non-string field(s) {', '.join(missing)}", EVALPLUS_FIX
        )
    task_id, entry_point = str(record["task_id"]), str(record["entry_point"])
    if task_id in seen:
        return TaskFormatError(
            where,
            f"duplicate task_id {task_id!r} (first on line {seen[task_id]})",
            "make ids unique",
        )
    if not entry_point.isidentifier() or keyword.iskeyword(entry_point):
        return TaskFormatError(
            where, f"entry_point {entry_point!r} is not an identifier", EVALPLUS_FIX
        )
    base, plus = record.get("base_input") or [], record.get("plus_input") or []
    if not _inputs(base) or not _inputs(plus):
        return TaskFormatError(
            where, "base_input and plus_input must be lists of argument lists", EVALPLUS_FIX
        )
    atol = record.get("atol", 0)
    if (
        isinstance(atol, bool)
        or not isinstance(atol, int | float)
        or not math.isfinite(atol)
        or atol < 0
    ):
        return TaskFormatError(where, f"atol={atol!r} is not a number >= 0", EVALPLUS_FIX)
    prompt, solution = str(record["prompt"]), str(record["canonical_solution"])
    reference = solution if _defines(solution, entry_point) else prompt + solution
    test = record.get("test")
    has_check = isinstance(test, str) and _defines(test, "check")
    fixed = tuple((tuple(args), ORIGINAL) for args in base) + tuple(
        (tuple(args), STRONGER) for args in plus
    )
    return Task(
        task_id=task_id,
        prompt=prompt,
        entry_point=entry_point,
        test=CheckTest(str(test) if has_check else NO_CHECK),
        reference=reference,
        origin=where,
        differential=DifferentialSpec(fixed=fixed, atol=float(atol)),
    )


def _inputs(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(args, list) for args in value)


def _defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in tree.body
    )
