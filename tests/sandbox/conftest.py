from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_passk.sandbox.pool import Limits, PoolExecutor

#: A value the parent holds in its environment; no candidate may ever see it.
SECRET = "sk-passk-test-secret-0f8e7d6c"
SECRET_NAME = "OPENAI_API_KEY"


@pytest.fixture(scope="session")
def hidden_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stands for the run's rootdir: tests and datasets the candidates must not read."""
    path = tmp_path_factory.mktemp("hidden")
    (path / "test_secret_task.py").write_text("EXPECTED = 5  # the answer a cheat would read\n")
    return path


@pytest.fixture(scope="session")
def pool(hidden_dir: Path) -> Iterator[PoolExecutor]:
    """One warm pool for the whole sandbox suite (started with a secret in the environment)."""
    os.environ[SECRET_NAME] = SECRET
    executor = PoolExecutor(2, Limits(memory_bytes=256 * 1024**2), hide=[str(hidden_dir)])
    yield executor
    executor.close()


def descendants(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (one of our own pool processes), read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != b"Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
