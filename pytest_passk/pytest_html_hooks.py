"""pytest-html integration: each sampled item's row shows c/n and pass@k, its details the
first failing candidate, and the summary section the ``pass@k`` table.

Registered by the plugin only when pytest-html is active (its hook specifications must exist),
through pytest-html's documented hooks: ``pytest_html_results_table_header``,
``pytest_html_results_table_row``, ``pytest_html_results_summary`` and ``report.extras``. The
row reads the item's result from its test report (plain JSON), so it works under pytest-xdist.
"""

from __future__ import annotations

import html
from collections.abc import Generator, Sequence
from typing import Protocol

import pytest

from pytest_passk.collect import RESULT_KEY
from pytest_passk.report import failure_text
from pytest_passk.results import TaskResult

__all__ = ["HTML_PLUGIN", "PytestHtmlHooks", "SummarySource"]

#: pytest-html's plugin name (its ``pytest11`` entry point).
HTML_PLUGIN = "html"
#: Key of the item's result on its test report (:data:`pytest_passk.session.REPORT_ATTRIBUTE`).
_REPORT_ATTRIBUTE = "passk"
SUMMARY_TITLE = "pass@k (pytest-passk)"


class SummarySource(Protocol):
    """What the rows and the summary need from the run (the session implements it)."""

    def ks(self) -> tuple[int, ...]:
        """The k values reported."""
        ...

    def summary_lines(self) -> list[str]:
        """The ``pass@k`` section's lines, as on the terminal; empty when there is none."""
        ...


class PytestHtmlHooks:
    """pytest-html hook implementations (registered only when pytest-html is active)."""

    def __init__(self, source: SummarySource) -> None:
        self._source = source

    def pytest_html_results_table_header(self, cells: list[str]) -> None:
        """A ``c/n`` column and one ``pass@k`` column per k, after the test id."""
        at = _after_test_id(cells)
        added = ['<th class="passk-cn">c/n</th>']
        added += [f'<th class="passk-pass-at-k">pass@{k}</th>' for k in self._source.ks()]
        cells[at:at] = added

    def pytest_html_results_table_row(self, report: pytest.TestReport, cells: list[str]) -> None:
        """The item's c/n and pass@k (empty cells for other tests and phases)."""
        data = report.__dict__.get(_REPORT_ATTRIBUTE) if report.when == "call" else None
        ks = self._source.ks()
        if isinstance(data, dict):
            values = data.get("pass_at_k", {})
            cn = f"{int(data['c'])}/{int(data['n'])}"
            fractions = [_fraction(values.get(str(k))) for k in ks]
        else:
            cn, fractions = "", [""] * len(ks)
        added = [f'<td class="passk-cn">{cn}</td>']
        added += [f'<td class="passk-pass-at-k">{value}</td>' for value in fractions]
        at = _after_test_id(cells)
        cells[at:at] = added

    def pytest_html_results_summary(
        self, prefix: list[str], summary: list[str], postfix: list[str], session: pytest.Session
    ) -> None:
        """The ``pass@k`` table, as the terminal prints it, above pytest-html's summary."""
        lines = self._source.summary_lines()
        if lines:
            text = html.escape("\n".join(lines))
            prefix.append(f'<h2>{SUMMARY_TITLE}</h2><pre class="passk-summary">{text}</pre>')

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """The first failing candidate in the item's details (also when the item passed), made
        where the samples are (the xdist worker); pytest-html carries ``report.extras`` over.
        """
        report = yield
        result = item.stash.get(RESULT_KEY, None)
        if call.when == "call" and result is not None and result.c < result.n:
            from pytest_html import extras

            extra = extras.html(_failure_html(result))
            report.__dict__["extras"] = [*report.__dict__.get("extras", []), extra]
        return report


def _failure_html(result: TaskResult) -> str:
    return f'<pre class="passk-failure">{html.escape(failure_text(result))}</pre>'


def _after_test_id(cells: Sequence[str]) -> int:
    """Where our cells go: after pytest-html's test id column (the second), else at the end."""
    for index, cell in enumerate(cells):
        if "col-testId" in cell or 'data-column-type="testId"' in cell:
            return index + 1
    return len(cells)


def _fraction(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "n/a"
