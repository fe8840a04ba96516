from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.openai_server import ScriptedOpenAI


@pytest.fixture
def server() -> Iterator[ScriptedOpenAI]:
    """A scripted OpenAI-compatible server serving ``scripted-model``."""
    with ScriptedOpenAI(["scripted-model"]) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_openai_environment(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests name their server and key themselves; a developer's own must not leak in (except
    into the opt-in tests of the real API).
    """
    if request.node.get_closest_marker("paid") is not None:
        return
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
