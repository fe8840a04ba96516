"""The vLLM backend against real vLLM on the CPU, with a tiny random-weight model.

One engine serves every test here (see ``conftest.engine``). The model writes gibberish, so the
tests assert counts, seeds, stops and token accounting, never content.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from pytest_passk.backends import Completion, GenerationRequest, SamplingParams
from pytest_passk.backends.vllm import VllmBackend
from pytest_passk.errors import BackendError
from pytest_passk.pricing import ENGINE_DEVICE, ENGINE_DEVICES, ENGINE_SECONDS, PriceTable
from pytest_passk.prompts import CompletionForm, PromptStyle, RenderedPrompt

pytestmark = pytest.mark.vllm

PARAMS = SamplingParams(temperature=1.0, top_p=1.0, max_tokens=24, seed=3)
CHAT = RenderedPrompt(
    PromptStyle.CHAT,
    "Complete add.",
    (("system", "You write Python."), ("user", "Complete add.")),
    (),
)
PLAIN = RenderedPrompt(PromptStyle.COMPLETION, "def add(a, b):\n", (), ())


def texts(batch: list[Completion]) -> list[str]:
    return [completion.text for completion in batch]


def test_exactly_n_samples_per_request_in_one_call(engine: VllmBackend) -> None:
    requests = [
        GenerationRequest("chat/0", CHAT, 3),
        GenerationRequest("plain/0", PLAIN, 2, start=5),
        GenerationRequest("none/0", PLAIN, 0),
    ]
    starts = engine.stats.starts
    batches = engine.generate(requests, PARAMS)
    assert [len(batch) for batch in batches] == [3, 2, 0]
    assert {c.form for c in batches[0]} == {CompletionForm.CHAT}
    assert {c.form for c in batches[1]} == {CompletionForm.CONTINUATION}
    for completion in [*batches[0], *batches[1]]:
        assert 1 <= completion.completion_tokens <= PARAMS.max_tokens
        assert completion.finish_reason in ("stop", "length")
        if completion.finish_reason == "length":
            assert completion.completion_tokens == PARAMS.max_tokens
    # Random weights sampled at temperature 1: samples differ from one another.
    assert len(set(texts(batches[0]))) == 3
    assert engine.stats.starts == max(starts, 1)


def test_sample_i_is_the_same_whatever_n_start_and_batch(engine: VllmBackend) -> None:
    alone = engine.generate([GenerationRequest("a", PLAIN, 4)], PARAMS)[0]
    shifted = engine.generate(
        [
            GenerationRequest("other", CHAT, 5),
            GenerationRequest("a", PLAIN, 2, start=2),
            GenerationRequest("again", PLAIN, 1, start=3),
        ],
        PARAMS,
    )
    assert texts(shifted[1]) == texts(alone)[2:]
    assert texts(shifted[2]) == texts(alone)[3:]
    reseeded = engine.generate(
        [GenerationRequest("a", PLAIN, 2)],
        SamplingParams(temperature=1.0, top_p=1.0, max_tokens=24, seed=4),
    )[0]
    assert texts(reseeded) != texts(alone)[:2]


def test_stop_sequences_end_the_sample_before_the_stop(engine: VllmBackend) -> None:
    free = engine.generate([GenerationRequest("s", PLAIN, 6)], PARAMS)[0]
    # A stop string that the unstopped samples contain, taken from one of them.
    long = max(free, key=lambda completion: len(completion.text))
    assert len(long.text) >= 6
    stop = long.text[3:6]
    stopped_prompt = RenderedPrompt(PromptStyle.COMPLETION, PLAIN.text, (), (stop,))
    stopped = engine.generate([GenerationRequest("s", stopped_prompt, 6)], PARAMS)[0]
    for before, after in zip(free, stopped, strict=True):
        if stop in before.text:
            assert after.text == before.text[: before.text.index(stop)]
            assert after.finish_reason == "stop"
        else:
            assert after.text == before.text
    assert any(stop in before.text for before in free)


def test_tokens_are_counted_with_the_prompt_once_per_request(
    engine: VllmBackend, tiny_model: Path
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    before = engine.stats
    batches = engine.generate(
        [GenerationRequest("p", PLAIN, 3), GenerationRequest("c", CHAT, 2, start=4)], PARAMS
    )
    plain_tokens = len(tokenizer.encode(PLAIN.text))
    chat_text = tokenizer.apply_chat_template(
        [{"role": r, "content": c} for r, c in CHAT.messages],
        add_generation_prompt=True,
        tokenize=False,
    )
    chat_tokens = len(tokenizer.encode(chat_text, add_special_tokens=False))
    assert [c.prompt_tokens for c in batches[0]] == [plain_tokens, 0, 0]
    assert [c.prompt_tokens for c in batches[1]] == [chat_tokens, 0]
    after = engine.stats
    completions = [c for batch in batches for c in batch]
    assert after.samples - before.samples == 5
    assert after.prompt_tokens - before.prompt_tokens == plain_tokens + chat_tokens
    assert after.completion_tokens - before.completion_tokens == sum(
        c.completion_tokens for c in completions
    )
    assert after.generate_seconds > before.generate_seconds
    assert after.tokens_per_second > 0


def test_the_sink_gets_each_sample_as_it_finishes(engine: VllmBackend) -> None:
    calls: list[tuple[int, int, Completion, int]] = []
    lock = threading.Lock()

    def sink(position: int, index: int, completion: Completion) -> None:
        with lock:
            calls.append((position, index, completion, len(calls)))

    requests = [GenerationRequest("x", PLAIN, 3, start=10), GenerationRequest("y", CHAT, 2)]
    batches = engine.generate(requests, PARAMS, sink)
    assert sorted((p, i) for p, i, _, _ in calls) == [(0, 10), (0, 11), (0, 12), (1, 0), (1, 1)]
    for position, index, completion, _ in calls:
        assert batches[position][index - requests[position].start] is completion


def test_a_sink_error_aborts_the_batch_and_the_engine_stays_usable(engine: VllmBackend) -> None:
    class Stop(Exception):
        pass

    def sink(position: int, index: int, completion: Completion) -> None:
        raise Stop

    with pytest.raises(Stop):
        engine.generate([GenerationRequest("x", PLAIN, 8)], PARAMS, sink)
    again = engine.generate([GenerationRequest("x", PLAIN, 2)], PARAMS)
    assert [len(batch) for batch in again] == [2]


def test_a_prompt_longer_than_the_context_is_a_backend_error(engine: VllmBackend) -> None:
    long = RenderedPrompt(PromptStyle.COMPLETION, "x = 1\n" * 3000, (), ())
    with pytest.raises(BackendError, match="vLLM refused a request: "):
        engine.generate(
            [GenerationRequest("ok", PLAIN, 2), GenerationRequest("long", long, 1)], PARAMS
        )
    # What was queued before the refusal was dropped: the engine is idle and usable.
    assert [len(b) for b in engine.generate([GenerationRequest("ok", PLAIN, 2)], PARAMS)] == [2]


def _children() -> set[int]:
    pids: set[int] = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            pids.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:
            continue
    # multiprocessing's resource tracker serves the whole interpreter and exits with it.
    return {
        pid
        for pid in pids
        if Path(f"/proc/{pid}").exists()
        and "resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_text()
    }


def test_close_shuts_the_engine_down_and_leaves_no_process(engine: VllmBackend) -> None:
    # Other tests' children (a `vllm serve` fixture of this session) are not this engine's.
    engine.close()
    others = _children()
    engine.generate([GenerationRequest("z", PLAIN, 1)], PARAMS)
    assert engine.loaded
    assert _children() - others, "the CPU engine runs in a child process"
    engine.close()
    assert not engine.loaded
    leftover = _children() - others
    assert not leftover, [Path(f"/proc/{pid}/cmdline").read_text() for pid in leftover]
    engine.close()  # a second close is harmless
    # A closed backend starts a fresh engine when asked again.
    assert len(engine.generate([GenerationRequest("z", PLAIN, 1)], PARAMS)[0]) == 1


def test_each_sample_carries_its_share_of_engine_time(engine: VllmBackend) -> None:
    before = engine.stats
    (batch,) = engine.generate([GenerationRequest("time/0", PLAIN, 4)], PARAMS)
    spent = engine.stats.generate_seconds - before.generate_seconds
    shares = [c.metadata[ENGINE_SECONDS] for c in batch]
    # The shares are the gaps between finished samples: together, the call's generation time.
    assert all(share >= 0 for share in shares)
    assert 0 < sum(shares) <= spent
    assert {(c.metadata[ENGINE_DEVICE], c.metadata[ENGINE_DEVICES]) for c in batch} == {
        ("cpu", len(os.sched_getaffinity(0)))
    }
    cost = PriceTable.with_overrides({}).samples_cost("vllm-cpu:tiny", batch)
    assert cost is not None and cost > 0


def test_progress_counts_every_generated_token_at_its_rate(engine: VllmBackend) -> None:
    lines: list[str] = []
    engine.progress = lines.append
    try:
        batch = engine.generate([GenerationRequest("p", PLAIN, 6)], PARAMS)[0]
    finally:
        engine.progress = None
    # The last line of a call is always written: every sample, and a rate of real tokens.
    last = re.fullmatch(
        rf"passk: {re.escape(engine.model)}: 6/6 samples, (\d+) tokens/s, \d+ s", lines[-1]
    )
    assert last is not None, lines
    assert int(last[1]) > 0
    counter = engine._generated
    assert counter is not None and counter.available
    # The engine's own per-step token counts add up to the samples' tokens.
    before = counter.count
    again = engine.generate([GenerationRequest("q", PLAIN, 3)], PARAMS)[0]
    assert counter.count - before == sum(c.completion_tokens for c in again)
    assert batch
