"""The ``pytest-passk`` console script: list, export, prune."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pytest_passk.backends.replay import ReplayBackend
from pytest_passk.cli import AMBIGUOUS, PRUNE_NEEDS_FILTER, main
from pytest_passk.store import SampleStore
from pytest_passk.store.sampler import Sampler

from .store_scripted import PARAMS, ScriptedBackend, requests


@pytest.fixture
def root(tmp_path: Path) -> Path:
    store = SampleStore(tmp_path / "store")
    for name in ("alpha", "beta"):
        Sampler(ScriptedBackend(name), PARAMS, name, store=store, model_id=f"openai:{name}").draw(
            requests(3)
        )
    return store.root


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_list_shows_groups_tasks_and_samples(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(capsys, "list", "--store", str(root), "-v")
    assert status == 0
    assert "openai:alpha  temperature=0.8 top_p=0.95 max_tokens=1024 seed=0" in out
    assert out.count("2 tasks, 6 samples") == 2
    assert "    t/0: 3 samples" in out


def test_list_filters_by_model(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "list", "--store", str(root), "--model", "beta")
    assert "openai:beta" in out and "openai:alpha" not in out
    _, out, _ = run(capsys, "list", "--store", str(root), "--temperature", "0.1")
    assert "no samples match" in out


def test_export_writes_a_file_replay_reads_back(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "samples.jsonl"
    status, _, err = run(
        capsys, "export", "--store", str(root), "--model", "alpha", "-o", str(output)
    )
    assert status == 0 and "exported 6 samples of openai:alpha" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [r["task_id"] for r in records] == ["t/0"] * 3 + ["t/1"] * 3
    assert "#2 " in records[2]["completion"]
    assert ReplayBackend(output).recorded("t/1") == 3


def test_export_as_evalplus_solutions(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(
        capsys, "export", "--store", str(root), "--model", "alpha", "--format", "evalplus"
    )
    first = json.loads(out.splitlines()[0])
    assert first["solution"].startswith("def add(a, b):\n    return a + b")


def test_export_refuses_several_groups(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "export", "--store", str(root))
    assert status == 1
    assert AMBIGUOUS.split("{count}")[1].split("{ids}")[0].format() in err


def test_prune_deletes_only_the_selected_group(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run(capsys, "prune", "--store", str(root))
    assert status == 1 and PRUNE_NEEDS_FILTER in err
    _, out, _ = run(capsys, "prune", "--store", str(root), "--model", "alpha", "--dry-run")
    assert out.startswith("would delete")
    _, out, _ = run(capsys, "prune", "--store", str(root), "--model", "openai:alpha")
    assert out.startswith("deleted") and "6 samples" in out
    _, out, _ = run(capsys, "list", "--store", str(root))
    assert "openai:beta" in out and "openai:alpha" not in out


def test_prune_refuses_a_group_being_drawn(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = SampleStore(root)
    (group,) = [g for g in store.groups() if g.model == "openai:beta"]
    lock_path = next(group.path.glob("*.lock"))
    from pytest_passk.store.locks import StreamLock

    holder = StreamLock(lock_path, store=root)
    assert holder.try_acquire()
    try:
        status, _, err = run(capsys, "prune", "--store", str(root), "--model", "beta")
    finally:
        holder.release()
    assert status == 1 and f"{lock_path} is held" in err


def test_the_default_store_is_the_nearest_one_above(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".passk" / "samples").mkdir(parents=True)
    below = tmp_path / "tests" / "deep"
    below.mkdir(parents=True)
    monkeypatch.chdir(below)
    assert main(["list"]) == 0
    assert str(tmp_path / ".passk") in capsys.readouterr().out


def test_a_closed_pipe_ends_the_listing_quietly(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest-passk list -v | head``: the reader has gone; no BrokenPipeError, status 0."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    stdout = open(write_end, "w", encoding="utf-8")  # noqa: SIM115 - closed below
    monkeypatch.setattr("sys.stdout", stdout)
    try:
        assert main(["list", "-v", "--store", str(root)]) == 0
    finally:
        stdout.close()
