"""Hooks that plugins and ``conftest.py`` files may implement to extend pytest-passk."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from pytest_passk.backends import Backend, BackendContext, ModelSpec


@pytest.hookspec(firstresult=True)
def pytest_passk_make_backend(
    config: pytest.Config, model: ModelSpec, context: BackendContext
) -> Backend | None:
    """Build the backend for ``model``, or return ``None`` to leave it to the built-in providers.

    Called once per model, before any sample is drawn. The backend must implement
    :class:`pytest_passk.backends.Backend`; its samples go through the sample store like those of
    the built-in backends (unless it is a :class:`~pytest_passk.backends.Recording`). The spec
    names a built-in provider (the implementation decides which specs it takes over, e.g.
    ``openai:my-scripted-model`` in tests) or one the plugin declares in
    :func:`pytest_passk_providers`.
    """


@pytest.hookspec
def pytest_passk_providers(config: pytest.Config) -> list[str]:  # type: ignore[empty-body]
    """Return provider names this plugin serves (``mylab`` makes ``--model=mylab:x`` valid).

    Specs with such a provider are handed to :func:`pytest_passk_make_backend`, which must then
    return a backend for them.

    Example::

        def pytest_passk_providers(config):
            return ["mylab"]
    """


@pytest.hookspec
def pytest_passk_update_report(config: pytest.Config, report: dict[str, Any]) -> None:
    """Add to (or amend) the JSON report before it is written to ``--passk-report``.

    Called once, on the process that writes the report (the xdist controller under xdist),
    after every result is in. ``report`` is the ``pytest-passk/report/v1`` document as plain
    JSON data; add fields under a key of your own and change none of the documented ones.

    Example::

        def pytest_passk_update_report(config, report):
            report["my_lab"] = {"commit": os.environ.get("GIT_COMMIT")}
    """
