"""The OpenAI backend: the OpenAI API and every OpenAI-compatible server (vLLM, llama.cpp, Ollama).

``openai:MODEL`` asks the chat completions endpoint; ``openai-completions:MODEL`` the legacy
completions endpoint, for base models that continue a prompt. The official ``openai`` client is
imported only when a backend is built.

How samples are drawn (see docs/models.md):

- Each request of ``generate`` is cut into chunks of at most :data:`MAX_CHOICES` samples, one HTTP
  request each (``n`` choices); a server that returns fewer choices than asked is topped up with
  further requests for the rest, each with its own seed. A request for samples ``s`` .. ``s+k-1``
  carries the seed derived from ``(params.seed, s)``, so a rerun that asks the same chunks gets
  the same seeds.
- At most ``concurrency`` HTTP requests are in flight across all tasks.
- Retries are our own loop (the client's are switched off) so that every request that leaves this
  process is counted: 429 and 5xx wait as ``retry-after`` says (else exponential backoff with
  jitter), time-outs and dropped connections are retried a few times, anything else is final.
- Every sample goes to the sink the moment its response arrives. When a chunk fails for good no
  new request is started, the requests in flight are answered (their samples kept), and then one
  :class:`~pytest_passk.errors.BackendError` line says what failed.

The API key is handed to the client and nowhere else: error messages are written here, never
copied from the server without scrubbing (OpenAI echoes part of a refused key).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pytest_passk.backends import (
    Backend,
    Completion,
    GenerationRequest,
    SampleSink,
    SamplingParams,
)
from pytest_passk.backends.openai_client import (
    NO_KEY_PLACEHOLDER,
    OpenAIEndpoint,
    ServerTarget,
    check_target,
    connection_reason,
    probe,
    scrub,
)
from pytest_passk.backends.openai_wire import (
    MAX_CHOICES,
    USAGE_UNDERCOUNTED,
    RequestStats,
    parse_choices,
    request_body,
    sample_seed,
)
from pytest_passk.errors import BackendError
from pytest_passk.prompts import PromptStyle

if TYPE_CHECKING:
    import openai

    from pytest_passk.backends import BackendContext

__all__ = [
    "DEFAULT_CONCURRENCY",
    "DEFAULT_REQUEST_TIMEOUT",
    "GAVE_UP",
    "MAX_CHOICES",
    "REFUSED",
    "USAGE_UNDERCOUNTED",
    "OpenAIBackend",
    "RequestStats",
    "RetryPolicy",
    "build_openai_backend",
    "run_coroutine",
    "sample_seed",
]

DEFAULT_CONCURRENCY = 16
DEFAULT_REQUEST_TIMEOUT = 600.0
GAVE_UP = (
    "{server}: gave up on samples {first}..{last} of {task_id} after {attempts} attempts "
    "({reason}); the {kept} samples received are stored, run again to draw the rest"
)
REFUSED = (
    "{server} refused the request for samples {first}..{last} of {task_id}: HTTP {status} "
    "{message}; the {kept} samples received are stored"
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often each kind of failure is tried, and how long to wait between tries."""

    rate_limit_attempts: int = 10
    server_error_attempts: int = 6
    connection_attempts: int = 5
    timeout_attempts: int = 3
    initial_delay: float = 0.5
    max_delay: float = 16.0
    #: The longest ``retry-after`` honoured as given; longer waits are cut to this.
    max_retry_after: float = 120.0

    def backoff(self, failures: int) -> float:
        """Exponential backoff after ``failures`` failed tries, less up to 25% jitter."""
        delay = min(self.initial_delay * 2.0 ** max(0, failures - 1), self.max_delay)
        return delay * (1.0 - 0.25 * random.random())


class _Failure(Exception):
    """A chunk failed for good (the message is final and scrubbed)."""


class _Stopped(Exception):
    """Another chunk failed: start no new request."""


class _TooManyChoices(Exception):
    """A 400 for a request with ``n > 1``: the server may not take that many choices."""


