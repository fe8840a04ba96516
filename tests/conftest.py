from __future__ import annotations

import contextlib

import pytest

# numpy refuses to load twice in one process, and pytester drops the modules that an in-process
# run imported: a run that draws plots (matplotlib) or loads pytest-randomly would import it
# there, and every later import in the same process would fail. Loaded here first, it stays.
with contextlib.suppress(ImportError):
    import numpy  # noqa: F401

#: pytest-randomly (dev extra) shuffles the suite's own tests. In the inner runs of pytester it
#: would shuffle each inner run by a seed of its own, drawn afresh every time, which no failure
#: report could reproduce: inner runs leave it off unless a test turns it on with a seed
#: (``-p randomly --randomly-seed=N``, as test_plugin_interplay.py does).
INNER_ADDOPTS = "-p no:randomly"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--run-paid",
        action="store_true",
        default=False,
        help="also run the tests marked paid (they call a paid API and need its key)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-paid"):
        return
    skip = pytest.mark.skip(reason="calls a paid API: opt in with --run-paid")
    for item in items:
        if item.get_closest_marker("paid") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _inner_runs_in_file_order(request: pytest.FixtureRequest) -> None:
    if "pytester" in request.fixturenames:
        request.getfixturevalue("pytester")  # first: it clears PYTEST_ADDOPTS
        monkeypatch: pytest.MonkeyPatch = request.getfixturevalue("monkeypatch")
        monkeypatch.setenv("PYTEST_ADDOPTS", INNER_ADDOPTS)
