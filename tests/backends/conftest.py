"""Fixtures for the vLLM tests: the tiny model, built once, and one CPU engine shared by the tests.

Tests marked ``vllm`` run real vLLM on the CPU (the ``cpu`` extra, see ``.ci/install-cpu``); they
skip with the reason when vLLM cannot be imported, and ``-m 'not vllm'`` deselects them.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_passk.backends.vllm import VllmBackend
from pytest_passk.backends.vllm_checks import ModelSource
from tests.support.openai_server import ScriptedOpenAI
from tests.support.tiny_llama import build_tiny_llama

VLLM_MISSING = "vLLM's CPU build is not installed (pip install -e '.[cpu]' and .ci/install-cpu)"


def vllm_importable() -> bool:
    return importlib.util.find_spec("vllm") is not None and (
        importlib.util.find_spec("transformers") is not None
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if vllm_importable():
        return
    skip = pytest.mark.skip(reason=VLLM_MISSING)
    for item in items:
        if item.get_closest_marker("vllm") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _cpu_engine_environment() -> None:
    # A small KV cache: the machine has little memory to spare and the tests need little.
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    # What vLLM's own CPU CI sets: dynamo with the eager backend instead of inductor's C++
    # kernels, compiled per model shape at every engine start (measured here, SmolLM2 on a
    # loaded 2-core machine: 151 s to start instead of 500 s). The tests check plumbing, not
    # speed; users get the default (compiled once, cached under ~/.cache/vllm). Subprocess runs
    # (vllm serve, pytester's runpytest_subprocess) inherit it.
    os.environ.setdefault("VLLM_CPU_CI_ENV", "1")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama-3.1-shaped model with a chat template."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def engine(tiny_model: Path) -> Iterator[VllmBackend]:
    """One CPU engine for the plumbing tests (starting one costs 30-60 s)."""
    backend = VllmBackend(str(tiny_model), ModelSource(str(tiny_model), tiny_model), device="cpu")
    yield backend
    backend.close()


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
