"""Sampled items that ended without a verdict, so pass@k never silently leaves them out.

An item has no result when something stopped it while it was judged (pytest-timeout's signal
method raises inside the judge; its thread method ends the process, which pytest-xdist reports
as a crashed worker) or when it failed for want of samples. Such items are listed on the
terminal and in the JSON report, and the report is marked incomplete.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "UNJUDGED_ATTRIBUTE",
    "UNJUDGED_LINE",
    "UNJUDGED_REPORT_KEY",
    "UNJUDGED_SUMMARY",
    "UnjudgedItem",
    "UnjudgedItems",
    "first_line",
    "mark_unjudged",
]

#: Key of an item that ended without a verdict on its test report (plain JSON: survives xdist).
UNJUDGED_ATTRIBUTE = "passk_unjudged"
#: The JSON report's list of such items.
UNJUDGED_REPORT_KEY = "unjudged"
UNJUDGED_SUMMARY = (
    "passk: {count} item(s) ended without a verdict (interrupted, e.g. by pytest-timeout, or "
    "without samples): pass@k leaves them out and the report is marked incomplete"
)
UNJUDGED_LINE = "  {nodeid}: {reason}"
#: The phases of a report pytest itself makes; xdist's report of a crashed worker has none.
_PHASES = ("setup", "call", "teardown")


@dataclass(frozen=True, slots=True)
class UnjudgedItem:
    """One sampled item with no verdict: which, of which model, and why (one line)."""

    nodeid: str
    model: str
    reason: str

    def to_json(self) -> dict[str, str]:
        """Plain JSON data, as on the test report and in the JSON report."""
        return {"nodeid": self.nodeid, "model": self.model, "reason": self.reason}


class UnjudgedItems:
    """The run's items without a verdict, kept where reports end up (the xdist controller)."""

    def __init__(self) -> None:
        self._items: dict[str, UnjudgedItem] = {}

    def __bool__(self) -> bool:
        return bool(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: UnjudgedItem) -> None:
        """Record an item (a rerun of the same node id replaces it)."""
        self._items[item.nodeid] = item

    def discard(self, nodeid: str) -> None:
        """Forget an item that got its verdict after all (e.g. rerun by pytest-rerunfailures)."""
        self._items.pop(nodeid, None)

    def take(self, report: Any, *, judged: bool, labels: Iterable[str]) -> None:
        """Note a test report where reports end up: a verdict takes its item off the list; an
        item marked by :func:`mark_unjudged` goes on it, and so does a sampled item (one of
        ``labels``, empty in check mode) whose xdist worker crashed.
        """
        if judged:
            self.discard(report.nodeid)
        elif UNJUDGED_ATTRIBUTE in report.__dict__:
            self.from_report(report.nodeid, report.__dict__[UNJUDGED_ATTRIBUTE])
        else:
            self.from_crash(report.nodeid, report.when, report.failed, report.longrepr, labels)

    def from_report(self, nodeid: str, data: object) -> None:
        """Record the data the item's own process attached to its report, if any."""
        if isinstance(data, dict) and {"model", "reason"} <= data.keys():
            self.add(UnjudgedItem(nodeid, str(data["model"]), str(data["reason"])))

    def from_crash(
        self, nodeid: str, when: str, failed: bool, longrepr: object, labels: Iterable[str]
    ) -> None:
        """Record a sampled item whose xdist worker died under it: xdist reports it with no
        phase and no keywords, so the model is read off the node id's parameter.
        """
        if not failed or when in _PHASES:
            return
        for label in labels:
            if nodeid.endswith(f"[{label}]"):
                self.add(UnjudgedItem(nodeid, label, first_line(str(longrepr))))
                return

    def lines(self) -> list[str]:
        """The terminal's lines: the summary, then one line per item."""
        if not self._items:
            return []
        items = sorted(self._items.values(), key=lambda item: item.nodeid)
        return [UNJUDGED_SUMMARY.format(count=len(items))] + [
            UNJUDGED_LINE.format(nodeid=item.nodeid, reason=item.reason) for item in items
        ]

    def to_json(self) -> list[dict[str, str]]:
        """The JSON report's list, by node id."""
        return [self._items[nodeid].to_json() for nodeid in sorted(self._items)]


def mark_unjudged(report: Any, model: str | None, error: str) -> None:
    """Mark the failed call report of a sampled item (``model`` set) that has no result, with
    the first line of its ``error``, as plain JSON that survives pytest-xdist.
    """
    if model is not None and report.failed:
        report.__dict__[UNJUDGED_ATTRIBUTE] = {"model": model, "reason": first_line(error)}


def first_line(text: str) -> str:
    """The first line of a message (a report's crash line must be one line)."""
    return text.strip().split("\n", 1)[0]
