"""The ``replay:`` backend: recorded samples, their forms, and malformed recordings."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.backends import Completion, GenerationRequest, Recording, SamplingParams
from pytest_passk.backends.replay import FORMAT_HINT, ReplayBackend
from pytest_passk.errors import RecordingError
from pytest_passk.prompts import CompletionForm, PromptStyle, RenderedPrompt

PROMPT = RenderedPrompt(PromptStyle.COMPLETION, "def f():\n", (), ())


def write(path: Path, records: list[Any]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def ask(task_id: str, n: int, start: int = 0) -> GenerationRequest:
    return GenerationRequest(task_id, PROMPT, n, start)


def test_completion_and_solution_forms(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.jsonl",
        [
            {"task_id": "A", "completion": "    return 1\n"},
            {"task_id": "A", "solution": "def f():\n    return 2\n", "prompt_tokens": 3},
            {"task_id": "A", "completion": "x", "solution": "y", "completion_tokens": 4},
        ],
    )
    backend = ReplayBackend(path)
    assert backend.model == f"replay:{path}"
    assert backend.prompt_style is PromptStyle.COMPLETION
    assert isinstance(backend, Recording)
    ((first, second, third),) = backend.generate([ask("A", 3)], SamplingParams())
    assert first == Completion(
        "    return 1\n", CompletionForm.CONTINUATION, finish_reason="recorded"
    )
    assert (second.form, second.text, second.prompt_tokens) == (
        CompletionForm.PROGRAM,
        "def f():\n    return 2\n",
        3,
    )
    # A line with both: the whole program wins.
    assert (third.form, third.text, third.completion_tokens) == (CompletionForm.PROGRAM, "y", 4)
    backend.close()


def test_samples_are_served_in_file_order_per_task(tmp_path: Path) -> None:
    records = [{"task_id": t, "completion": f"{t}{i}"} for i in range(4) for t in ("A", "B")]
    backend = ReplayBackend(write(tmp_path / "s.jsonl", records))
    a, b, a_tail = backend.generate(
        [ask("A", 4), ask("B", 2), ask("A", 2, start=2)], SamplingParams()
    )
    assert [c.text for c in a] == ["A0", "A1", "A2", "A3"]
    assert [c.text for c in b] == ["B0", "B1"]
    assert [c.text for c in a_tail] == ["A2", "A3"]
    assert (backend.recorded("A"), backend.recorded("B"), backend.recorded("C")) == (4, 4, 0)


def test_fewer_samples_than_asked_are_returned_as_they_are(tmp_path: Path) -> None:
    backend = ReplayBackend(write(tmp_path / "s.jsonl", [{"task_id": "A", "completion": "x"}]))
    short, missing, beyond = backend.generate(
        [ask("A", 10), ask("unknown", 5), ask("A", 5, start=7)], SamplingParams()
    )
    assert [c.text for c in short] == ["x"]
    assert missing == [] and beyond == []


def test_gzip_recording_and_blank_lines(tmp_path: Path) -> None:
    text = '\n{"task_id": "A", "completion": "x"}\n\n{"task_id": "A", "completion": "y"}\n'
    path = tmp_path / "s.jsonl.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert ReplayBackend(path).recorded("A") == 2


@pytest.mark.parametrize(
    ("line", "what"),
    [
        ("{oops", "invalid JSON (Expecting property name enclosed in double quotes); "),
        ('["A", "x"]', "no string task_id; "),
        ('{"task_id": 3, "completion": "x"}', "no string task_id; "),
        ('{"completion": "x"}', "no string task_id; "),
        ('{"task_id": "A"}', "neither a string completion nor a solution; "),
        ('{"task_id": "A", "completion": null}', "neither a string completion nor a solution; "),
        ('{"task_id": "A", "solution": ["x"]}', "neither a string completion nor a solution; "),
    ],
)
def test_malformed_line_names_file_line_and_format(tmp_path: Path, line: str, what: str) -> None:
    path = write(tmp_path / "s.jsonl", [{"task_id": "A", "completion": "x"}, "", line])
    with pytest.raises(RecordingError) as info:
        ReplayBackend(path)
    assert str(info.value) == f"{path}:3: {what}{FORMAT_HINT}"


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, None])
def test_token_counts_must_be_non_negative_integers(tmp_path: Path, value: object) -> None:
    path = write(
        tmp_path / "s.jsonl", [{"task_id": "A", "completion": "x", "prompt_tokens": value}]
    )
    with pytest.raises(RecordingError) as info:
        ReplayBackend(path)
    assert str(info.value) == (
        f"{path}:1: prompt_tokens/completion_tokens must be non-negative integers"
    )


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "absent.jsonl"
    with pytest.raises(RecordingError) as info:
        ReplayBackend(path)
    assert str(info.value) == (
        f"replay file {path} does not exist; give --model=replay:PATH, a JSONL file of samples"
    )


def test_a_directory_is_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="does not exist"):
        ReplayBackend(tmp_path)


@pytest.mark.parametrize("damage", ["truncate", "corrupt", "not utf-8"])
def test_unreadable_recording(tmp_path: Path, damage: str) -> None:
    text = "".join(
        json.dumps({"task_id": f"T{i}", "completion": "x" * i}) + "\n" for i in range(300)
    )
    data = gzip.compress(text.encode())
    path = tmp_path / "s.jsonl.gz"
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "corrupt":
        path.write_bytes(data[:20] + bytes(b ^ 0xFF for b in data[20:80]) + data[80:])
    else:
        path = tmp_path / "s.jsonl"
        path.write_bytes(b'{"task_id": "\xff"}\n')
    with pytest.raises(RecordingError, match=rf"^{path}: cannot read the recording \("):
        ReplayBackend(path)
