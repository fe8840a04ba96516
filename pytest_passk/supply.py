"""Where an item's samples come from: backends, the sample store, and the generation phase.

Processes that run items build each model's backend once (a plugin's
``pytest_passk_make_backend`` first, then the built-in providers), draw the samples of every
selected item in one batched request set per model through the store, and hand each item its
samples when it runs.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import pytest

from pytest_passk.backends import Backend, Completion, GenerationRequest, Recording
from pytest_passk.backends.registry import (
    BackendContext,
    ModelSpec,
    build_backend,
    check_backend,
)
from pytest_passk.errors import BackendError, PassKError
from pytest_passk.generation import Sampler
from pytest_passk.progress import PROGRESS_EVERY, Progress
from pytest_passk.prompts import build_program, render_prompt
from pytest_passk.settings import MODEL_ERROR, Settings
from pytest_passk.store import SampleStore, StoreError, concrete_model
from pytest_passk.tasks import Task

__all__ = ["STORE_FAILED", "SampleSupply", "StoreWarning"]

STORE_FAILED = "--passk-store={root}: {error}"
GENERATION_FAILED = "--model={model}: generation failed: {error}"


class StoreWarning(UserWarning):
    """The sample store found damaged records and repaired them."""


class SampleSupply:
    """Backends and the samples drawn from them, for the items of this process."""

    def __init__(
        self,
        config: pytest.Config,
        settings: Settings,
        progress: Progress,
        *,
        fail_items: bool = False,
    ) -> None:
        self._config = config
        self._settings = settings
        self._progress = progress
        # An xdist worker cannot stop the session with a usage error (xdist would only report
        # a crashed worker): there, a failed draw fails the items it was for, with its message.
        self._fail_items = fail_items
        self._errors: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}
        self._store: SampleStore | None = None
        self._samples: dict[str, list[Completion]] = {}
        self._requested: dict[str, int] = {}
        self.drawn = 0
        self.reused = 0
        self.replayed = 0

    # -- backends ------------------------------------------------------------------------------

    def _context(self) -> BackendContext:
        settings = self._settings
        return BackendContext(
            base_dir=Path(self._config.invocation_params.dir),
            base_url=settings.base_url,
            concurrency=settings.concurrency,
            request_timeout=settings.request_timeout,
            openai_batch=settings.openai_batch,
            store=settings.store,
        )

    def check_models(self) -> None:
        """Fail before collection when a model cannot be used here (extra, key, GPU, file).

        A backend that a plugin provides through ``pytest_passk_make_backend`` is built here
        instead (the plugin answers for its own needs).
        """
        for model in self._settings.models:
            try:
                backend = self._custom_backend(model) or check_backend(model, self._context())
                if backend is not None:
                    self._backends[model.label] = backend
            except PassKError as exc:
                raise pytest.UsageError(MODEL_ERROR.format(label=model.label, error=exc)) from None

    def _custom_backend(self, model: ModelSpec) -> Backend | None:
        backend: Backend | None = self._config.hook.pytest_passk_make_backend(
            config=self._config, model=model, context=self._context()
        )
        return backend

    def backend(self, model: ModelSpec) -> Backend:
        """The backend for ``model``, built on first use."""
        if model.label not in self._backends:
            try:
                self._backends[model.label] = self._custom_backend(model) or build_backend(
                    model, self._context()
                )
            except PassKError as exc:
                raise pytest.UsageError(MODEL_ERROR.format(label=model.label, error=exc)) from None
        return self._backends[model.label]

    def close(self) -> None:
        """Release every backend."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()

    # -- the store -----------------------------------------------------------------------------

    @property
    def store(self) -> SampleStore:
        """The sample store under ``--passk-store``."""
        if self._store is None:
            self._store = SampleStore(self._settings.store, warn=self.store_warning)
        return self._store

    def store_warning(self, message: str) -> None:
        """Repairs of damaged records: on the terminal, else as a Python warning."""
        if not self._progress.warn(message):
            warnings.warn(StoreWarning(message), stacklevel=2)

    def sampler(self, model: ModelSpec) -> Sampler:
        """The sampler that draws ``model``'s samples, through the sample store."""
        backend = self.backend(model)
        return Sampler(
            backend,
            self._settings.sampling,
            model.label,
            store=self.store,
            model_id=concrete_model(model.provider, backend.model),
        )

    # -- the generation phase ------------------------------------------------------------------

    def generate(self, items: Sequence[tuple[str, str, Task]]) -> None:
        """Draw samples for ``(nodeid, model label, task)`` items: one batch per model."""
        for model in self._settings.models:
            selected = [(nodeid, task) for nodeid, label, task in items if label == model.label]
            if selected:
                self._generate_for(model, selected)

    def _generate_for(self, model: ModelSpec, items: Sequence[tuple[str, Task]]) -> None:
        backend = self.backend(model)
        requests = []
        for nodeid, task in items:
            n = self._n_for(task, backend)
            self._requested[nodeid] = n
            prompt = render_prompt(task, backend.prompt_style)
            requests.append(GenerationRequest(task.task_id, prompt, n))
        started = time.perf_counter()
        total = sum(r.n for r in requests)
        self._progress.say(
            f"passk: sampling {total} samples for {len(requests)} tasks from {model.label}"
        )
        tasks = {task.task_id: task for _, task in items}
        sampler = self.sampler(model)
        try:
            batches = sampler.draw(
                requests,
                extract=lambda r, c: build_program(tasks[r.task_id], c.text, c.form),
            )
        except (BackendError, StoreError) as exc:
            if isinstance(exc, BackendError):
                message = GENERATION_FAILED.format(model=model.label, error=exc)
            else:
                message = STORE_FAILED.format(root=self._settings.store, error=exc)
            if not self._fail_items:
                raise pytest.UsageError(message) from None
            self._errors.update((nodeid, message) for nodeid, _ in items)
            return
        finally:
            self.drawn += sampler.drawn
            self.reused += sampler.reused
            self.replayed += sampler.replayed
        for (nodeid, _), completions in zip(items, batches, strict=True):
            self._samples[nodeid] = completions
        elapsed = time.perf_counter() - started
        if elapsed > PROGRESS_EVERY:
            self._progress.say(
                f"passk: {total} samples from {model.label} in {elapsed:.1f} s", force=True
            )

    def _n_for(self, task: Task, backend: Backend) -> int:
        if self._settings.n is not None:
            return self._settings.n
        if isinstance(backend, Recording):
            return backend.recorded(task.task_id) or self._settings.max_k
        return self._settings.max_k

    def peek(self, nodeid: str) -> list[Completion] | None:
        """An item's samples, if the generation phase drew them (they stay available)."""
        return self._samples.get(nodeid)

    def take(self, nodeid: str, model: ModelSpec, task: Task) -> tuple[list[Completion], int]:
        """An item's samples and how many were requested; drawn now if the phase did not."""
        if nodeid not in self._samples and nodeid not in self._errors:
            self._generate_for(model, [(nodeid, task)])  # an item outside the generation phase
        if nodeid in self._errors:
            pytest.fail(self._errors[nodeid], pytrace=False)
        completions = self._samples.pop(nodeid)
        return completions, self._requested.get(nodeid, len(completions))
