from __future__ import annotations

from pytest_passk.unjudged import (
    UNJUDGED_LINE,
    UNJUDGED_SUMMARY,
    UnjudgedItem,
    UnjudgedItems,
    mark_unjudged,
)

LABELS = ("replay:a.jsonl", "gpt")


def test_an_items_own_report_is_recorded_with_its_first_line() -> None:
    items = UnjudgedItems()
    items.from_report("t.py::test_x[gpt]", {"model": "gpt", "reason": "Failed: Timeout"})
    assert items.to_json() == [
        {"nodeid": "t.py::test_x[gpt]", "model": "gpt", "reason": "Failed: Timeout"}
    ]
    assert items.lines() == [
        UNJUDGED_SUMMARY.format(count=1),
        UNJUDGED_LINE.format(nodeid="t.py::test_x[gpt]", reason="Failed: Timeout"),
    ]


def test_a_crashed_worker_is_recorded_by_the_model_in_the_node_id() -> None:
    items = UnjudgedItems()
    longrepr = "worker 'gw0' crashed while running 't.py::test_x[replay:a.jsonl]'\nmore"
    items.from_crash("t.py::test_x[replay:a.jsonl]", "???", True, longrepr, LABELS)
    assert items.to_json() == [
        {
            "nodeid": "t.py::test_x[replay:a.jsonl]",
            "model": "replay:a.jsonl",
            "reason": "worker 'gw0' crashed while running 't.py::test_x[replay:a.jsonl]'",
        }
    ]


def test_ordinary_reports_and_other_tests_are_not_taken_for_crashes() -> None:
    items = UnjudgedItems()
    items.from_crash("t.py::test_x[gpt]", "call", True, "assert 0", LABELS)  # a pytest phase
    items.from_crash("t.py::test_x[gpt]", "???", False, "", LABELS)  # not failed
    items.from_crash("t.py::test_plain[1]", "???", True, "crashed", LABELS)  # no model id
    items.from_report("t.py::test_y[gpt]", {"unexpected": 1})
    assert not items and items.lines() == [] and items.to_json() == []


def test_a_later_verdict_takes_the_item_off_the_list() -> None:
    """pytest-rerunfailures reruns a failed item: its verdict replaces the interruption."""
    items = UnjudgedItems()
    items.add(UnjudgedItem("t.py::test_x[gpt]", "gpt", "Failed: Timeout"))
    items.discard("t.py::test_x[gpt]")
    assert len(items) == 0


class Report:
    def __init__(self, nodeid: str, when: str, failed: bool, longrepr: str = "") -> None:
        self.nodeid, self.when, self.failed, self.longrepr = nodeid, when, failed, longrepr


def test_a_marked_report_is_taken_and_a_verdict_takes_it_back() -> None:
    report = Report("t.py::test_x[gpt]", "call", True)
    mark_unjudged(report, "gpt", "Failed: Timeout (>3.0s) from pytest-timeout.\nstack")
    mark_unjudged(Report("t.py::test_ref", "call", True), None, "check mode: not marked")
    items = UnjudgedItems()
    items.take(report, judged=False, labels=LABELS)
    assert items.to_json()[0]["reason"] == "Failed: Timeout (>3.0s) from pytest-timeout."
    items.take(report, judged=True, labels=LABELS)
    assert not items
