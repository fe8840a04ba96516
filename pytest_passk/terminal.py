"""The run's terminal section: ``pass@k`` (or ``passk check``), the comparison, the failures and
the store line, written through pytest's terminal reporter from what the session aggregated.

Kept apart from :mod:`~pytest_passk.session` (the conductor) so that what a user reads at the end
of a run is in one place; it does not import pytest (the reporter is passed in).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_passk.comparison import Comparison
from pytest_passk.comparison_report import comparison_lines, target_line
from pytest_passk.estimate import ModelSummary
from pytest_passk.report import own_target, summary_lines
from pytest_passk.results import RunCounters, TaskResult

__all__ = ["REPLAYED_TOO", "REPLAY_SUMMARY", "STORE_SUMMARY", "RunView", "write_summary"]

STORE_SUMMARY = (
    "passk store {root}: {drawn} samples drawn, {reused} read from the store; "
    "{executed} programs executed, {cached} verdicts from the cache"
)
REPLAY_SUMMARY = (
    "passk: {replayed} samples replayed from recordings (not stored); "
    "{executed} programs executed, {cached} verdicts from the cache"
)
#: After :data:`STORE_SUMMARY` when some models were replayed and others drawn.
REPLAYED_TOO = "passk: and {replayed} samples replayed from recordings (not stored)"


@dataclass(frozen=True, slots=True)
class RunView:
    """What the end-of-run section shows, as the controller aggregated it."""

    results: Sequence[TaskResult]
    summaries: Sequence[ModelSummary]
    comparison: Comparison | None
    ks: Sequence[int]
    sampling_mode: bool
    verbose: bool
    #: Lines naming items that ended without a verdict, then threshold failures (in red).
    unjudged: Sequence[str]
    failures: Sequence[str]
    isolation: str
    counters: RunCounters
    store: Path
    #: ``--passk-target``: each model's reach on its own tasks is shown where the comparison
    #: shows none (one model, or no task every model ran).
    target: float | None = None


def write_summary(terminalreporter: Any, view: RunView) -> None:
    """Write the section; nothing when no item was judged or left without a verdict."""
    write = terminalreporter.write_line
    if not view.results:
        if view.unjudged:
            terminalreporter.write_sep("=", "pass@k")
            for line in view.unjudged:
                write(line, red=True)
        return
    if not view.sampling_mode:
        passed = sum(r.c for r in view.results)
        terminalreporter.write_sep("=", "passk check")
        write(
            f"references: {passed} passed, {len(view.results) - passed} failed "
            f"(of {len(view.results)} tasks)"
        )
        return
    terminalreporter.write_sep("=", "pass@k")
    for line in summary_lines(view.summaries, view.results, view.ks, view.verbose):
        write(line)
    if view.target is not None and (view.comparison is None or not view.comparison.reach):
        write(target_line(view.target, own_target(view.summaries, view.results, view.target)))
    if view.comparison is not None:
        terminalreporter.write_sep("-", "comparison")
        for line in comparison_lines(view.comparison):
            write(line)
    for failure in [*view.unjudged, *view.failures]:
        write(failure, red=True)
    write(f"sandbox: isolation={view.isolation}")
    counters = view.counters
    if counters.judged:
        stored = counters.drawn or counters.reused
        template = STORE_SUMMARY if stored else REPLAY_SUMMARY
        fields = counters.to_json()
        write(template.format(root=view.store, **fields))
        if stored and counters.replayed:
            write(REPLAYED_TOO.format(**fields))
