"""The generation phase: draw the samples a run needs from a backend, checking what comes back.

Kept apart from the pytest session so the sample store can sit between the run and the backend:
every request names a task, a rendered prompt, and the sample indices it needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from pytest_passk.backends import Backend, Completion, GenerationRequest, Recording, SamplingParams
from pytest_passk.errors import BackendError

__all__ = ["SHORT_BACKEND", "Sampler"]

SHORT_BACKEND = "the {model} backend returned {got} samples for {task_id} instead of {want}"


class Sampler:
    """Draws samples for one model."""

    def __init__(self, backend: Backend, params: SamplingParams, label: str) -> None:
        self.backend = backend
        self.params = params
        self.label = label

    def draw(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        """Exactly ``request.n`` completions per request (fewer only from a recording).

        Raises:
            BackendError: when the backend fails or returns fewer samples than asked.
        """
        batches = self.backend.generate(requests, self.params)
        if len(batches) != len(requests):
            raise BackendError(
                f"the {self.label} backend answered {len(batches)} of {len(requests)} requests"
            )
        recording = isinstance(self.backend, Recording)
        for request, completions in zip(requests, batches, strict=True):
            if len(completions) < request.n and not recording:
                raise BackendError(
                    SHORT_BACKEND.format(
                        model=self.label,
                        got=len(completions),
                        task_id=request.task_id,
                        want=request.n,
                    )
                )
        return [list(batch) for batch in batches]
