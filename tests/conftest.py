from __future__ import annotations

import contextlib

import pytest
from hypothesis import settings

# pytester drops the modules that an in-process run imported. numpy refuses to load twice in one
# process, and matplotlib loaded twice mixes the classes of both copies (a TypeError deep in
# add_subplot): a run that draws plots or loads pytest-randomly would import them there, and
# whichever test comes next in the same process, in any order, would fail. Loaded here first,
# they stay.
with contextlib.suppress(ImportError):
    import numpy  # noqa: F401
with contextlib.suppress(ImportError):
    import matplotlib.backends.backend_agg
    import matplotlib.figure  # noqa: F401

# Hypothesis's 200 ms deadline per example is a timing check: on CI's shared 2-core machine a
# loaded moment makes it fail tests whose results are right (FlakyFailure, "Unreliable test
# timings"). The suite's properties are about results, so no deadline.
settings.register_profile("pytest-passk", deadline=None)
settings.load_profile("pytest-passk")

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