class OpenAIBackend:
    """Samples from an OpenAI-compatible server; see the module docstring."""

    def __init__(
        self,
        target: ServerTarget,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
        retry: RetryPolicy | None = None,
        max_choices: int = MAX_CHOICES,
    ) -> None:
        self._target = target
        self._concurrency = max(1, concurrency)
        self._request_timeout = request_timeout
        self._retry = retry or RetryPolicy()
        self._max_choices = max(1, max_choices)
        self._probed = False
        self.stats = RequestStats()

    @property
    def model(self) -> str:
        """The model name as the server knows it."""
        return self._target.model

    @property
    def prompt_style(self) -> PromptStyle:
        """Chat for the chat endpoint, plain continuation for the completions endpoint."""
        return self._target.prompt_style

    @property
    def server(self) -> str:
        """Where requests go, for messages (never with credentials)."""
        return self._target.display

    def probe(self) -> None:
        """One cheap request: a bad key, an unknown model or no server fails here, in seconds.

        Raises:
            BackendUnavailable: naming what is wrong and the fix.

        """
        probe(self._target)

    def probe_once(self) -> None:
        """:meth:`probe` before the first request of this backend (a run that finds every
        sample in the store never contacts the server).
        """
        if not self._probed:
            self.probe()
            self._probed = True

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """``request.n`` completions per request, each handed to ``sink`` as it arrives.

        Raises:
            BackendError: after every received sample went to the sink, when a request failed
                for good (server gone, retries exhausted, a refused request).

        """
        if not requests:
            return []
        self.probe_once()
        return run_coroutine(_Generation(self, requests, params, sink).run())

    def close(self) -> None:
        """Nothing to release: each ``generate`` opens and closes its own client."""

    # -- used by _Generation -------------------------------------------------------------------

    def _client(self) -> openai.AsyncOpenAI:
        import openai

        return openai.AsyncOpenAI(
            api_key=self._target.api_key or NO_KEY_PLACEHOLDER,
            base_url=self._target.base_url,
            max_retries=0,
            timeout=openai.Timeout(self._request_timeout, connect=min(10.0, self._request_timeout)),
        )


class _Generation:
    """One ``generate`` call: chunks, the shared semaphore, and the first fatal error."""

    def __init__(
        self,
        backend: OpenAIBackend,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None,
    ) -> None:
        self.backend = backend
        self.requests = requests
        self.params = params
        self.sink = sink
        self.results: list[dict[int, Completion]] = [{} for _ in requests]
        self.stopped = asyncio.Event()
        self.failure: BaseException | None = None
        self.max_choices = backend._max_choices
        self.stats = backend.stats
        self.retry = backend._retry
        self.target = backend._target

    async def run(self) -> list[list[Completion]]:
        self.semaphore = asyncio.Semaphore(self.backend._concurrency)
        async with self.backend._client() as client:
            chunks = []
            for position, request in enumerate(self.requests):
                for start in range(request.start, request.start + request.n, self.max_choices):
                    end = min(start + self.max_choices, request.start + request.n)
                    chunks.append(self._chunk(client, position, start, end - start))
            await asyncio.gather(*chunks)
        if self.failure is not None:
            raise self.failure
        return [
            [got[i] for i in range(r.start, r.start + r.n)]
            for r, got in zip(self.requests, self.results, strict=True)
        ]

    async def _chunk(self, client: openai.AsyncOpenAI, position: int, start: int, n: int) -> None:
        """Samples ``start`` .. ``start + n - 1`` of one request, topping up short answers."""
        request = self.requests[position]
        next_index, end = start, start + n
        try:
            while next_index < end:
                ask = min(end - next_index, self.max_choices)
                try:
                    got = await self._call(client, request, next_index, ask, kept=end - start)
                except _TooManyChoices:
                    # The server refuses this many choices: ask one at a time from now on.
                    self.max_choices = 1
                    continue
                for completion in got[:ask]:
                    self._keep(position, next_index, completion)
                    next_index += 1
        except _Stopped:
            return
        except Exception as exc:  # the first failure ends the run once the rest is in
            if self.failure is None:
                self.failure = _final(exc, request, next_index, end, self)
            self.stopped.set()

    def _keep(self, position: int, index: int, completion: Completion) -> None:
        self.results[position][index] = completion
        self.stats.samples += 1
        if self.sink is not None:
            self.sink(position, index, completion)

    async def _call(
        self,
        client: openai.AsyncOpenAI,
        request: GenerationRequest,
        first: int,
        n: int,
        *,
        kept: int,
    ) -> list[Completion]:
        """One chunk's HTTP request with retries; the completions of its response."""
        import openai

        failures: dict[str, int] = {}
        while True:
            if self.stopped.is_set():
                raise _Stopped
            async with self.semaphore:
                if self.stopped.is_set():
                    raise _Stopped
                self.stats.requests += 1
                started = time.monotonic()
                try:
                    response = await self._send(client, request, first, n)
                except openai.APIStatusError as exc:
                    kind, wait = self._classify(exc, n)
                    if kind is None:
                        raise
                    reason = f"HTTP {exc.status_code}"
                except openai.APITimeoutError:
                    kind, wait = "timeout", None
                    reason = f"no answer within {self.backend._request_timeout:g} s"
                except openai.APIConnectionError as exc:
                    kind, wait = "connection", None
                    reason = connection_reason(exc)
                else:
                    return parse_choices(
                        response,
                        self.target.endpoint,
                        request,
                        self.params,
                        first,
                        n,
                        stats=self.stats,
                        latency=time.monotonic() - started,
                    )
            failures[kind] = failures.get(kind, 0) + 1
            self.stats.retried[kind] = self.stats.retried.get(kind, 0) + 1
            if failures[kind] >= self._attempts(kind):
                raise _Failure(
                    GAVE_UP.format(
                        server=self.target.display,
                        first=first,
                        last=first + n - 1,
                        task_id=request.task_id,
                        attempts=sum(failures.values()),
                        reason=reason,
                        kept=self.stats.samples,
                    )
                )
            delay = wait if wait is not None else self.retry.backoff(failures[kind])
            try:
                await asyncio.wait_for(self.stopped.wait(), timeout=delay)
            except asyncio.TimeoutError:
                continue
            raise _Stopped

    async def _send(
        self, client: openai.AsyncOpenAI, request: GenerationRequest, first: int, n: int
    ) -> Any:
        body = request_body(self.target, request, self.params, first, n)
        if self.target.endpoint is OpenAIEndpoint.COMPLETIONS:
            return await client.completions.create(**body)
        return await client.chat.completions.create(**body)

    def _classify(self, exc: openai.APIStatusError, n: int) -> tuple[str | None, float | None]:
        """``(kind, wait)`` of a retryable status, ``kind=None`` for a final one."""
        status = exc.status_code
        headers = exc.response.headers
        should = headers.get("x-should-retry")
        if status == 429 and exc.code == "insufficient_quota":
            return None, None  # out of credit: waiting will not help
        if should == "false":
            return None, None
        if status == 400 and n > 1:
            raise _TooManyChoices
        if status == 429 or should == "true" or status in (408, 409):
            return "rate_limit", self._retry_after(headers)
        if status >= 500:
            return "server_error", self._retry_after(headers)
        return None, None

    def _retry_after(self, headers: Mapping[str, str]) -> float | None:
        for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
            value = headers.get(name)
            if value is None:
                continue
            try:
                seconds = float(value) * scale
            except ValueError:
                continue  # an HTTP date: rare for APIs; fall back to backoff
            if seconds >= 0:
                return min(seconds, self.retry.max_retry_after)
        return None

    def _attempts(self, kind: str) -> int:
        policy = self.retry
        return {
            "rate_limit": policy.rate_limit_attempts,
            "server_error": policy.server_error_attempts,
            "timeout": policy.timeout_attempts,
        }.get(kind, policy.connection_attempts)


