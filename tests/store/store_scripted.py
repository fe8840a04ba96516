"""A scripted backend behind the real :class:`~pytest_passk.backends.Backend` Protocol.

Sample ``i`` of a task is a correct continuation whose comment names the task, the index and the
parameters, so tests can tell samples apart while every candidate behaves the same (one program
per task after de-duplication keeps the tests fast). Every sample handed over is appended to a log
file, one ``task<TAB>index<TAB>temperature`` line, *after* the sink kept it: a sample logged twice
was drawn twice. Also used verbatim as a pytester ``conftest.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_passk.backends import Completion, GenerationRequest, SampleSink, SamplingParams
from pytest_passk.prompts import CompletionForm, PromptStyle, RenderedPrompt

ADD = RenderedPrompt(PromptStyle.COMPLETION, "def add(a, b):\n", (), ("\ndef ",))
PARAMS = SamplingParams()


def requests(n: int, tasks: int = 2, prompt: RenderedPrompt = ADD) -> list[GenerationRequest]:
    return [GenerationRequest(f"t/{t}", prompt, n) for t in range(tasks)]


class ScriptedBackend:
    """Deterministic samples, optionally slow, optionally failing after a number of samples."""

    def __init__(
        self,
        name: str = "scripted-1",
        log: Path | None = None,
        delay: float = 0.0,
        *,
        use_sink: bool = True,
        fail_after: int | None = None,
        short_by: int = 0,
    ) -> None:
        self.name = name
        self.log = log
        self.delay = delay
        self.use_sink = use_sink
        self.fail_after = fail_after
        self.short_by = short_by
        self.calls: list[list[tuple[str, int, int]]] = []

    @property
    def model(self) -> str:
        return self.name

    @property
    def prompt_style(self) -> PromptStyle:
        return PromptStyle.COMPLETION

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        self.calls.append([(r.task_id, r.start, r.n) for r in requests])
        produced = 0
        batches: list[list[Completion]] = []
        for position, request in enumerate(requests):
            batch: list[Completion] = []
            for index in range(request.start, request.start + request.n - self.short_by):
                if self.fail_after is not None and produced >= self.fail_after:
                    from pytest_passk.errors import BackendError

                    raise BackendError("scripted failure")
                if self.delay:
                    time.sleep(self.delay)
                completion = Completion(
                    text=_body(request, index, params),
                    form=CompletionForm.CONTINUATION,
                    prompt_tokens=7,
                    completion_tokens=3,
                    finish_reason="stop",
                    latency=0.001,
                    metadata={"backend": "scripted"},
                )
                if sink is not None and self.use_sink:
                    sink(position, index, completion)
                self._log(request.task_id, index, params)
                batch.append(completion)
                produced += 1
            batches.append(batch)
        return batches

    def close(self) -> None:
        pass

    def _log(self, task_id: str, index: int, params: SamplingParams) -> None:
        if self.log is None:
            return
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{task_id}\t{index}\t{params.temperature}\n".encode())
        finally:
            os.close(fd)


def _body(request: GenerationRequest, index: int, params: SamplingParams) -> str:
    name = request.prompt.text.split("(")[0].removeprefix("def ").strip()
    args = request.prompt.text.split("(")[1].split(")")[0]
    first = [a.split(":")[0].strip() for a in args.split(",") if a.strip()]
    expression = " + ".join(first) if name.startswith("add") else "None"
    return f"    return {expression}  # {request.task_id} #{index} T={params.temperature}\n"


def read_log(path: Path) -> list[tuple[str, int, str]]:
    """The log's lines as ``(task_id, index, temperature)``."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        task_id, index, temperature = line.split("\t")
        rows.append((task_id, int(index), temperature))
    return rows
