from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.store import SampleStore


@pytest.fixture
def warnings_seen() -> list[str]:
    return []


@pytest.fixture
def store(tmp_path: Path, warnings_seen: list[str]) -> SampleStore:
    return SampleStore(tmp_path / "store", warn=warnings_seen.append)
