"""HumanEval-format datasets: plain and gzip JSONL, and every malformed-line message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.datasets import FIX_HINT, TEST_HINT, is_dataset_path, iter_dataset
from pytest_passk.errors import TaskFormatError
from pytest_passk.tasks import CheckTest, Task

EXAMPLE = Path(__file__).parents[2] / "examples" / "passk_humaneval_mini.jsonl"


def record(task_id: object = "T/0", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "task_id": task_id,
        "prompt": "def inc(x):\n",
        "entry_point": "inc",
        "test": "def check(candidate):\n    assert candidate(1) == 2\n",
        "canonical_solution": "    return x + 1\n",
    }
    base.update(changes)
    return {key: value for key, value in base.items() if value is not ...}


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def load(path: Path) -> list[tuple[int, Task | TaskFormatError]]:
    return list(iter_dataset(path))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("passk_x.jsonl", True),
        ("x.jsonl.gz", True),
        ("x.json", False),
        ("x.jsonl.bz2", False),
        ("jsonl", False),
    ],
)
def test_is_dataset_path(name: str, expected: bool) -> None:
    assert is_dataset_path(Path("dir") / name) is expected


def test_a_good_line_becomes_a_task(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [json.dumps(record())])
    ((lineno, task),) = load(path)
    assert lineno == 1
    assert task == Task(
        task_id="T/0",
        prompt="def inc(x):\n",
        entry_point="inc",
        test=CheckTest("def check(candidate):\n    assert candidate(1) == 2\n"),
        reference="def inc(x):\n    return x + 1\n",
        origin=f"{path}:1",
    )


def test_without_canonical_solution_there_is_no_reference(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [json.dumps(record(canonical_solution=...))])
    ((_, task),) = load(path)
    assert isinstance(task, Task) and task.reference is None


def test_gzip_and_plain_give_the_same_tasks(tmp_path: Path) -> None:
    lines = [json.dumps(record(f"T/{i}")) for i in range(3)]
    plain = write(tmp_path / "d.jsonl", lines)
    packed = tmp_path / "d.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    from_plain = [(n, t.task_id) for n, t in load(plain) if isinstance(t, Task)]
    from_gzip = [(n, t.task_id) for n, t in load(packed) if isinstance(t, Task)]
    assert from_plain == from_gzip == [(1, "T/0"), (2, "T/1"), (3, "T/2")]


def test_gzip_is_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(gzip.compress((json.dumps(record()) + "\n").encode()))
    ((_, task),) = load(path)
    assert isinstance(task, Task)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(record()).encode() + b"\n")
    ((_, task),) = load(path)
    assert isinstance(task, Task)


def test_blank_lines_are_skipped_and_numbering_is_kept(tmp_path: Path) -> None:
    path = write(
        tmp_path / "d.jsonl", ["", json.dumps(record("A")), "   ", json.dumps(record("B"))]
    )
    assert [(n, getattr(t, "task_id", None)) for n, t in load(path)] == [(2, "A"), (4, "B")]


def test_the_shipped_example_loads() -> None:
    items = load(EXAMPLE)
    assert items and all(isinstance(task, Task) for _, task in items)


BAD_LINES = [
    ("{not json", "invalid JSON (Expecting property name enclosed in double quotes at column 2)"),
    ('["a", "list"]', "a JSON list is not a task"),
    ("42", "a JSON int is not a task"),
    (json.dumps(record(prompt=...)), "missing or non-string field(s) prompt"),
    (json.dumps(record(task_id=7, test=None)), "missing or non-string field(s) task_id, test"),
    (json.dumps(record(entry_point="not-a-name")), "entry_point 'not-a-name' is not an identifier"),
    (json.dumps(record(entry_point="lambda")), "entry_point 'lambda' is not an identifier"),
    (json.dumps(record(canonical_solution=3)), "canonical_solution is not a string"),
]


@pytest.mark.parametrize(("line", "what"), BAD_LINES)
def test_malformed_line_names_file_line_and_fix(tmp_path: Path, line: str, what: str) -> None:
    path = write(
        tmp_path / "d.jsonl", [json.dumps(record("ok/1")), line, json.dumps(record("ok/2"))]
    )
    items = load(path)
    assert [n for n, _ in items] == [1, 2, 3]
    good1, bad, good2 = (item for _, item in items)
    assert isinstance(good1, Task) and isinstance(good2, Task)  # the other tasks still load
    assert isinstance(bad, TaskFormatError)
    assert bad.where == f"{path}:2"
    assert bad.what == what
    assert bad.fix == FIX_HINT
    assert str(bad).startswith(f"{path}:2: {what}; ")


@pytest.mark.parametrize(
    ("test", "what"),
    [
        ("def check_all(candidate):\n    pass\n", "field test does not define check(candidate)"),
        ("# def check(candidate): commented out\n", "field test does not define check(candidate)"),
        (
            "def check(candidate)\n    pass\n",
            "field test is not valid Python (expected ':', its line 1)",
        ),
        ("check = None\n", "field test does not define check(candidate)"),
    ],
)
def test_test_field_must_define_check(tmp_path: Path, test: str, what: str) -> None:
    path = write(tmp_path / "d.jsonl", [json.dumps(record(test=test))])
    ((_, bad),) = load(path)
    assert isinstance(bad, TaskFormatError)
    assert (bad.where, bad.what, bad.fix) == (f"{path}:1", what, TEST_HINT)


def test_check_with_a_different_spacing_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [json.dumps(record(test="def  check( c ):\n    pass\n"))])
    ((_, task),) = load(path)
    assert isinstance(task, Task)


def test_duplicate_task_id_points_at_the_first(tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", [json.dumps(record("X")), "", json.dumps(record("X"))])
    (_, first), (lineno, dup) = load(path)
    assert isinstance(first, Task) and lineno == 3
    assert isinstance(dup, TaskFormatError)
    assert dup.where == f"{path}:3"
    assert dup.what == "duplicate task_id 'X' (first on line 1)"
    assert dup.fix == "make ids unique"


def test_a_bad_line_does_not_reserve_its_id(tmp_path: Path) -> None:
    # The first line is malformed, so the second one is the only task named X.
    path = write(
        tmp_path / "d.jsonl",
        [json.dumps(record("X", entry_point="1x")), json.dumps(record("X"))],
    )
    (_, first), (_, second) = load(path)
    assert isinstance(first, TaskFormatError)
    assert isinstance(second, Task)


def test_truncated_gzip_is_one_error_for_the_file(tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps(record(f"T/{i}")) + "\n" for i in range(200)).encode())
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(TaskFormatError) as info:
        load(path)
    assert info.value.where == str(path)
    assert info.value.what.startswith("cannot read the dataset (")
    assert info.value.fix == "give an intact .jsonl or .jsonl.gz file"


def test_corrupt_gzip_data_is_a_task_format_error(tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps(record(f"T/{i}")) + "\n" for i in range(200)).encode())
    corrupt = data[:20] + bytes(b ^ 0xFF for b in data[20:80]) + data[80:]
    path = tmp_path / "d.jsonl.gz"
    path.write_bytes(corrupt)
    with pytest.raises(TaskFormatError, match="cannot read the dataset"):
        load(path)


def test_not_utf8_is_a_task_format_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"task_id": "\xff\xfe"}\n')
    with pytest.raises(TaskFormatError, match="cannot read the dataset"):
        load(path)


def test_missing_file_is_a_task_format_error(tmp_path: Path) -> None:
    with pytest.raises(TaskFormatError, match="cannot read the dataset"):
        load(tmp_path / "absent.jsonl")
