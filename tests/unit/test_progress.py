from __future__ import annotations

from typing import Any

import pytest

from pytest_passk import progress as progress_module
from pytest_passk.progress import Progress


class FakeReporter:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def ensure_newline(self) -> None:
        pass

    def write_line(self, text: str, **markup: Any) -> None:
        self.lines.append(text)


class FakePluginManager:
    def __init__(self, reporter: FakeReporter | None) -> None:
        self.reporter = reporter

    def get_plugin(self, name: str) -> FakeReporter | None:
        return self.reporter if name == "terminalreporter" else None


class FakeConfig:
    def __init__(self, reporter: FakeReporter | None) -> None:
        self.pluginmanager = FakePluginManager(reporter)


def make(reporter: FakeReporter | None, enabled: bool = True) -> Progress:
    return Progress(FakeConfig(reporter), enabled=enabled)  # type: ignore[arg-type]


def test_lines_are_rate_limited_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("pytest_passk.progress.time.monotonic", lambda: clock[0])
    reporter = FakeReporter()
    progress = make(reporter)
    progress.say("first")
    progress.say("too soon")
    progress.say("forced", force=True)
    clock[0] += progress_module.PROGRESS_EVERY
    progress.say("later")
    assert reporter.lines == ["first", "forced", "later"]


def test_no_terminal_or_disabled_writes_nothing() -> None:
    make(None).say("x", force=True)
    reporter = FakeReporter()
    progress = make(reporter, enabled=False)
    progress.say("x", force=True)
    assert progress.warn("careful") is False
    assert reporter.lines == []


def test_warnings_are_marked() -> None:
    reporter = FakeReporter()
    assert make(reporter).warn("dropped 1 record") is True
    assert reporter.lines == ["passk: warning: dropped 1 record"]
