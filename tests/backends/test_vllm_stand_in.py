"""The vLLM backend's own logic against a scripted stand-in for vLLM's engine (no vLLM needed).

The stand-in replaces :func:`~pytest_passk.backends.vllm_process.start_engine` and the two vLLM
names the backend imports when it queues requests; its "engine core" is a real child process
(started with :mod:`multiprocessing`, as vLLM starts its own), so shutting down and reaping are
the real thing.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.backends import (
    BackendContext,
    GenerationRequest,
    ModelSpec,
    SamplingParams,
    vllm_checks,
)
from pytest_passk.backends import vllm as vllm_backend
from pytest_passk.backends.vllm import LOADING, VllmBackend
from pytest_passk.backends.vllm_checks import ModelSource
from pytest_passk.progress import Progress
from pytest_passk.prompts import PromptStyle, RenderedPrompt
from pytest_passk.sampling import ItemToSample, SampleSupply, SamplingSetup
from pytest_passk.store import SampleStore
from pytest_passk.tasks import CheckTest, Task

PLAIN = RenderedPrompt(PromptStyle.COMPLETION, "def add(a, b):\n", (), ())
PARAMS = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=8, seed=1)
#: The settings the backend gives a CPU engine unless they are set: restored after each test.
ENGINE_ENVIRONMENT = (
    "VLLM_LOGGING_LEVEL",
    "VLLM_CPU_KVCACHE_SPACE",
    "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS",
    "VLLM_ENGINE_READY_TIMEOUT_S",
    "VLLM_CPU_CI_ENV",
)


class Tokenizer:
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return list(range(len(text.split()) + int(add_special_tokens)))

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: object) -> str:
        return " ".join(message["content"] for message in messages)


@dataclass
class Sample:
    text: str
    token_ids: list[int]
    finish_reason: str = "length"


@dataclass
class Output:
    request_id: str
    outputs: list[Sample]
    prompt_token_ids: list[int]
    finished: bool = True


class Core:
    """The engine core client: its process, and the per-step outputs GeneratedTokens counts."""

    def __init__(self, process: multiprocessing.Process) -> None:
        self.process = process

    def get_output(self) -> Any:
        return types.SimpleNamespace(outputs=[types.SimpleNamespace(new_token_ids=[7, 7])])

    def shutdown(self, timeout: float) -> None:
        self.process.terminate()
        self.process.join(timeout)


@dataclass
class Engine:
    """Finishes one queued request per step, with two tokens."""

    engine_core: Core
    queue: dict[str, list[int]] = field(default_factory=dict)

    def add_request(self, request_id: str, prompt: dict[str, list[int]], params: Any) -> None:
        self.queue[request_id] = prompt["prompt_token_ids"]

    def has_unfinished_requests(self) -> bool:
        return bool(self.queue)

    #: Requests one step finishes (many samples reach max_tokens at the same step).
    per_step: int = 1

    def step(self) -> list[Output]:
        self.engine_core.get_output()
        finished = list(self.queue)[: self.per_step]
        return [
            Output(request_id, [Sample(f"return {request_id}", [7, 7])], self.queue.pop(request_id))
            for request_id in finished
        ]

    def abort_request(self, request_ids: list[str]) -> None:
        for request_id in request_ids:
            self.queue.pop(request_id, None)


class LLM:
    def __init__(self, engine: Engine) -> None:
        self.llm_engine = engine

    def get_tokenizer(self) -> Tokenizer:
        return Tokenizer()


@dataclass
class Starts:
    """What the stand-in's ``start_engine`` was called with, and the processes it started."""

    logs: list[Path | None] = field(default_factory=list)
    processes: list[multiprocessing.Process] = field(default_factory=list)
    #: Per start, the engines still running then (on a GPU, each holds 90% of its memory).
    running: list[int] = field(default_factory=list)

    #: The engine arguments of each start.
    args: list[dict[str, Any]] = field(default_factory=list)

    def start(self, args: dict[str, Any], log: Path | None) -> LLM:
        self.logs.append(log)
        self.args.append(args)
        self.running.append(sum(process.is_alive() for process in self.processes))
        # Sleeps until shut down, like an idle engine core.
        process = multiprocessing.Process(target=time.sleep, args=(300,), daemon=True)
        process.start()
        self.processes.append(process)
        return LLM(Engine(Core(process)))


