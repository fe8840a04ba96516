"""pytest hooks of pytest-passk (thin: the work happens in :mod:`pytest_passk.session`)."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.settings import SETTINGS_KEY, Settings, add_options
from pytest_passk.tasks import task_spec_of


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register pytest-passk's own hooks (:mod:`pytest_passk.hookspecs`)."""
    from pytest_passk import hookspecs

    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``passk`` option group; every option also has an ini key ``passk_<name>``."""
    add_options(parser)


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """Build and validate the settings once; register the run's session object."""
    config.addinivalue_line("markers", "passk: a pytest-passk coding task")
    if config.option.help or getattr(config.option, "version", False):
        return
    settings = Settings.from_config(config)
    config.stash[SETTINGS_KEY] = settings
    from pytest_passk.session import PassKSession

    session = PassKSession(config, settings)
    config.pluginmanager.register(session, "passk-session")
    if config.pluginmanager.hasplugin("html"):
        # pytest-html is optional: its hooks exist only when it is installed and active.
        from pytest_passk.pytest_html_hooks import PytestHtmlHooks

        config.pluginmanager.register(PytestHtmlHooks(session), "passk-pytest-html")


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Collect a HumanEval-format dataset named on the command line or matching ``passk_files``."""
    from pytest_passk.datasets import is_dataset_path

    if SETTINGS_KEY not in parent.config.stash or not is_dataset_path(file_path):
        return None
    settings = parent.config.stash[SETTINGS_KEY]
    named = _named_on_command_line(parent.config, file_path)
    if named or any(fnmatch.fnmatch(file_path.name, pattern) for pattern in settings.files):
        from pytest_passk.collect import DatasetFile

        return DatasetFile.from_parent(parent, path=file_path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: Any) -> Any:
    """Turn a ``@passk.task`` function into one item per model (one per task in check mode)."""
    spec = task_spec_of(obj)
    if spec is None or SETTINGS_KEY not in collector.config.stash:
        return None
    if not isinstance(collector, pytest.Module | pytest.Class):
        return None
    module = collector.getparent(pytest.Module)
    # A task imported into another test module belongs to the module that defines it.
    if module is None or getattr(obj, "__module__", None) != module.obj.__name__:
        return []
    from pytest_passk.collect import items_for_function

    return items_for_function(collector, name, obj, spec)


def _named_on_command_line(config: pytest.Config, file_path: Path) -> bool:
    base = Path(config.invocation_params.dir)
    for arg in config.args:
        candidate = Path(arg.split("::", 1)[0])
        if not candidate.is_absolute():
            candidate = base / candidate
        if candidate == file_path or candidate.resolve() == file_path.resolve():
            return True
    return False
