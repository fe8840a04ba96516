from __future__ import annotations

import pytest

from pytest_passk import progress as progress_module
from pytest_passk.progress import Progress


class FakeTerminal:
    def __init__(self, present: bool = True) -> None:
        self.present = present
        self.lines: list[tuple[str, bool]] = []

    def write(self, text: str, warning: bool) -> bool:
        if self.present:
            self.lines.append((text, warning))
        return self.present


def test_lines_are_rate_limited_unless_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("pytest_passk.progress.time.monotonic", lambda: clock[0])
    terminal = FakeTerminal()
    progress = Progress(terminal.write)
    progress.say("first")
    progress.say("too soon")
    progress.say("forced", force=True)
    clock[0] += progress_module.PROGRESS_EVERY
    progress.say("later")
    assert [text for text, _ in terminal.lines] == ["first", "forced", "later"]


def test_no_terminal_writes_nothing() -> None:
    Progress(None).say("x", force=True)
    assert Progress(None).warn("careful") is False
    absent = FakeTerminal(present=False)
    assert Progress(absent.write).warn("careful") is False
    assert absent.lines == []


def test_warnings_are_marked() -> None:
    terminal = FakeTerminal()
    assert Progress(terminal.write).warn("dropped 1 record") is True
    assert terminal.lines == [("passk: warning: dropped 1 record", True)]
