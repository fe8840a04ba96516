"""Batch API mode against the scripted server's files and batches endpoints (OpenAI's shapes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_passk.backends import Completion, GenerationRequest, SamplingParams
from pytest_passk.backends.openai import sample_seed
from pytest_passk.backends.openai_batch import BatchBackend, BatchPending
from pytest_passk.backends.openai_client import OpenAIEndpoint, ServerTarget
from pytest_passk.errors import BackendError, BackendUnavailable
from pytest_passk.prompts import PromptStyle, RenderedPrompt
from pytest_passk.store.batches import BatchLedger
from tests.support.openai_server import ScriptedOpenAI

MODEL = "scripted-model"


def requests(tasks: int, n: int) -> list[GenerationRequest]:
    return [
        GenerationRequest(
            f"t/{t}",
            RenderedPrompt(PromptStyle.CHAT, f"def f{t}(x):", (("user", f"def f{t}(x):"),), ()),
            n,
        )
        for t in range(tasks)
    ]


def batch_backend(server: ScriptedOpenAI, store: Path, wait: float = 5.0) -> BatchBackend:
    target = ServerTarget(MODEL, OpenAIEndpoint.CHAT, server.url, None)
    return BatchBackend(target, store, wait=wait, poll_interval=0.01, max_poll_interval=0.05)


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[int, int, Completion]] = []

    def __call__(self, position: int, index: int, completion: Completion) -> None:
        self.got.append((position, index, completion))


def test_a_batch_is_submitted_polled_and_collected(server: ScriptedOpenAI, tmp_path: Path) -> None:
    sink = Sink()
    sampler = batch_backend(server, tmp_path)
    batches = sampler.generate(requests(3, 4), SamplingParams(seed=3), sink)
    assert [len(b) for b in batches] == [4, 4, 4]
    assert sorted((p, i) for p, i, _ in sink.got) == [(p, i) for p in range(3) for i in range(4)]
    assert all(c.metadata["batch"] is True for b in batches for c in b)
    assert len(server.state.batches) == 1 and sampler.submitted == ["batch_1"]
    # The request file follows OpenAI's documented shape, one line per chunk.
    lines = [json.loads(line) for line in server.state.files["file-1"].decode().splitlines()]
    assert [set(line) for line in lines] == [{"custom_id", "method", "url", "body"}] * 3
    assert {line["url"] for line in lines} == {"/v1/chat/completions"}
    assert [line["body"]["n"] for line in lines] == [4, 4, 4]
    assert {line["body"]["seed"] for line in lines} == {sample_seed(3, 0)}
    assert BatchLedger(tmp_path).pending() == []


def test_a_pending_batch_is_kept_and_collected_by_the_next_run(
    server: ScriptedOpenAI, tmp_path: Path
) -> None:
    server.state.batch_outcome = "in_progress"
    with pytest.raises(BatchPending) as pending:
        batch_backend(server, tmp_path, wait=0.1).generate(requests(2, 4), SamplingParams())
    message = str(pending.value)
    assert "batch_1 still in_progress" in message and "8 samples are paid for" in message
    assert [b.batch_id for b in BatchLedger(tmp_path).pending()] == ["batch_1"]

    server.state.batch_outcome = "completed"
    sink = Sink()
    batches = batch_backend(server, tmp_path).generate(requests(2, 4), SamplingParams(), sink)
    assert [len(b) for b in batches] == [4, 4]
    assert len(server.state.batches) == 1  # nothing submitted twice
    assert BatchLedger(tmp_path).pending() == []


def test_an_expired_batch_reports_what_it_delivered_and_the_rest_is_submitted_again(
    server: ScriptedOpenAI, tmp_path: Path
) -> None:
    server.state.batch_outcome = "expired"
    server.state.expire_after = 1  # one of three request lines answered before expiry
    sink = Sink()
    with pytest.raises(BackendError) as ended:
        batch_backend(server, tmp_path).generate(requests(3, 4), SamplingParams(), sink)
    assert str(ended.value) == (
        f"{server.url}: OpenAI batch batch_1 expired; 4 of its 12 samples were stored, the next "
        "run with --passk-openai-batch submits the other 8 again"
    )
    assert sorted((p, i) for p, i, _ in sink.got) == [(0, i) for i in range(4)]
    assert BatchLedger(tmp_path).pending() == []

    # The next run asks only for what is missing (as the sample store would).
    server.state.batch_outcome = "completed"
    missing = requests(3, 4)[1:]
    batches = batch_backend(server, tmp_path).generate(missing, SamplingParams())
    assert [len(b) for b in batches] == [4, 4]
    second = server.state.files["file-3"].decode().splitlines()
    assert len(second) == 2


def test_a_cancelled_batch_is_reported(server: ScriptedOpenAI, tmp_path: Path) -> None:
    server.state.batch_outcome = "cancelled"
    with pytest.raises(BackendError, match=r"batch_1 cancelled; 0 of its 4 samples"):
        batch_backend(server, tmp_path).generate(requests(1, 4), SamplingParams())


def test_a_batch_holding_unselected_tasks_stays_until_they_are_asked_for(
    server: ScriptedOpenAI, tmp_path: Path
) -> None:
    server.state.batch_outcome = "in_progress"
    with pytest.raises(BatchPending):
        batch_backend(server, tmp_path, wait=0.05).generate(requests(2, 2), SamplingParams())
    server.state.batch_outcome = "completed"
    only_first = requests(2, 2)[:1]
    batch_backend(server, tmp_path).generate(only_first, SamplingParams())
    assert [b.batch_id for b in BatchLedger(tmp_path).pending()] == ["batch_1"]
    only_second = requests(2, 2)[1:]
    batches = batch_backend(server, tmp_path).generate(only_second, SamplingParams())
    assert [len(b) for b in batches] == [2]
    assert len(server.state.batches) == 1
    assert BatchLedger(tmp_path).pending() == []


def test_a_server_returning_fewer_choices_leaves_the_rest_for_the_next_run(
    server: ScriptedOpenAI, tmp_path: Path
) -> None:
    server.state.max_n = 2
    with pytest.raises(BackendError, match=r"batch_1 completed; 2 of its 4 samples"):
        batch_backend(server, tmp_path).generate(requests(1, 4), SamplingParams())


def test_batch_mode_needs_a_store(server: ScriptedOpenAI) -> None:
    target = ServerTarget(MODEL, OpenAIEndpoint.CHAT, server.url, None)
    with pytest.raises(BackendUnavailable, match="needs the sample store"):
        BatchBackend(target, None)


def test_the_ledger_skips_a_damaged_record(tmp_path: Path) -> None:
    server_url = "http://127.0.0.1:1/v1"
    ledger = BatchLedger(tmp_path)
    from pytest_passk.store.batches import BatchEntry, PendingBatch

    batch = PendingBatch(
        "batch_9",
        server_url,
        MODEL,
        "chat",
        "file-1",
        1.0,
        (BatchEntry("c-0-2", "stream", "t/0", 0, 2),),
    )
    ledger.add(batch)
    with ledger.path.open("ab") as stream:
        stream.write(b'{"batch_id": "torn"')
    assert ledger.pending() == [batch]
    ledger.remove("batch_9")
    assert ledger.pending() == []
