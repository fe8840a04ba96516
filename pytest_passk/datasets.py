"""HumanEval-format datasets: JSONL, plain or gzip-compressed, one task per line.

Each line holds ``task_id``, ``prompt``, ``entry_point`` and ``test`` (source defining
``check(candidate)``), optionally ``canonical_solution`` (a completion of the prompt). A malformed
line becomes a :class:`TaskFormatError` naming ``file:line``; the file's other tasks still load.

EvalPlus lines (HumanEval+, MBPP+: ``base_input``, ``plus_input``, ``atol`` and a
``canonical_solution``) are tasks with stronger tests (:mod:`pytest_passk.datasets_evalplus`).
"""

from __future__ import annotations

import ast
import gzip
import json
import keyword
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pytest_passk.errors import TaskFormatError
from pytest_passk.tasks import CheckTest, Task

__all__ = ["is_dataset_path", "iter_dataset", "open_text"]

REQUIRED_FIELDS = ("task_id", "prompt", "entry_point", "test")
TEST_HINT = "the test must be Python source defining check(candidate) at its top level"
FIX_HINT = (
    "each line must be a JSON object with string fields task_id, prompt, entry_point and test "
    "(HumanEval format)"
)


def is_dataset_path(path: Path) -> bool:
    """Whether ``path`` names a dataset file by its suffix (``.jsonl`` or ``.jsonl.gz``)."""
    name = path.name
    return name.endswith((".jsonl", ".jsonl.gz"))


def open_text(path: Path) -> IO[str]:
    """Open a plain or gzip-compressed text file (by magic number, not by name)."""
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return gzip.open(path, "rt", encoding="utf-8-sig")
    # utf-8-sig: files saved by Windows tools start with a byte-order mark.
    return path.open("r", encoding="utf-8-sig")


def iter_dataset(path: Path) -> Iterator[tuple[int, Task | TaskFormatError]]:
    """Yield ``(line number, task or error)`` for every non-blank line of a dataset file.

    Raises:
        TaskFormatError: when the file as a whole cannot be read (bad gzip data, not UTF-8).

    """
    seen: dict[str, int] = {}
    try:
        with open_text(path) as stream:
            for lineno, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                item = _parse_line(path, lineno, line, seen)
                yield lineno, item
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise TaskFormatError(
            str(path), f"cannot read the dataset ({exc})", "give an intact .jsonl or .jsonl.gz file"
        ) from exc


def _parse_line(path: Path, lineno: int, line: str, seen: dict[str, int]) -> Task | TaskFormatError:
    where = f"{path}:{lineno}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        return TaskFormatError(where, f"invalid JSON ({exc.msg} at column {exc.colno})", FIX_HINT)
    if not isinstance(record, dict):
        return TaskFormatError(where, f"a JSON {type(record).__name__} is not a task", FIX_HINT)
    if "base_input" in record:
        from pytest_passk.datasets_evalplus import evalplus_task

        found = evalplus_task(record, where, seen)
        if isinstance(found, Task):
            seen[found.task_id] = lineno
        return found
    missing = [name for name in REQUIRED_FIELDS if not isinstance(record.get(name), str)]
    if missing:
        return TaskFormatError(
            where, f"missing or non-string field(s) {', '.join(missing)}", FIX_HINT
        )
    task_id: str = record["task_id"]
    if task_id in seen:
        return TaskFormatError(
            where,
            f"duplicate task_id {task_id!r} (first on line {seen[task_id]})",
            "make ids unique",
        )
    entry_point: str = record["entry_point"]
    if not entry_point.isidentifier() or keyword.iskeyword(entry_point):
        return TaskFormatError(where, f"entry_point {entry_point!r} is not an identifier", FIX_HINT)
    problem = _test_problem(record["test"])
    if problem is not None:
        return TaskFormatError(where, problem, TEST_HINT)
    solution = record.get("canonical_solution")
    if solution is not None and not isinstance(solution, str):
        return TaskFormatError(where, "canonical_solution is not a string", FIX_HINT)
    # Only a task that loads claims its id: a bad line must not turn a good one into a duplicate.
    seen[task_id] = lineno
    return Task(
        task_id=task_id,
        prompt=record["prompt"],
        entry_point=entry_point,
        test=CheckTest(record["test"]),
        reference=record["prompt"] + solution if solution is not None else None,
        origin=where,
    )


def _test_problem(source: str) -> str | None:
    """Why a dataset's ``test`` field cannot judge candidates, or ``None`` when it can."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return f"field test is not valid Python ({exc.msg}, its line {exc.lineno})"
    except ValueError as exc:  # null bytes
        return f"field test is not valid Python ({exc})"
    defines_check = any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "check"
        for node in tree.body
    )
    return None if defines_check else "field test does not define check(candidate)"