def _final(
    exc: BaseException, request: GenerationRequest, first: int, end: int, generation: _Generation
) -> BaseException:
    """The exception that ends the run: ours as they are, the client's turned into one line."""
    import openai

    if isinstance(exc, _Failure):
        return BackendError(str(exc))
    if isinstance(exc, openai.APIStatusError):
        return BackendError(
            REFUSED.format(
                server=generation.target.display,
                first=first,
                last=end - 1,
                task_id=request.task_id,
                status=exc.status_code,
                message=scrub(_server_message(exc), generation.target.api_key),
                kept=generation.stats.samples,
            )
        )
    return exc  # the sink's own errors (store, bad index) and interruptions pass through


def _server_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        message = body.get("message") or body.get("detail") or body.get("error")
        if isinstance(message, Mapping):
            message = message.get("message")
        if message:
            return f"({str(message)[:300]})"
    return ""


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to its end from synchronous code, even under a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    # Called from async code (an async test runner): a loop of our own on a helper thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def build_openai_backend(target: ServerTarget, context: BackendContext) -> Backend:
    """Check and build the backend for ``target`` with the run's settings.

    The backend probes the server (one cheap request, a few seconds at most) before its first
    sample, so a run that finds every sample in the store needs no server.

    Raises:
        BackendUnavailable: no ``openai`` package, or no key and no server named.

    """
    check_target(target)
    if context.openai_batch:
        from pytest_passk.backends.openai_batch import BatchBackend

        return BatchBackend(target, context.store_dir, wait=context.batch_wait)
    return OpenAIBackend(
        target, concurrency=context.concurrency, request_timeout=context.request_timeout
    )
