"""OpenAI's Batch API: the same samples at half price, collected whenever the batch is done.

``--passk-openai-batch`` writes every missing chunk of samples as one line of a request file
(``custom_id``, ``method``, ``url``, ``body``: the body a live request would send, seed included),
uploads it (``purpose="batch"``), creates the batch and remembers its id in the store
(:mod:`pytest_passk.store.batches`) before anything else can go wrong. It then polls until the
batch ends or the wait runs out. A run that ends first says so (:class:`BatchPending`) and the next
run polls the same batch instead of paying again. Results go to the sink line by line; a batch
that expired, was cancelled or failed is reported with what it delivered, and its missing samples
are submitted again by the next run.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_passk.backends import Completion, GenerationRequest, SampleSink, SamplingParams
from pytest_passk.backends.openai_client import (
    NO_KEY_PLACEHOLDER,
    OpenAIEndpoint,
    ServerTarget,
    probe,
    scrub,
)
from pytest_passk.backends.openai_wire import MAX_CHOICES, RequestStats, parse_choices, request_body
from pytest_passk.errors import BackendError, BackendUnavailable, SamplesPending
from pytest_passk.prompts import PromptStyle
from pytest_passk.store.batches import BatchEntry, BatchLedger, PendingBatch
from pytest_passk.store.keys import digest, plain

if TYPE_CHECKING:
    import openai

__all__ = [
    "BATCH_ENDED",
    "BATCH_PENDING",
    "DEFAULT_BATCH_WAIT",
    "NO_STORE",
    "BatchBackend",
    "BatchPending",
]

#: Seconds a run waits for its batches before it ends and leaves them pending.
DEFAULT_BATCH_WAIT = 300.0
#: OpenAI's limit of request lines per batch.
MAX_LINES = 50_000
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

BATCH_PENDING = (
    "{server}: OpenAI batch {ids} still {status} ({done} of {total} requests done after "
    "{waited:.0f} s); its {missing} samples are paid for and will be collected by the next run "
    "with --passk-openai-batch"
)
BATCH_ENDED = (
    "{server}: OpenAI batch {batch_id} {status}{why}; {collected} of its {wanted} samples were "
    "stored, the next run with --passk-openai-batch submits the other {missing} again"
)
NO_STORE = (
    "--passk-openai-batch needs the sample store to remember pending batches; "
    "pass --passk-store=DIR"
)


class BatchPending(SamplesPending):
    """Samples are in a batch that has not finished yet: run again later to collect them."""


@dataclass
class _Open:
    """A batch this run waits for, and what it delivered."""

    batch: PendingBatch
    status: str = "validating"
    done: int = 0
    total: int = 0
    errors: list[str] = field(default_factory=list)


class BatchBackend:
    """Samples through the Batch API; see the module docstring."""

    def __init__(
        self,
        target: ServerTarget,
        store: Path | None,
        *,
        wait: float = DEFAULT_BATCH_WAIT,
        poll_interval: float = 2.0,
        max_poll_interval: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if store is None:
            raise BackendUnavailable(NO_STORE)
        self._target = target
        self._ledger = BatchLedger(store)
        self._wait = wait
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._sleep = sleep
        self.stats = RequestStats()
        self._probed = False
        #: Batches this backend submitted (ids), for tests and the summary.
        self.submitted: list[str] = []

    @property
    def model(self) -> str:
        """The model name as the server knows it."""
        return self._target.model

    @property
    def prompt_style(self) -> PromptStyle:
        """As for live requests."""
        return self._target.prompt_style

    def close(self) -> None:
        """Nothing held between calls."""

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """Collect pending batches that hold these samples, submit the rest, wait, collect.

        Raises:
            BatchPending: when the wait ran out before every batch ended.
            BackendError: when a batch expired, was cancelled or failed (what it delivered is
                stored), or a Batch API call failed.

        """
        import openai

        if not requests:
            return []
        if not self._probed:
            probe(self._target)
            self._probed = True
        run = _BatchRun(self, requests, params, sink)
        client = openai.OpenAI(
            api_key=self._target.api_key or NO_KEY_PLACEHOLDER, base_url=self._target.base_url
        )
        try:
            with client:
                return run.run(client)
        except openai.OpenAIError as exc:
            message = scrub(str(exc), self._target.api_key)[:300]
            raise BackendError(
                f"{self._target.display}: Batch API call failed: {message}"
            ) from None


class _BatchRun:
    """One ``generate`` call of :class:`BatchBackend`."""

    def __init__(
        self,
        backend: BatchBackend,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None,
    ) -> None:
        self.backend = backend
        self.target = backend._target
        self.requests = requests
        self.params = params
        self.sink = sink
        self.streams = [_stream(self.target, params, r) for r in requests]
        self.results: list[dict[int, Completion]] = [{} for _ in requests]

    def wanted(self, position: int) -> range:
        request = self.requests[position]
        return range(request.start, request.start + request.n)

    def missing(self) -> list[tuple[int, list[int]]]:
        """``(position, indices)`` of samples neither received nor waited for."""
        return [
            (p, [i for i in self.wanted(p) if i not in self.results[p]])
            for p in range(len(self.requests))
        ]

    def run(self, client: openai.OpenAI) -> list[list[Completion]]:
        started = time.monotonic()
        waiting = [_Open(b) for b in self._relevant()]
        covered = {(e.stream, i) for o in waiting for e in o.batch.entries for i in e.indices}
        entries: list[BatchEntry] = []
        lines: list[str] = []
        for position, indices in self.missing():
            stream = self.streams[position]
            todo = [i for i in indices if (stream, i) not in covered]
            for start, n in _chunks(todo):
                task_id = self.requests[position].task_id
                entry = BatchEntry(f"{stream[:24]}-{start}-{n}", stream, task_id, start, n)
                covered.update((stream, i) for i in entry.indices)
                entries.append(entry)
                body = request_body(self.target, self.requests[position], self.params, start, n)
                lines.append(json.dumps(_line(entry, body, self.target)))
        for first in range(0, len(entries), MAX_LINES):
            waiting.append(
                _Open(
                    self._submit(
                        client,
                        entries[first : first + MAX_LINES],
                        lines[first : first + MAX_LINES],
                    )
                )
            )
        ended = self._poll(client, waiting, started)
        if all(len(got) == len(self.wanted(p)) for p, got in enumerate(self.results)):
            return [[got[i] for i in self.wanted(p)] for p, got in enumerate(self.results)]
        still = [o for o in waiting if o.status not in TERMINAL]
        missing = sum(len(indices) for _, indices in self.missing())
        if still:
            raise BatchPending(
                BATCH_PENDING.format(
                    server=self.target.display,
                    ids=", ".join(o.batch.batch_id for o in still),
                    status="/".join(sorted({o.status for o in still})),
                    done=sum(o.done for o in still),
                    total=sum(o.total or len(o.batch.entries) for o in still),
                    waited=time.monotonic() - started,
                    missing=missing,
                )
            )
        worst = next((o for o in ended if o.status != "completed" or o.errors), ended[-1])
        wanted = sum(e.n for e in worst.batch.entries)
        collected = sum(
            1
            for e in worst.batch.entries
            for i in e.indices
            if any(i in self.results[p] for p, s in enumerate(self.streams) if s == e.stream)
        )
        why = f" ({'; '.join(worst.errors[:3])})" if worst.errors else ""
        raise BackendError(
            BATCH_ENDED.format(
                server=self.target.display,
                batch_id=worst.batch.batch_id,
                status=worst.status,
                why=scrub(why, self.target.api_key),
                collected=collected,
                wanted=wanted,
                missing=missing,
            )
        )

    def _relevant(self) -> list[PendingBatch]:
        """Pending batches of this server and model that hold samples asked for now."""
        wanted = {(s, i) for p, s in enumerate(self.streams) for i in self.wanted(p)}
        return [
            batch
            for batch in self.backend._ledger.pending()
            if batch.server == self.target.display
            and batch.model == self.target.model
            and any((e.stream, i) in wanted for e in batch.entries for i in e.indices)
        ]

    def _submit(
        self, client: openai.OpenAI, entries: list[BatchEntry], lines: list[str]
    ) -> PendingBatch:
        data = ("\n".join(lines) + "\n").encode()
        uploaded = client.files.create(file=("requests.jsonl", data), purpose="batch")
        created = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=_endpoint_path(self.target),  # type: ignore[arg-type]
            completion_window="24h",
            metadata={"source": "pytest-passk"},
        )
        batch = PendingBatch(
            batch_id=created.id,
            server=self.target.display,
            model=self.target.model,
            endpoint=self.target.endpoint.value,
            input_file_id=uploaded.id,
            submitted_at=time.time(),
            entries=tuple(entries),
        )
        self.backend._ledger.add(batch)
        self.backend.submitted.append(created.id)
        self.backend.stats.requests += len(entries)
        return batch

    def _poll(self, client: openai.OpenAI, waiting: list[_Open], started: float) -> list[_Open]:
        """Poll until every batch ended or the wait ran out; the ended ones, collected."""
        ended: list[_Open] = []
        interval = self.backend._poll_interval
        while True:
            for item in [o for o in waiting if o.status not in TERMINAL]:
                info = client.batches.retrieve(item.batch.batch_id)
                item.status = info.status
                counts = info.request_counts
                item.done = counts.completed if counts is not None else 0
                item.total = counts.total if counts is not None else 0
                if item.status in TERMINAL:
                    self._collect(client, item, info)
                    ended.append(item)
            left = self.backend._wait - (time.monotonic() - started)
            if all(o.status in TERMINAL for o in waiting) or left <= 0:
                return ended
            self.backend._sleep(min(interval, left))
            interval = min(interval * 2, self.backend._max_poll_interval)

    def _collect(self, client: openai.OpenAI, item: _Open, info: Any) -> None:
        """Hand a finished batch's results to the sink, then forget the batch."""
        import openai.types
        import openai.types.chat

        by_id = {e.custom_id: e for e in item.batch.entries}
        model: Any = openai.types.chat.ChatCompletion
        if self.target.endpoint is OpenAIEndpoint.COMPLETIONS:
            model = openai.types.Completion
        if info.errors is not None and info.errors.data:
            item.errors += [str(e.message) for e in info.errors.data if e.message]
        for file_id in (info.output_file_id, info.error_file_id):
            if not file_id:
                continue
            for line in client.files.content(file_id).text.splitlines():
                if line.strip():
                    self._collect_line(json.loads(line), by_id, model, item)
        # Lines asked for now are stored now; lines of tasks not selected in this run stay in
        # the ledger for the run that selects them. The batch is forgotten when none is left.
        wanted = {(s, i) for p, s in enumerate(self.streams) for i in self.wanted(p)}
        left = tuple(
            e for e in item.batch.entries if not all((e.stream, i) in wanted for i in e.indices)
        )
        if left:
            self.backend._ledger.add(dataclasses.replace(item.batch, entries=left))
        else:
            self.backend._ledger.remove(item.batch.batch_id)

    def _collect_line(
        self, result: dict[str, Any], by_id: dict[str, BatchEntry], model: Any, item: _Open
    ) -> None:
        entry = by_id.get(str(result.get("custom_id")))
        response = result.get("response") or {}
        if entry is None:
            return
        if response.get("status_code") != 200:
            error = result.get("error") or (response.get("body") or {}).get("error") or {}
            item.errors.append(str(error.get("message") or f"HTTP {response.get('status_code')}"))
            return
        for position, stream in enumerate(self.streams):
            if stream != entry.stream:
                continue
            request = self.requests[position]
            completions = parse_choices(
                model.model_validate(response["body"]),
                self.target.endpoint,
                request,
                self.params,
                entry.start,
                entry.n,
                stats=self.backend.stats,
                latency=0.0,
                extra={"batch": True, "batch_id": item.batch.batch_id},
            )
            for offset, completion in enumerate(completions):
                index = entry.start + offset
                if index in self.wanted(position) and index not in self.results[position]:
                    self.results[position][index] = completion
                    self.backend.stats.samples += 1
                    if self.sink is not None:
                        self.sink(position, index, completion)


def _stream(target: ServerTarget, params: SamplingParams, request: GenerationRequest) -> str:
    """What identifies a request's samples across runs (a digest; no key, no URL)."""
    return digest(
        {
            "model": target.model,
            "endpoint": target.endpoint.value,
            "params": plain(params),
            "task_id": request.task_id,
            "prompt": plain(request.prompt),
        }
    )


def _chunks(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Sorted indices as ``(start, n)`` runs of consecutive values, at most MAX_CHOICES long."""
    runs: list[tuple[int, int]] = []
    for index in sorted(indices):
        if runs and runs[-1][0] + runs[-1][1] == index and runs[-1][1] < MAX_CHOICES:
            runs[-1] = (runs[-1][0], runs[-1][1] + 1)
        else:
            runs.append((index, 1))
    return runs


def _endpoint_path(target: ServerTarget) -> str:
    if target.endpoint is OpenAIEndpoint.COMPLETIONS:
        return "/v1/completions"
    return "/v1/chat/completions"


def _line(entry: BatchEntry, body: dict[str, Any], target: ServerTarget) -> dict[str, Any]:
    return {
        "custom_id": entry.custom_id,
        "method": "POST",
        "url": _endpoint_path(target),
        "body": body,
    }
