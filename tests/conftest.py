from __future__ import annotations

import pytest


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
