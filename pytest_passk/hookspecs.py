"""Hooks that plugins and ``conftest.py`` files may implement to extend pytest-passk."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pytest_passk.backends import Backend
    from pytest_passk.backends.registry import BackendContext, ModelSpec


@pytest.hookspec(firstresult=True)
def pytest_passk_make_backend(
    config: pytest.Config, model: ModelSpec, context: BackendContext
) -> Backend | None:
    """Build the backend for ``model``, or return ``None`` to leave it to the built-in providers.

    Called once per model, before any sample is drawn. The backend must implement
    :class:`pytest_passk.backends.Backend`; its samples go through the sample store like those of
    the built-in backends (unless it is a :class:`~pytest_passk.backends.Recording`). The spec
    must name a known provider (``openai:``, ``vllm:``, ``vllm-cpu:``, ``replay:``) or an alias of
    one: the implementation decides which of them it takes over, e.g. ``openai:my-scripted-model``
    in tests.
    """
