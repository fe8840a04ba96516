r"""The ``fake:MODULE:FUNCTION`` backend: samples written by a Python function of your own.

For your own tests, benchmarks and docs: a backend that needs no model, no key and no file of
recordings, yet goes through the whole run like a real one (the sample store, the sink, the
sandbox). ``FUNCTION(task_id, prompt, index)`` returns sample ``index`` of the task as text that
continues the prompt (or, with ``prompt`` rendered for chat, a chat answer)::

    # fakes.py, beside your tests
    def half_right(task_id, prompt, index):
        return "    return a + b\n" if index % 2 == 0 else "    return a - b\n"

    pytest --passk=1,2 --model=fake:fakes:half_right

Used from Python, :class:`FakeBackend` takes the function directly, and records every call.
It is also the smallest complete backend: the model to copy when writing a new one (see
docs/architecture.md).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pytest_passk.backends import (
    BackendContext,
    Completion,
    CompletionForm,
    GenerationRequest,
    ModelSpec,
    PromptStyle,
    SampleSink,
    SamplingParams,
)
from pytest_passk.errors import BackendError, ModelSpecError

__all__ = ["Answer", "FakeBackend", "build_fake"]

#: ``answer(task_id, prompt_text, index)``: sample ``index`` of a task.
Answer = Callable[[str, str, int], str]
BAD_SPEC = "give fake:MODULE:FUNCTION, e.g. fake:fakes:half_right (a function in fakes.py)"


class FakeBackend:
    """A backend whose samples come from ``answer``; every call is kept in :attr:`calls`."""

    def __init__(
        self,
        answer: Answer,
        *,
        name: str = "fake",
        style: PromptStyle = PromptStyle.COMPLETION,
    ) -> None:
        self._answer = answer
        self._name = name
        self._style = style
        #: ``(task_id, start, n)`` of every request, one list per :meth:`generate` call.
        self.calls: list[list[tuple[str, int, int]]] = []

    @property
    def model(self) -> str:
        """The name given (part of every sample's store key)."""
        return self._name

    @property
    def prompt_style(self) -> PromptStyle:
        """Completion (the default) or chat."""
        return self._style

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """Call ``answer`` for every sample asked for, handing each to ``sink`` at once."""
        self.calls.append([(r.task_id, r.start, r.n) for r in requests])
        form = CompletionForm.CONTINUATION
        if self._style is PromptStyle.CHAT:
            form = CompletionForm.CHAT
        batches: list[list[Completion]] = []
        for position, request in enumerate(requests):
            batch = []
            for index in range(request.start, request.start + request.n):
                try:
                    text = self._answer(request.task_id, request.prompt.text, index)
                except Exception as exc:  # the user's function: its failure is a backend's
                    raise BackendError(f"{self._name}: {type(exc).__name__}: {exc}") from exc
                completion = Completion(
                    text=text,
                    form=form,
                    prompt_tokens=len(request.prompt.text.split()) if index == request.start else 0,
                    completion_tokens=len(text.split()),
                    finish_reason="stop",
                )
                if sink is not None:
                    sink(position, index, completion)
                batch.append(completion)
            batches.append(batch)
        return batches

    def close(self) -> None:
        """Nothing to release."""


def build_fake(model: ModelSpec, context: BackendContext) -> FakeBackend:
    """The provider: import ``FUNCTION`` from ``MODULE`` (found from where pytest started).

    Raises:
        ModelSpecError: for a malformed spec, or a module or function that cannot be found.

    """
    module_name, _, function = model.name.rpartition(":")
    if not module_name or not function:
        raise ModelSpecError(f"{model.name!r} names no function; {BAD_SPEC}")
    base = str(Path(model.base_dir) if model.base_dir else context.base_dir)
    if base not in sys.path:
        sys.path.insert(0, base)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelSpecError(f"cannot import {module_name!r} ({exc}); {BAD_SPEC}") from None
    answer = getattr(module, function, None)
    if not callable(answer):
        raise ModelSpecError(f"{module_name} has no function {function!r}; {BAD_SPEC}")
    return FakeBackend(answer, name=f"fake:{model.name}")
