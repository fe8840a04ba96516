"""Where an item's samples come from: backends, the sample store, and the generation phase.

A process that runs items builds each model's backend once (a plugin's
``pytest_passk_make_backend`` first, then the built-in providers), draws the samples of every
selected item in one batched request set per model through the store, and hands each item its
samples when it runs.

Pure core: problems are the package's own errors (:class:`~pytest_passk.errors.PassKError`), and
the pytest shell decides what they mean for the run (a usage error, or failed items on an xdist
worker, which cannot stop the session).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_passk.backends import (
    Backend,
    BackendContext,
    BackendStats,
    Completion,
    GenerationRequest,
    ModelSpec,
    Recording,
    SamplingParams,
)
from pytest_passk.backends.registry import MODEL_ERROR, build_backend, check_backend
from pytest_passk.errors import (
    BackendError,
    PassKError,
    SamplesNotYet,
    SamplesPending,
    SamplesUnavailable,
    StoreError,
)
from pytest_passk.extract import ExtractMode, build_program
from pytest_passk.progress import PROGRESS_EVERY, Progress
from pytest_passk.prompts import render_prompt
from pytest_passk.store import SampleStore, concrete_model
from pytest_passk.store.sampler import SampleOrigin, Sampler
from pytest_passk.tasks import Task

__all__ = [
    "GENERATION_FAILED",
    "STORE_FAILED",
    "ItemToSample",
    "SampleSupply",
    "SamplingSetup",
]

STORE_FAILED = "--passk-store={root}: {error}"
GENERATION_FAILED = "--model={model}: generation failed: {error}"
SAMPLES_PENDING = "--model={model}: {error}"

#: A plugin's backend for a model (the ``pytest_passk_make_backend`` hook), or ``None``.
CustomBackend = Callable[[ModelSpec, BackendContext], "Backend | None"]


@dataclass(frozen=True, slots=True)
class SamplingSetup:
    """What the generation phase needs to know of the run."""

    models: tuple[ModelSpec, ...]
    params: SamplingParams
    #: ``--passk-n``; ``None``: max(K), or every recorded sample of a replayed task.
    n: int | None
    max_k: int
    context: BackendContext
    #: When the run began (``time.time()``; the xdist controller's, on its workers).
    started: float | None = None
    #: ``--passk-extract``: how answers become programs (the program kept with each sample).
    extract: ExtractMode = ExtractMode.AUTO


@dataclass(frozen=True, slots=True)
class ItemToSample:
    """One item of the run: its node id, its model's label and its task."""

    nodeid: str
    model: str
    task: Task


