"""The OpenAI backend against a scripted server on 127.0.0.1, directly and through a fault proxy."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping

import pytest

from pytest_passk.backends import Completion, GenerationRequest, SamplingParams
from pytest_passk.backends.openai import (
    GAVE_UP,
    USAGE_UNDERCOUNTED,
    OpenAIBackend,
    RetryPolicy,
    sample_seed,
)
from pytest_passk.backends.openai_client import (
    KEY_REFUSED,
    PROBE_TIMEOUT,
    OpenAIEndpoint,
    ServerTarget,
    display_url,
    scrub,
)
from pytest_passk.errors import BackendError, BackendUnavailable
from pytest_passk.prompts import COMPLETION_STOP, PromptStyle, RenderedPrompt
from tests.support.fault_proxy import Fault, FaultPlan, FaultProxy
from tests.support.openai_server import ScriptedOpenAI

FAST = RetryPolicy(initial_delay=0.01, max_delay=0.05)
MODEL = "scripted-model"


def chat_requests(tasks: int, n: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            f"t/{t}",
            RenderedPrompt(PromptStyle.CHAT, f"def f{t}(x):", (("user", f"def f{t}(x):"),), ()),
            n,
        )
        for t in range(tasks)
    ]


class Sink:
    """Records what the backend hands over, in order."""

    def __init__(self) -> None:
        self.got: list[tuple[int, int, Completion]] = []
        self.lock = threading.Lock()

    def __call__(self, position: int, index: int, completion: Completion) -> None:
        with self.lock:
            self.got.append((position, index, completion))

    @property
    def keys(self) -> list[tuple[int, int]]:
        return [(p, i) for p, i, _ in self.got]


def backend(url: str, key: str | None = None, **options: object) -> OpenAIBackend:
    target = ServerTarget(MODEL, OpenAIEndpoint.CHAT, url, key)
    options.setdefault("retry", FAST)
    return OpenAIBackend(target, **options)  # type: ignore[arg-type]


ProxyFactory = Callable[..., FaultProxy]


@pytest.fixture
def proxy_of(server: ScriptedOpenAI) -> Iterator[ProxyFactory]:
    """Start a fault proxy in front of ``server`` with the given plan and options."""
    started: list[FaultProxy] = []

    def start(plan: FaultPlan | Mapping[int, Fault] | None = None, **options: float) -> FaultProxy:
        proxy = FaultProxy(server.url, plan, **options).start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def test_twenty_tasks_of_sixteen_through_every_fault(
    server: ScriptedOpenAI, proxy_of: ProxyFactory
) -> None:
    plan = {
        2: Fault.RATE_LIMIT,
        4: Fault.SERVER_ERROR,
        6: Fault.DROP,
        8: Fault.DROP_AFTER,
        10: Fault.FEWER,
        12: Fault.UNDERCOUNT,
        14: Fault.SLOW,
    }
    proxy = proxy_of(plan, slow_delay=0.3, retry_after=0.2)
    sampler = backend(proxy.url, concurrency=4)
    sink = Sink()
    batches = sampler.generate(chat_requests(20, 16), SamplingParams())

    assert [len(b) for b in batches] == [16] * 20
    del sink
    # The minimum is one request per task; the faults that reach the server cost one each
    # (the answer lost after the server did the work, the top-up of the short answer).
    assert server.state.completion_requests == proxy.stats.forwarded == 22
    assert proxy.stats.forwarded <= 20 * 1.10
    # Every request that left the backend is counted: 7 faults retried or topped up.
    assert sampler.stats.requests == proxy.stats.received == 25
    assert sampler.stats.retried == {"rate_limit": 1, "server_error": 1, "connection": 2}
    # Token totals are what the server (as seen through the proxy) reported.
    samples = [c for batch in batches for c in batch]
    assert sum(c.prompt_tokens for c in samples) == proxy.stats.prompt_tokens
    assert sum(c.completion_tokens for c in samples) == proxy.stats.completion_tokens
    undercounted = [c for c in samples if c.metadata.get(USAGE_UNDERCOUNTED)]
    assert len(undercounted) == 16 and sampler.stats.undercounted_responses == 1
    assert sampler.stats.summary() == (
        "25 requests (4 retried: 2 connection, 1 rate_limit, 1 server_error), 320 samples, "
        f"{proxy.stats.prompt_tokens} prompt + {proxy.stats.completion_tokens} completion "
        "tokens; 1 responses reported fewer completion tokens than their choices used"
    )


def test_each_sample_reaches_the_sink_once_as_it_arrives(server: ScriptedOpenAI) -> None:
    server.state.delay = 0.05
    sink = Sink()
    requests = chat_requests(3, 5)
    batches = backend(server.url, concurrency=2).generate(requests, SamplingParams(), sink)
    assert sorted(sink.keys) == [(p, i) for p in range(3) for i in range(5)]
    for position, index, completion in sink.got:
        assert batches[position][index] is completion


def test_requests_are_cut_at_the_choice_limit_and_seeded_by_their_first_index(
    server: ScriptedOpenAI,
) -> None:
    request = GenerationRequest("t/0", chat_requests(1, 1)[0].prompt, 10, start=5)
    batches = backend(server.url, max_choices=4).generate([request], SamplingParams(seed=7))
    assert sorted(r.n for r in server.state.log) == [2, 4, 4]
    assert sorted(r.seed or 0 for r in server.state.log) == sorted(
        sample_seed(7, first) for first in (5, 9, 13)
    )
    seeds = [c.metadata["seed"] for c in batches[0]]
    assert seeds == [sample_seed(7, 5)] * 4 + [sample_seed(7, 9)] * 4 + [sample_seed(7, 13)] * 2


def test_a_server_that_gives_fewer_choices_is_topped_up_with_new_seeds(
    server: ScriptedOpenAI,
) -> None:
    server.state.max_n = 3  # Ollama-like: ignores most of n
    batches = backend(server.url).generate(chat_requests(1, 8), SamplingParams())
    assert len(batches[0]) == 8
    assert [r.n for r in server.state.log] == [3, 3, 2]
    assert len({r.seed for r in server.state.log}) == 3


def test_a_server_refusing_n_above_one_is_asked_one_at_a_time(
    server: ScriptedOpenAI, proxy_of: ProxyFactory
) -> None:
    # llama.cpp's server answers 400 to n > 1.
    refused: list[int] = []

    def plan(ordinal: int, request: object) -> Fault | None:
        return None

    proxy = proxy_of(plan)
    original = proxy._answer

    async def answer(method: str, path: str, headers: list[tuple[str, str]], body: bytes):  # type: ignore[no-untyped-def]
        import json

        from tests.support.fault_proxy import _json_response

        if path.endswith("completions") and json.loads(body).get("n", 1) > 1:
            refused.append(1)
            return _json_response(400, {"error": {"message": "n must be 1", "code": None}})
        return await original(method, path, headers, body)

    proxy._answer = answer  # type: ignore[method-assign]
    batches = backend(proxy.url).generate(chat_requests(1, 3), SamplingParams())
    assert len(batches[0]) == 3
    assert refused == [1]
    assert [r.n for r in server.state.log] == [1, 1, 1]


def test_retry_after_is_honoured(server: ScriptedOpenAI, proxy_of: ProxyFactory) -> None:
    proxy = proxy_of({1: Fault.RATE_LIMIT}, retry_after=0.6)
    started = time.monotonic()
    backend(proxy.url).generate(chat_requests(1, 2), SamplingParams())
    # The fast backoff policy would retry after 10 ms; the server said 0.6 s.
    assert time.monotonic() - started >= 0.6


def test_a_slow_response_times_out_and_is_retried(
    server: ScriptedOpenAI, proxy_of: ProxyFactory
) -> None:
    proxy = proxy_of({1: Fault.SLOW}, slow_delay=3.0)
    sampler = backend(proxy.url, request_timeout=0.5)
    batches = sampler.generate(chat_requests(1, 2), SamplingParams())
    assert len(batches[0]) == 2
    assert sampler.stats.retried == {"timeout": 1}


def test_exhausted_retries_end_with_one_line_after_the_received_samples(
    server: ScriptedOpenAI, proxy_of: ProxyFactory
) -> None:
    # Task 0 gets its samples; task 1's requests always fail with 500.
    def plan(ordinal: int, request: object) -> Fault | None:
        messages = request["messages"]  # type: ignore[index]
        return Fault.SERVER_ERROR if "f1(" in messages[-1]["content"] else None

    proxy = proxy_of(plan)
    sink = Sink()
    sampler = backend(proxy.url, concurrency=1)
    with pytest.raises(BackendError) as failure:
        sampler.generate(chat_requests(2, 4), SamplingParams(), sink)
    message = str(failure.value)
    assert "\n" not in message
    assert message == GAVE_UP.format(
        server=display_url(proxy.url),
        first=0,
        last=3,
        task_id="t/1",
        attempts=FAST.server_error_attempts,
        reason="HTTP 500",
        kept=4,
    )
    assert sorted(sink.keys) == [(0, i) for i in range(4)]
    assert proxy.stats.faults == {Fault.SERVER_ERROR: FAST.server_error_attempts}


def test_a_server_that_dies_midway_keeps_what_arrived(server: ScriptedOpenAI) -> None:
    sink = Sink()
    sampler = backend(server.url, concurrency=1)
    requests = chat_requests(6, 2)

    def stop_after_two(position: int, index: int, completion: Completion) -> None:
        sink(position, index, completion)
        if len(sink.got) == 4:
            server.stop()  # the server goes away: every later request is refused

    # t/2 .. t/5 all retry against the dead server, each backing off with its own jitter while
    # another holds the one connection: whichever exhausts its attempts first is named.
    expected = (
        r"gave up on samples 0..1 of t/[2-5] after 5 attempts \(connection refused\); "
        r"the 4 samples received are stored"
    )
    with pytest.raises(BackendError, match=expected):
        sampler.generate(requests, SamplingParams(), stop_after_two)
    assert len(sink.got) == 4


def test_a_failing_sink_stops_the_run_with_its_own_error(server: ScriptedOpenAI) -> None:
    class Full(Exception):
        pass

    def sink(position: int, index: int, completion: Completion) -> None:
        raise Full("disk full")

    with pytest.raises(Full):
        backend(server.url).generate(chat_requests(3, 2), SamplingParams(), sink)


def test_completions_endpoint_continues_the_prompt_and_applies_every_stop() -> None:
    def answer(prompt: str, choice: int, seed: int) -> str:
        return "    return x\nprint(f(1))\nassert f(2) == 2\n"

    with ScriptedOpenAI([MODEL], responder=answer) as server:
        target = ServerTarget(MODEL, OpenAIEndpoint.COMPLETIONS, server.url, None)
        sampler = OpenAIBackend(target, retry=FAST)
        assert sampler.prompt_style is PromptStyle.COMPLETION
        prompt = RenderedPrompt(PromptStyle.COMPLETION, "def f(x):\n", (), COMPLETION_STOP)
        batches = sampler.generate([GenerationRequest("t", prompt, 2)], SamplingParams())
    assert server.state.log[0].path == "/v1/completions"
    # Only four stop sequences are sent (OpenAI's limit); "\nprint(" is the fifth.
    assert COMPLETION_STOP.index("\nprint(") >= 4
    assert [c.text for c in batches[0]] == ["    return x", "    return x"]
    assert {c.finish_reason for c in batches[0]} == {"stop"}


def test_probe_passes_for_a_served_model_even_without_model_retrieval() -> None:
    with ScriptedOpenAI([MODEL], retrieve=False) as server:  # like vllm serve
        backend(server.url).probe()


@pytest.mark.parametrize("retrieve", [True, False])
def test_probe_names_an_unknown_model_and_what_is_served(retrieve: bool) -> None:
    with (
        ScriptedOpenAI(["other-model"], retrieve=retrieve) as server,
        pytest.raises(BackendUnavailable) as failure,
    ):
        backend(server.url).probe()
    assert str(failure.value) == (
        f"{server.url} does not serve model 'scripted-model' (it serves 'other-model'); "
        "check --model"
    )


def test_probe_refuses_a_bad_key_without_echoing_it() -> None:
    wrong = "sk-wrong-ABCDEFGHIJKLMNOP1234"
    with (
        ScriptedOpenAI([MODEL], api_key="sk-right-key-000000") as server,
        pytest.raises(BackendUnavailable) as failure,
    ):
        backend(server.url, key=wrong).probe()
    message = str(failure.value)
    assert message == KEY_REFUSED.format(server=server.url, status=401)
    assert "sk-" not in message and "1234" not in message


def test_probe_of_no_server_fails_at_once() -> None:
    with ScriptedOpenAI([MODEL]) as server:
        url = server.url
    started = time.monotonic()
    with pytest.raises(BackendUnavailable, match=r"cannot reach .* \(connection refused\)"):
        backend(url).probe()
    assert time.monotonic() - started < 5


def test_probe_of_a_server_that_never_answers_gives_up_in_seconds() -> None:
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        started = time.monotonic()
        with pytest.raises(BackendUnavailable, match="no answer within"):
            backend(url).probe()
        elapsed = time.monotonic() - started
    assert PROBE_TIMEOUT * 0.9 <= elapsed < PROBE_TIMEOUT + 5


def test_the_key_never_shows_in_repr_or_messages() -> None:
    key = "sk-proj-SECRETSECRETSECRET"
    target = ServerTarget(MODEL, OpenAIEndpoint.CHAT, "http://user:pw@127.0.0.1:1/v1", key)
    assert key not in repr(target)
    assert target.display == "http://127.0.0.1:1/v1"
    assert scrub(f"Incorrect API key provided: {key[:8]}****1234 and {key}", key) == (
        "Incorrect API key provided: *** and ***"
    )