@pytest.fixture
def starts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Starts]:
    """The stand-in engine in place of vLLM's."""
    fake = types.ModuleType("vllm")
    fake.SamplingParams = lambda **kwargs: types.SimpleNamespace(**kwargs)  # type: ignore[attr-defined]
    options = types.ModuleType("vllm.sampling_params")
    options.RequestOutputKind = types.SimpleNamespace(FINAL_ONLY="final")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", options)
    for name in ENGINE_ENVIRONMENT:
        if name in os.environ:
            monkeypatch.setenv(name, os.environ[name])
        else:
            monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv(vllm_backend.ENGINE_LOG_ENV, raising=False)
    monkeypatch.delenv(vllm_backend.DTYPE_ENV, raising=False)
    record = Starts()
    monkeypatch.setattr(vllm_backend, "start_engine", record.start)
    yield record
    for process in record.processes:
        if process.is_alive():
            process.kill()
        process.join(5)


def _backend(
    tmp_path: Path, name: str, log: Path | None = None, say: Callable[[str], None] | None = None
) -> VllmBackend:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return VllmBackend(name, ModelSource(name, folder), device="cpu", log=log, progress=say)


def test_one_backend_s_close_leaves_another_backend_s_engine_running(
    tmp_path: Path, starts: Starts
) -> None:
    first, second = _backend(tmp_path, "a"), _backend(tmp_path, "b")
    request = [GenerationRequest("t", PLAIN, 2)]
    assert [len(b) for b in first.generate(request, PARAMS)] == [2]
    assert [len(b) for b in second.generate(request, PARAMS)] == [2]
    mine, theirs = starts.processes
    first.close()
    assert not mine.is_alive()
    # The second engine started after the first: it is not the first backend's to reap.
    assert theirs.is_alive(), "closing one backend killed another backend's engine"
    assert second.loaded
    second.close()
    assert not theirs.is_alive()


def test_an_unwritable_log_sends_the_engine_s_output_to_the_terminal(
    tmp_path: Path, starts: Starts
) -> None:
    (tmp_path / "logs").write_text("a file where the store's logs folder should be")
    lines: list[str] = []
    backend = _backend(tmp_path, "m", log=tmp_path / "logs" / "vllm.log", say=lines.append)
    assert [len(b) for b in backend.generate([GenerationRequest("t", PLAIN, 1)], PARAMS)] == [1]
    assert starts.logs == [None]
    assert LOADING.format(model="m", device="cpu", log="") in lines
    backend.close()
    # A writable one is used, and named on the loading line.
    log = tmp_path / "store" / "logs" / "vllm.log"
    named = _backend(tmp_path, "n", log=log, say=lines.append)
    named.generate([GenerationRequest("t", PLAIN, 1)], PARAMS)
    assert starts.logs[-1] == log
    assert LOADING.format(model="n", device="cpu", log=f"; its log: {log}") in lines
    named.close()


def test_a_model_s_engine_is_shut_down_before_the_next_model_s_loads(
    tmp_path: Path, starts: Starts
) -> None:
    # vLLM takes 90% of a GPU's memory: a second engine beside the first cannot start.
    models = (ModelSpec("a", "vllm", "org/a"), ModelSpec("b", "vllm", "org/b"))
    backends = {model.label: _backend(tmp_path, model.label) for model in models}
    store = tmp_path / "store"
    supply = SampleSupply(
        SamplingSetup(models, PARAMS, 2, 2, BackendContext(tmp_path, store_dir=store)),
        lambda: SampleStore(store),
        Progress(None),
        custom_backend=lambda model, context: backends[model.label],
    )
    task = Task("t/0", "def add(a, b):\n", "add", CheckTest("def check(c): pass\n"))
    items = [ItemToSample(f"x::{model.label}", model.label, task) for model in models]
    supply.generate(items)
    assert starts.running == [0, 0], "the second model loaded beside the first"
    assert [len(supply.take(item)[0]) for item in items] == [2, 2]
    supply.close()
    assert not any(process.is_alive() for process in starts.processes)


