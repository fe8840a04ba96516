"""The generation phase: draw the samples a run needs, through the sample store.

:class:`Sampler` sits between the run and the backend. For every request it reads what the store
already holds, takes the locks of the streams that miss samples (only those nobody else is
drawing), asks the backend for the missing indices of all of them in one batched call, and writes
each sample to the store the moment the backend hands it over. Streams another process is drawing
are waited for and read afterwards; if that process died, their remaining samples are drawn here.

Recordings (``replay:``) bypass the store: their samples are already on disk, and copying them would
serve stale copies after the recording is edited.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from pytest_passk.backends import Backend, Completion, GenerationRequest, Recording, SamplingParams
from pytest_passk.errors import BackendError
from pytest_passk.store import SampleStore, StoredSample, StreamKey
from pytest_passk.store.locks import Heartbeat
from pytest_passk.store.samples import StreamWriter

__all__ = ["SHORT_BACKEND", "CodeExtractor", "SampleOrigin", "Sampler"]

SHORT_BACKEND = "the {model} backend returned {got} samples for {task_id} instead of {want}"
BAD_INDEX = "the {model} backend handed over sample {index} of {task_id}, which was not asked for"

#: Turns a request's completion into the program to run (kept with the sample for reports).
CodeExtractor = Callable[[GenerationRequest, Completion], "str | None"]
#: ``on_sample(done, total, completion)``: a new sample was stored; ``done`` of the ``total``
#: this backend call draws. Called from the backend's thread, one call at a time.
SampleProgress = Callable[[int, int, Completion], None]


@dataclass(frozen=True, slots=True)
class SampleOrigin:
    """Where one request's samples came from.

    ``fresh``: drawn during this run, here or by a concurrent process of it (another xdist
    worker); ``stored``: in the store from before; ``replayed``: from a recording, which
    bypasses the store.
    """

    fresh: int = 0
    stored: int = 0
    replayed: int = 0


class Sampler:
    """Draws samples for one model, through ``store`` when one is given."""

    def __init__(
        self,
        backend: Backend,
        params: SamplingParams,
        label: str,
        *,
        store: SampleStore | None = None,
        model_id: str | None = None,
        since: float | None = None,
    ) -> None:
        self.backend = backend
        self.params = params
        self.label = label
        self.store = store
        self.model_id = model_id or backend.model
        #: When the run began: a stored sample drawn since then counts as fresh (another
        #: process of the same run, an xdist worker, drew it), not as read from an earlier run.
        self.since = since
        #: Samples this sampler asked the backend for, and samples it served from the store.
        self.drawn = 0
        self.reused = 0
        #: Samples served by a recording, which bypasses the store.
        self.replayed = 0
        #: Per request of the last :meth:`draw`, where its samples came from.
        self.origins: list[SampleOrigin] = []

    def draw(
        self,
        requests: Sequence[GenerationRequest],
        *,
        extract: CodeExtractor | None = None,
        on_sample: SampleProgress | None = None,
    ) -> list[list[Completion]]:
        """Exactly ``request.n`` completions per request (fewer only from a recording).

        Raises:
            BackendError: when the backend fails or returns fewer samples than asked (the
                samples it did hand over are kept in the store).
            StoreError: when the store cannot be written, or its lock is held too long.

        """
        if self.store is None or isinstance(self.backend, Recording):
            batches = self._direct(requests)
            recording = isinstance(self.backend, Recording)
            self.origins = [
                SampleOrigin(replayed=len(b)) if recording else SampleOrigin(fresh=len(b))
                for b in batches
            ]
            return batches
        store = self.store
        keys = [StreamKey(self.model_id, self.params, r.task_id, r.prompt) for r in requests]
        wanted: dict[StreamKey, set[int]] = {}
        for key, request in zip(keys, requests, strict=True):
            wanted.setdefault(key, set()).update(range(request.start, request.start + request.n))
        have = {key: store.read(key) for key in wanted}
        initially = {key: set(have[key]) for key in wanted}
        before = sum(len(initially[key] & indices) for key, indices in wanted.items())
        if any(not indices <= have[key].keys() for key, indices in wanted.items()):
            # One drawer per model and parameters at a time: whoever waits here finds the
            # samples in the store afterwards, and never loads the model.
            group = store.group_lock(keys[0])
            group.acquire()
            try:
                with Heartbeat([group]):
                    have = {key: store.read(key) for key in wanted}
                    self._draw_streams(store, wanted, have, extract, on_sample)
            finally:
                group.release()
        self.reused += before
        self.origins = []
        for key, r in zip(keys, requests, strict=True):
            stored = sum(
                1
                for i in initially[key] & set(range(r.start, r.start + r.n))
                if self.since is None or have[key][i].drawn_at < self.since
            )
            self.origins.append(SampleOrigin(fresh=r.n - stored, stored=stored))
        return [
            [have[key][i].completion for i in range(r.start, r.start + r.n)]
            for key, r in zip(keys, requests, strict=True)
        ]

    def _draw_streams(
        self,
        store: SampleStore,
        wanted: dict[StreamKey, set[int]],
        have: dict[StreamKey, dict[int, StoredSample]],
        extract: CodeExtractor | None,
        on_sample: SampleProgress | None,
    ) -> None:
        """Draw every missing index of ``wanted``, one stream lock at a time where others hold
        some (an older process without the group lock), until none is missing.
        """
        while True:
            missing = {
                key: sorted(indices - have[key].keys())
                for key, indices in wanted.items()
                if not indices <= have[key].keys()
            }
            if not missing:
                break
            locks = {key: store.lock(key) for key in missing}
            held = [key for key, lock in locks.items() if lock.try_acquire()]
            if not held:
                # Everything missing is being drawn elsewhere: wait for one stream, then look again.
                first = next(iter(missing))
                locks[first].acquire()
                held = [first]
            try:
                with Heartbeat(locks[key] for key in held):
                    for key in held:
                        have[key] = store.repair(key)
                    self._draw_missing(
                        store,
                        {key: sorted(wanted[key] - have[key].keys()) for key in held},
                        have,
                        extract,
                        on_sample,
                    )
            finally:
                for key in held:
                    locks[key].release()
            for key in missing.keys() - set(held):
                have[key] = store.read(key)

    def _direct(self, requests: Sequence[GenerationRequest]) -> list[list[Completion]]:
        batches = self.backend.generate(requests, self.params)
        self._check_answered(requests, batches)
        recording = isinstance(self.backend, Recording)
        for request, completions in zip(requests, batches, strict=True):
            if len(completions) < request.n and not recording:
                raise self._short(request, len(completions))
        count = sum(len(batch) for batch in batches)
        if recording:
            self.replayed += count
        else:
            self.drawn += count
        return [list(batch) for batch in batches]

    def _draw_missing(
        self,
        store: SampleStore,
        missing: dict[StreamKey, list[int]],
        have: dict[StreamKey, dict[int, StoredSample]],
        extract: CodeExtractor | None,
        on_sample: SampleProgress | None,
    ) -> None:
        """One batched backend call for every missing index of the held streams."""
        requests: list[GenerationRequest] = []
        owners: list[StreamKey] = []
        for key, indices in missing.items():
            for start, n in _runs(indices):
                requests.append(GenerationRequest(key.task_id, key.prompt, n, start))
                owners.append(key)
        if not requests:
            return
        writers: dict[StreamKey, StreamWriter] = {}
        mutex = threading.Lock()
        total = sum(r.n for r in requests)
        done = 0

        def keep(position: int, index: int, completion: Completion) -> None:
            nonlocal done
            request, key = requests[position], owners[position]
            if not request.start <= index < request.start + request.n:
                raise BackendError(
                    BAD_INDEX.format(model=self.label, index=index, task_id=key.task_id)
                )
            with mutex:
                if index in have[key]:
                    return
                if key not in writers:
                    writers[key] = store.writer(key)
                code = extract(request, completion) if extract is not None else None
                have[key][index] = writers[key].append(index, completion, code)
                self.drawn += 1
                done += 1
                if on_sample is not None:
                    on_sample(done, total, completion)

        try:
            batches = self.backend.generate(requests, self.params, keep)
            self._check_answered(requests, batches)
            for position, (request, completions) in enumerate(zip(requests, batches, strict=True)):
                for offset, completion in enumerate(completions[: request.n]):
                    keep(position, request.start + offset, completion)
                if len(completions) < request.n:
                    raise self._short(request, len(completions))
        finally:
            for writer in writers.values():
                writer.close()

    def _check_answered(
        self, requests: Sequence[GenerationRequest], batches: Sequence[Sequence[Completion]]
    ) -> None:
        if len(batches) != len(requests):
            raise BackendError(
                f"the {self.label} backend answered {len(batches)} of {len(requests)} requests"
            )

    def _short(self, request: GenerationRequest, got: int) -> BackendError:
        return BackendError(
            SHORT_BACKEND.format(model=self.label, got=got, task_id=request.task_id, want=request.n)
        )


def _runs(indices: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted indices as ``(start, n)`` runs of consecutive values."""
    runs: list[tuple[int, int]] = []
    for index in sorted(indices):
        if runs and runs[-1][0] + runs[-1][1] == index:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs
