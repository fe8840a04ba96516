"""Generation backends: the :class:`Backend` seam and the records that cross it.

A backend turns rendered prompts into completions. It gets every request of a run at once (vLLM
wants all prompts in one batch; API clients want many concurrent requests) and returns exactly the
number of completions asked for each, or raises :class:`~pytest_passk.errors.BackendError`. Only a
:class:`Recording` (a fixed file of samples) may return fewer. Backends import their heavy
dependencies lazily, inside the module that :mod:`pytest_passk.backends.registry` loads on demand.

Samples are identified by their index: request ``(task, start, n)`` asks for samples ``start`` ..
``start + n - 1`` of the task, and the sample store (:mod:`pytest_passk.store`) keeps each index
once. A backend that honours seeds should derive sample ``i``'s randomness from ``(params.seed, i)``
so that sample ``i`` is the same whatever ``n`` a run asks for.

Every completion should also be handed to the optional ``sink`` of :meth:`Backend.generate` as soon
as it arrives, so the store keeps it even when the run is killed before the batch returns. A backend
that cannot stream may ignore the sink: whatever it returns is stored when it returns.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pytest_passk.prompts import CompletionForm, PromptStyle, RenderedPrompt

__all__ = [
    "USAGE_UNDERCOUNTED",
    "Backend",
    "BackendContext",
    "BackendStats",
    "Completion",
    "CompletionForm",
    "GenerationRequest",
    "ModelSpec",
    "PromptStyle",
    "Recording",
    "RenderedPrompt",
    "SampleSink",
    "SamplingParams",
]

#: :attr:`Completion.metadata` key a backend sets (to ``True``) on a sample whose token usage
#: the server undercounted (some compatible servers count one choice's tokens when ``n > 1``):
#: the report then says its token totals and cost are lower bounds.
USAGE_UNDERCOUNTED = "usage_undercounted"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A resolved ``--model``: ``label`` as the user wrote it, and the provider and model."""

    label: str
    provider: str
    name: str
    #: Where a relative path in ``name`` starts, when not where pytest was started (a model
    #: named in an ini file is relative to that file).
    base_dir: str | None = None

    @property
    def spec(self) -> str:
        """``provider:name``, the canonical spelling."""
        return f"{self.provider}:{self.name}"


@dataclass(frozen=True, slots=True)
class BackendContext:
    """What providers may need from the run: where relative paths start, the API's settings."""

    base_dir: Path
    base_url: str | None = None
    #: The sample store (``--passk-store``); models converted for a backend are kept under it.
    store_dir: Path | None = None
    #: Concurrent requests to an API backend (``--passk-concurrency``).
    concurrency: int = 16
    #: Seconds per API request (``--passk-request-timeout``).
    request_timeout: float = 600.0
    #: Draw through OpenAI's Batch API (``--passk-openai-batch``).
    openai_batch: bool = False
    #: Seconds a run waits for its Batch API jobs before leaving them pending for the next run.
    batch_wait: float = 300.0


@dataclass(frozen=True, slots=True)
class SamplingParams:
    """Every parameter that shapes a sample; all of them belong in a sample's store key."""

    temperature: float = 0.8
    top_p: float = 0.95
    max_tokens: int = 1024
    seed: int = 0


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    """Samples ``start`` .. ``start + n - 1`` of one task."""

    task_id: str
    prompt: RenderedPrompt
    n: int
    start: int = 0


@dataclass(frozen=True, slots=True)
class Completion:
    """One generated sample as the backend returned it.

    ``metadata`` is plain JSON data the backend wants kept with the sample (a response id, the
    served model snapshot, a system fingerprint); the store writes it beside the sample.
    """

    text: str
    form: CompletionForm
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None
    latency: float = 0.0
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


#: ``sink(request_position, sample_index, completion)``: one completion, as soon as it arrives.
#: ``request_position`` is the request's position in the ``requests`` passed to ``generate`` and
#: ``sample_index`` the absolute index (``request.start`` + offset). Safe to call from any thread.
SampleSink = Callable[[int, int, Completion], None]


class Backend(Protocol):
    """A source of samples."""

    @property
    def model(self) -> str:
        """The concrete model the samples come from (after resolving aliases)."""
        ...

    @property
    def prompt_style(self) -> PromptStyle:
        """Whether this backend continues prompts or answers chat messages."""
        ...

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """Return ``request.n`` completions for each request, in order.

        When ``sink`` is given, call it with each completion as it arrives, before returning
        (see :data:`SampleSink`); completions the sink never saw are stored from the return value.

        Raises:
            BackendError: when samples cannot be produced; never return fewer silently.

        """
        ...

    def close(self) -> None:
        """Release engines, connections and GPU memory."""
        ...


@runtime_checkable
class Recording(Protocol):
    """A backend that replays a fixed set of samples and may hold fewer than asked for."""

    def recorded(self, task_id: str) -> int:
        """How many samples are recorded for ``task_id``."""
        ...


@runtime_checkable
class BackendStats(Protocol):
    """What a backend that keeps count of its work exposes as ``backend.stats``; the run prints
    its summary line after the backend drew samples.
    """

    samples: int

    def summary(self) -> str:
        """One line: requests and retries, or engine time; samples and tokens."""
        ...
