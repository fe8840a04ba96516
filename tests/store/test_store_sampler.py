"""The Sampler through the store, in-process, with the scripted backend."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest

from pytest_passk.backends import GenerationRequest
from pytest_passk.backends.replay import ReplayBackend
from pytest_passk.errors import BackendError
from pytest_passk.store import REPAIRED, SampleStore, StreamKey
from pytest_passk.store.sampler import SHORT_BACKEND, Sampler, _runs

from .store_scripted import ADD, PARAMS, ScriptedBackend, read_log, requests


def sampler(store: SampleStore, backend: ScriptedBackend, **changes: object) -> Sampler:
    params = dataclasses.replace(PARAMS, **changes)  # type: ignore[arg-type]
    return Sampler(backend, params, "scripted", store=store, model_id=f"test:{backend.model}")


def test_first_draw_stores_every_sample_and_rerun_draws_nothing(store: SampleStore) -> None:
    backend = ScriptedBackend()
    first = sampler(store, backend).draw(requests(5))
    assert [len(batch) for batch in first] == [5, 5]
    assert sampler(store, backend).draw(requests(5)) == first
    assert len(backend.calls) == 1
    key = StreamKey("test:scripted-1", PARAMS, "t/0", ADD)
    kept = store.read(key)
    assert sorted(kept) == list(range(5))
    assert kept[3].completion.metadata == {"backend": "scripted"}
    assert kept[3].completion.finish_reason == "stop"


def test_raising_n_draws_only_the_difference(store: SampleStore) -> None:
    backend = ScriptedBackend()
    small = sampler(store, backend).draw(requests(3))
    large = sampler(store, backend).draw(requests(8))
    assert backend.calls[1] == [("t/0", 3, 5), ("t/1", 3, 5)]
    assert [batch[:3] for batch in large] == small
    # Sample i is the same whatever n asked for it.
    assert sampler(store, backend).draw(requests(2)) == [batch[:2] for batch in small]
    assert len(backend.calls) == 2


def test_a_request_starting_late_gets_those_indices(store: SampleStore) -> None:
    backend = ScriptedBackend()
    (batch,) = sampler(store, backend).draw([GenerationRequest("t/0", ADD, 2, start=4)])
    assert "#4 " in batch[0].text and "#5 " in batch[1].text


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.2},
        {"top_p": 0.5},
        {"max_tokens": 99},
        {"seed": 7},
    ],
)
def test_a_changed_sampling_parameter_draws_fresh_samples(
    store: SampleStore, change: dict[str, object]
) -> None:
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(4))
    sampler(store, backend, **change).draw(requests(4))
    assert backend.calls[1] == [("t/0", 0, 4), ("t/1", 0, 4)]


@pytest.mark.parametrize(
    "prompt",
    [
        dataclasses.replace(ADD, stop=("\nclass ",)),
        dataclasses.replace(ADD, template_version="2"),
        dataclasses.replace(ADD, text="def add(a, b, c):\n"),
    ],
    ids=["stop", "template_version", "prompt"],
)
def test_a_changed_prompt_draws_fresh_samples(store: SampleStore, prompt: object) -> None:
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(3))
    sampler(store, backend).draw(requests(3, prompt=prompt))  # type: ignore[arg-type]
    assert len(backend.calls) == 2 and sum(n for *_, n in backend.calls[1]) == 6


def test_another_model_draws_fresh_samples(store: SampleStore) -> None:
    sampler(store, ScriptedBackend("a")).draw(requests(3))
    other = ScriptedBackend("b")
    sampler(store, other).draw(requests(3))
    assert len(other.calls) == 1


def test_samples_are_kept_as_they_arrive_when_the_backend_fails(store: SampleStore) -> None:
    failing = ScriptedBackend(fail_after=3)
    with pytest.raises(BackendError):
        sampler(store, failing).draw(requests(4))
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(4))
    assert backend.calls == [[("t/0", 3, 1), ("t/1", 0, 4)]]


def test_a_backend_that_ignores_the_sink_is_stored_when_it_returns(store: SampleStore) -> None:
    sampler(store, ScriptedBackend(use_sink=False)).draw(requests(3))
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(3))
    assert backend.calls == []


def test_a_short_backend_is_an_error_and_keeps_what_it_gave(store: SampleStore) -> None:
    with pytest.raises(BackendError) as excinfo:
        sampler(store, ScriptedBackend(short_by=1)).draw(requests(3, tasks=1))
    assert str(excinfo.value) == SHORT_BACKEND.format(
        model="scripted", got=2, task_id="t/0", want=3
    )
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(3, tasks=1))
    assert backend.calls == [[("t/0", 2, 1)]]


def test_a_torn_record_is_dropped_with_a_warning_and_drawn_again(
    store: SampleStore, warnings_seen: list[str]
) -> None:
    sampler(store, ScriptedBackend()).draw(requests(4, tasks=1))
    path = store.stream_path(StreamKey("test:scripted-1", PARAMS, "t/0", ADD))
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"return", b"retune")  # a flipped byte: checksum mismatch
    path.write_bytes(b"\n".join(lines)[:-30])  # and a torn last record
    backend = ScriptedBackend()
    again = sampler(store, backend).draw(requests(4, tasks=1))
    assert backend.calls == [[("t/0", 1, 1), ("t/0", 3, 1)]]
    assert len(warnings_seen) == 1
    assert warnings_seen[0] == REPAIRED.format(path=path, count=2, lines="3, 5")
    assert [c.text for c in again[0]] == [
        c.text for c in sampler(store, ScriptedBackend(use_sink=False)).draw(requests(4, 1))[0]
    ]
    assert store.repair(StreamKey("test:scripted-1", PARAMS, "t/0", ADD)).keys() == {0, 1, 2, 3}
    assert len(warnings_seen) == 1  # the file is clean now


def test_threads_sharing_a_store_draw_each_sample_once(tmp_path: Path) -> None:
    log = tmp_path / "draws.log"
    store = SampleStore(tmp_path / "store")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            backend = ScriptedBackend(log=log, delay=0.002)
            sampler(store, backend).draw(requests(10, tasks=6))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    drawn = [(task, index) for task, index, _ in read_log(log)]
    assert sorted(drawn) == sorted({(f"t/{t}", i) for t in range(6) for i in range(10)})


def test_replay_bypasses_the_store(tmp_path: Path, store: SampleStore) -> None:
    recording = tmp_path / "samples.jsonl"
    recording.write_text('{"task_id": "t/0", "completion": "    return a + b\\n"}\n')
    replay = ReplayBackend(recording)
    result = Sampler(replay, PARAMS, "replay", store=store).draw(requests(3, tasks=1))
    assert len(result[0]) == 1
    assert not store.samples_dir.exists()


def test_runs_split_indices_into_consecutive_requests() -> None:
    assert _runs([5, 1, 2, 3, 7, 8]) == [(1, 3), (5, 1), (7, 2)]
    assert _runs([]) == []


def test_progress_hears_of_every_new_sample_and_origins_are_counted(store: SampleStore) -> None:
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(2))
    seen: list[tuple[int, int, int]] = []
    more = sampler(store, backend)
    more.draw(
        requests(5),
        on_sample=lambda done, total, c: seen.append((done, total, c.completion_tokens)),
    )
    assert seen == [(done, 6, 3) for done in range(1, 7)]  # 3 new samples of each of 2 tasks
    assert [(o.fresh, o.stored) for o in more.origins] == [(3, 2), (3, 2)]


def test_samples_drawn_since_the_run_began_count_as_fresh(store: SampleStore) -> None:
    """An xdist worker that finds samples another worker of the same run drew counts them as
    drawn in this run, not as read from an earlier run.
    """
    backend = ScriptedBackend()
    sampler(store, backend).draw(requests(2))
    later = Sampler(backend, PARAMS, "scripted", store=store, model_id="test:scripted-1", since=0.0)
    later.draw(requests(2))
    assert [(o.fresh, o.stored) for o in later.origins] == [(2, 0), (2, 0)]
