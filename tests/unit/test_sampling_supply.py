"""The generation phase's account of a backend's work: printed once per draw that did work."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_passk.backends import (
    BackendContext,
    Completion,
    GenerationRequest,
    ModelSpec,
    SamplingParams,
)
from pytest_passk.progress import Progress
from pytest_passk.prompts import CompletionForm, PromptStyle
from pytest_passk.sampling import ItemToSample, SampleSupply, SamplingSetup
from pytest_passk.store import SampleStore
from pytest_passk.tasks import CheckTest, Task

TASK = Task("T/1", "def inc(x):\n", "inc", CheckTest("def check(c):\n    assert c(1) == 2\n"))
MODEL = ModelSpec("counting:m", "counting", "m")


class CountingStats:
    def __init__(self) -> None:
        self.samples = 0

    def summary(self) -> str:
        return f"{self.samples} samples drawn in all"


class CountingBackend:
    """Draws continuations and keeps a cumulative count, as the vLLM and OpenAI backends do."""

    model = "m"
    prompt_style = PromptStyle.COMPLETION

    def __init__(self) -> None:
        self.stats = CountingStats()

    def generate(
        self, requests: Sequence[GenerationRequest], params: SamplingParams, sink: object = None
    ) -> list[list[Completion]]:
        self.stats.samples += sum(r.n for r in requests)
        return [
            [Completion("    return x + 1\n", CompletionForm.CONTINUATION, 3, 5)] * r.n
            for r in requests
        ]

    def close(self) -> None:
        pass


def test_the_backend_summary_is_printed_only_after_draws_that_drew(tmp_path: Path) -> None:
    lines: list[str] = []

    def write(text: str, warning: bool) -> bool:
        lines.append(text)
        return True

    backend = CountingBackend()
    supply = SampleSupply(
        SamplingSetup((MODEL,), SamplingParams(), 2, 2, BackendContext(tmp_path)),
        lambda: SampleStore(tmp_path / "store"),
        Progress(write),
        custom_backend=lambda model, context: backend,
    )
    item = ItemToSample("data.jsonl::T/1[counting:m]", MODEL.label, TASK)
    supply.generate([item])
    assert supply.take(item)[1] == 2
    # A second take (pytest-rerunfailures reruns an item) reads its samples from the store.
    assert supply.take(item)[1] == 2
    summaries = [line for line in lines if "samples drawn in all" in line]
    assert summaries == ["passk: counting:m: 2 samples drawn in all"]
    assert (supply.drawn, supply.reused) == (2, 2)


def test_closing_releases_every_backend_though_one_fails(tmp_path: Path) -> None:
    class Failing(CountingBackend):
        def close(self) -> None:
            raise OSError("the engine's socket is gone")

    class Recorded(CountingBackend):
        closed = False

        def close(self) -> None:
            self.closed = True

    first, second = ModelSpec("a:m", "a", "m"), ModelSpec("b:m", "b", "m")
    backends = {first.label: Failing(), second.label: Recorded()}
    supply = SampleSupply(
        SamplingSetup((first, second), SamplingParams(), 1, 1, BackendContext(tmp_path)),
        lambda: SampleStore(tmp_path / "store"),
        Progress(None),
        custom_backend=lambda model, context: backends[model.label],
    )
    supply.check_models()
    with pytest.raises(OSError, match="socket is gone"):
        supply.close()
    assert backends[second.label].closed  # type: ignore[attr-defined]
    supply.close()  # nothing is closed twice