def test_a_prompt_split_over_several_requests_is_counted_once(
    tmp_path: Path, starts: Starts
) -> None:
    # A resumed run asks for the scattered indices an interrupted batch left: one request per
    # run of consecutive indices, all with the same prompt.
    backend = _backend(tmp_path, "m")
    requests = [
        GenerationRequest("t", PLAIN, 2),
        GenerationRequest("t", PLAIN, 1, start=3),
        GenerationRequest("t", PLAIN, 2, start=6),
    ]
    batches = backend.generate(requests, PARAMS)
    prompt = len(Tokenizer().encode(PLAIN.text))
    assert [[c.prompt_tokens for c in batch] for batch in batches] == [[prompt, 0], [0], [0, 0]]
    assert backend.stats.prompt_tokens == prompt
    assert backend.stats.completion_tokens == 2 * 5
    backend.close()


@pytest.fixture
def python_sigint() -> Iterator[None]:
    """Python's own SIGINT handler, whatever this process inherited."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, inherited)


@pytest.mark.usefixtures("python_sigint")
def test_a_ctrl_c_while_a_step_s_samples_are_stored_keeps_all_of_them(
    tmp_path: Path, starts: Starts
) -> None:
    backend = _backend(tmp_path, "m")
    request = [GenerationRequest("t", PLAIN, 1)]
    backend.generate(request, PARAMS)  # the engine is up
    backend._llm.llm_engine.per_step = 3
    kept: list[int] = []

    def sink(position: int, index: int, completion: object) -> None:
        if not kept:  # Ctrl-C while the first of the step's three samples is being written
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
        kept.append(index)

    with pytest.raises(KeyboardInterrupt):
        backend.generate([GenerationRequest("t", PLAIN, 6)], PARAMS, sink)
    # The three samples the engine handed over are stored; the interrupt comes after them.
    assert kept == [0, 1, 2]
    backend.close()


def test_a_hub_model_not_yet_downloaded_gets_the_plugin_s_context_length(
    tmp_path: Path, starts: Starts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Llama 3.1's own 131,072 tokens would need 16 GiB of KV cache for one sequence, which a
    # 24 GB GPU lacks: vLLM refuses to start. The config (a few KB) comes first, to know.
    config = tmp_path / "snapshot"
    config.mkdir()
    (config / "config.json").write_text('{"max_position_embeddings": 131072}')
    fetched: list[str] = []

    def fetch(model_id: str) -> Path:
        fetched.append(model_id)
        return config

    monkeypatch.setattr(vllm_backend, "fetch_config", fetch)
    model = "meta-llama/Llama-3.1-8B-Instruct"
    backend = VllmBackend(model, ModelSource(model, None), device="cuda")
    backend.generate([GenerationRequest("t", PLAIN, 1)], PARAMS)
    backend.close()
    assert fetched == [model]
    assert starts.args[0]["model"] == model
    assert starts.args[0]["max_model_len"] == vllm_backend.DEFAULT_MAX_MODEL_LEN
    # Where the hub cannot be reached for it, vLLM decides (and downloads nothing here either).
    monkeypatch.setattr(vllm_backend, "fetch_config", lambda model_id: None)
    unknown = VllmBackend(model, ModelSource(model, None), device="cuda")
    unknown.generate([GenerationRequest("t", PLAIN, 1)], PARAMS)
    unknown.close()
    assert "max_model_len" not in starts.args[1]


def test_fetching_a_config_offline_gives_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert vllm_checks.fetch_config("org/not-cached-anywhere") is None


def test_a_failing_shutdown_still_reaps_the_engine_and_every_backend_closes(
    tmp_path: Path, starts: Starts, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(self: Core, timeout: float) -> None:
        raise RuntimeError("the engine core's socket is gone")

    monkeypatch.setattr(Core, "shutdown", broken)
    models = (ModelSpec("a", "vllm", "org/a"), ModelSpec("b", "vllm", "org/b"))
    backends = {model.label: _backend(tmp_path, model.label) for model in models}
    request = [GenerationRequest("t", PLAIN, 1)]
    for backend in backends.values():
        backend.generate(request, PARAMS)
    supply = SampleSupply(
        SamplingSetup(models, PARAMS, 1, 1, BackendContext(tmp_path)),
        lambda: SampleStore(tmp_path / "store"),
        Progress(None),
        custom_backend=lambda model, context: backends[model.label],
    )
    supply.check_models()  # the supply holds both backends, each with a running engine
    supply.close()
    assert not any(process.is_alive() for process in starts.processes)
    assert not any(backend.loaded for backend in backends.values())