class SampleSupply:
    """Backends and the samples drawn from them, for the items of this process."""

    def __init__(
        self,
        setup: SamplingSetup,
        store: Callable[[], SampleStore],
        progress: Progress,
        *,
        custom_backend: CustomBackend | None = None,
    ) -> None:
        self._setup = setup
        self._open_store = store
        self._store: SampleStore | None = None
        self._progress = progress
        self._custom_backend = custom_backend
        self._errors: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}
        self._samples: dict[str, list[Completion]] = {}
        self._requested: dict[str, int] = {}
        self._origins: dict[str, SampleOrigin] = {}
        #: Samples of the items this process ran: drawn during the run (here, or by a
        #: concurrent process such as another xdist worker), read from the store, replayed.
        #: Counted when an item takes its samples, so every sample counts once across workers.
        self.drawn = 0
        self.reused = 0
        self.replayed = 0

    # -- backends ------------------------------------------------------------------------------

    def check_models(self) -> None:
        """Cheap checks that every model can be used here (extra, key, GPU, file).

        A backend that a plugin provides is built here instead (the plugin answers for its own
        needs), as is one that costs no more to build than to check (a recording).

        Raises:
            SamplesUnavailable: naming the ``--model`` and the fix.

        """
        for model in self._setup.models:
            try:
                backend = self._custom(model) or check_backend(model, self._setup.context)
            except PassKError as exc:
                raise _model_error(model, exc) from None
            if backend is not None:
                self._backends[model.label] = backend

    def _custom(self, model: ModelSpec) -> Backend | None:
        if self._custom_backend is None:
            return None
        return self._custom_backend(model, self._setup.context)

    def backend(self, model: ModelSpec) -> Backend:
        """The backend for ``model``, built on first use."""
        if model.label not in self._backends:
            try:
                self._backends[model.label] = self._custom(model) or build_backend(
                    model, self._setup.context
                )
            except PassKError as exc:
                raise _model_error(model, exc) from None
            backend = self._backends[model.label]
            # A backend that loads a model says so (loading, tokens/s), rate-limiting itself.
            if getattr(backend, "progress", False) is None:
                backend.progress = lambda line: self._progress.say(line, force=True)  # type: ignore[attr-defined]
        return self._backends[model.label]

    def close(self) -> None:
        """Release every backend, each even where an earlier one's release failed (whose error
        is raised once all are released: an engine left running outlives the run).
        """
        backends = list(self._backends.values())
        self._backends.clear()
        failure: Exception | None = None
        for backend in backends:
            try:
                backend.close()
            except Exception as exc:
                failure = failure or exc
        if failure is not None:
            raise failure

    @property
    def store(self) -> SampleStore:
        """The sample store, opened on first use."""
        if self._store is None:
            self._store = self._open_store()
        return self._store

    def sampler(self, model: ModelSpec) -> Sampler:
        """The sampler that draws ``model``'s samples, through the sample store."""
        backend = self.backend(model)
        return Sampler(
            backend,
            self._setup.params,
            model.label,
            store=self.store,
            model_id=concrete_model(model.provider, backend.model),
            since=self._setup.started,
        )

    # -- the generation phase ------------------------------------------------------------------

    def generate(self, items: Sequence[ItemToSample]) -> None:
        """Draw the samples of ``items``: one batched request set per model.

        Raises:
            SamplesUnavailable: when a backend or the store failed; the items it was for
                remember the message, and :meth:`take` raises it again for each of them.

        """
        failures: list[SamplesUnavailable] = []
        models = [m for m in self._setup.models if any(item.model == m.label for item in items)]
        for position, model in enumerate(models):
            selected = [item for item in items if item.model == model.label]
            try:
                self._generate_for(model, selected)
            except SamplesUnavailable as exc:
                failures.append(exc)
            if position < len(models) - 1:
                self._unload(model)
        if failures:
            raise failures[0]

    def _unload(self, model: ModelSpec) -> None:
        """Shut down ``model``'s engine, if its backend holds one (vLLM's ``loaded``), before the
        next model's loads: vLLM takes 90% of a GPU's memory, so a second engine beside the
        first fails to start. The backend starts its engine again if asked for more samples.
        """
        backend = self._backends.get(model.label)
        if backend is not None and getattr(backend, "loaded", False):
            backend.close()

    def _generate_for(self, model: ModelSpec, items: Sequence[ItemToSample]) -> None:
        try:
            backend = self.backend(model)
        except SamplesUnavailable as exc:
            self._errors.update((item.nodeid, str(exc)) for item in items)
            raise
        requests = []
        for item in items:
            n = self._n_for(item.task, backend)
            self._requested[item.nodeid] = n
            prompt = render_prompt(item.task, backend.prompt_style)
            requests.append(GenerationRequest(item.task.task_id, prompt, n))
        started = time.perf_counter()
        total = sum(r.n for r in requests)
        self._progress.say(
            f"passk: sampling {total} samples for {len(requests)} tasks from {model.label}"
        )
        tasks = {item.task.task_id: item.task for item in items}
        sampler = self.sampler(model)
        drawn_before = _drawn_by(backend)
        tokens = 0

        def on_sample(done: int, total: int, completion: Completion) -> None:
            nonlocal tokens
            tokens += completion.completion_tokens
            elapsed = max(time.perf_counter() - started, 1e-9)
            rate = f", {tokens / elapsed:.0f} tokens/s" if tokens else ""
            self._progress.say(f"passk: {model.label}: {done}/{total} samples drawn{rate}")

        try:
            batches = sampler.draw(
                requests,
                extract=lambda r, c: build_program(
                    tasks[r.task_id], c.text, c.form, self._setup.extract
                ),
                # A backend with its own progress lines (vLLM: loading, then samples and tokens/s
                # timed from when its engine was ready) says it better than a count from here.
                on_sample=None if hasattr(backend, "progress") else on_sample,
            )
        except (BackendError, StoreError) as exc:
            if isinstance(exc, SamplesPending):
                message = SAMPLES_PENDING.format(model=model.label, error=exc)
                self._errors.update((item.nodeid, message) for item in items)
                raise SamplesNotYet(message) from None
            if isinstance(exc, BackendError):
                message = GENERATION_FAILED.format(model=model.label, error=exc)
            else:
                message = STORE_FAILED.format(root=self.store.root, error=exc)
            self._errors.update((item.nodeid, message) for item in items)
            raise SamplesUnavailable(message) from None
        for item, completions, origin in zip(items, batches, sampler.origins, strict=True):
            self._samples[item.nodeid] = completions
            self._origins[item.nodeid] = origin
        elapsed = time.perf_counter() - started
        if elapsed > PROGRESS_EVERY:
            self._progress.say(
                f"passk: {total} samples from {model.label} in {elapsed:.1f} s", force=True
            )
        # What the backend did for them (requests and retries, engine time), when this draw
        # drew any: its counts are the run's, so a later draw served by the store (an item
        # rerun) does not repeat them.
        stats = getattr(backend, "stats", None)
        if isinstance(stats, BackendStats) and _drawn_by(backend) > drawn_before:
            self._progress.say(f"passk: {model.label}: {stats.summary()}", force=True)

    def _n_for(self, task: Task, backend: Backend) -> int:
        if self._setup.n is not None:
            return self._setup.n
        if isinstance(backend, Recording):
            return backend.recorded(task.task_id) or self._setup.max_k
        return self._setup.max_k

    def peek(self, nodeid: str) -> list[Completion] | None:
        """An item's samples, if the generation phase drew them (they stay available)."""
        return self._samples.get(nodeid)

    def take(self, item: ItemToSample) -> tuple[list[Completion], int]:
        """An item's samples and how many were requested; drawn now if the phase did not.

        Raises:
            SamplesUnavailable: with the reason, when they could not be drawn.

        """
        nodeid = item.nodeid
        if nodeid not in self._samples and nodeid not in self._errors:
            model = next(m for m in self._setup.models if m.label == item.model)
            # An item outside the generation phase; its failure is remembered below.
            with contextlib.suppress(SamplesUnavailable):
                self._generate_for(model, [item])
        if nodeid in self._errors:
            raise SamplesUnavailable(self._errors[nodeid])
        completions = self._samples.pop(nodeid)
        origin = self._origins.pop(nodeid, SampleOrigin())
        self.drawn += origin.fresh
        self.reused += origin.stored
        self.replayed += origin.replayed
        return completions, self._requested.get(nodeid, len(completions))


def _drawn_by(backend: Backend) -> int:
    """How many samples ``backend`` has drawn in this run, if it keeps count."""
    stats = getattr(backend, "stats", None)
    return stats.samples if isinstance(stats, BackendStats) else 0


def _model_error(model: ModelSpec, exc: PassKError) -> SamplesUnavailable:
    return SamplesUnavailable(MODEL_ERROR.format(label=model.label, error=exc))
