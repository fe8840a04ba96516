"""The HTML report: self-contained, escaped, with every section it promises."""

from __future__ import annotations

import html
import html.parser
import re
from typing import Any

import pytest

from pytest_passk.html_report import (
    CHECK_MODE,
    INCOMPLETE,
    NO_FIGURES,
    NONE_SOLVED,
    ONLY_ONE,
    render_html,
)
from pytest_passk.plots import COST_FREE, NO_COST, NO_COST_ABOVE_ZERO

from .reports import HOSTILE_MESSAGE, HOSTILE_PROGRAM, HOSTILE_TASK, report


class Elements(html.parser.HTMLParser):
    """Every start tag with its attributes, and the text inside <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(report())


def test_hostile_texts_are_inert_and_shown_as_text(page: str) -> None:
    elements = parse(page)
    assert len(elements.scripts) == 1, "only the report's own script"
    assert "pwned" not in elements.scripts[0]
    assert not [tag for tag, _ in elements.tags if tag in ("img", "iframe", "object", "embed")]
    handlers = [(t, a) for t, a in elements.tags for name in a if name.lower().startswith("on")]
    assert handlers == []
    assert not [t for t, _ in elements.tags if t == "b"]  # the task id's markup stays text
    # Shown, escaped, where a reader looks for them.
    assert html.escape(HOSTILE_PROGRAM) in page
    assert html.escape(HOSTILE_MESSAGE.splitlines()[0]) in page
    assert "&lt;img src=x onerror=" in page and "&amp;amp; more" in page
    assert "Task/&lt;b id=&quot;evil&quot;&gt;7&lt;/b&gt;" in page
    assert HOSTILE_PROGRAM not in page and HOSTILE_MESSAGE.splitlines()[0] not in page
    assert HOSTILE_TASK not in page


def test_self_contained(page: str) -> None:
    for tag, attrs in parse(page).tags:
        for name in ("src", "href", "xlink:href", "action", "data"):
            value = attrs.get(name)
            assert value is None or value.startswith("#"), (tag, name, value)
    assert "Content-Security-Policy" in page
    ids = [attrs["id"] for _, attrs in parse(page).tags if attrs.get("id")]
    assert len(ids) == len(set(ids)), "two inline figures share an element id"
    assert "@import" not in page
    assert set(re.findall(r"url\((.)", page)) == {"#"}  # only the SVG's own clip paths


def test_sections_and_figures(page: str) -> None:
    for heading in ("Summary", "Comparison", "At equal cost", "Curves", "Tasks", "Programs"):
        assert f"<h2>{heading}" in page or f"<h3>{heading}" in page, heading
    assert page.count("<svg") == 2
    assert "selected@1" in page
    assert "0.050 [-0.100, 0.200]" in page  # pass@1 - baseline
    assert "k=20, n/a" in page and "k=1, 0.470" in page
    assert "not reached" in page
    assert "gpu_hour_usd" in page
    assert NO_FIGURES not in page


def test_per_task_table_highlights_tasks_one_model_solved(page: str) -> None:
    rows = re.findall(r'<tr class="only-one">(.*?)</tr>', page)
    # HumanEval/1 only large solved; HumanEval/2 only small.
    assert len(rows) == 2
    assert "HumanEval/1" in rows[0] and ">large<" in rows[0]
    assert "HumanEval/2" in rows[1] and ">small<" in rows[1]
    assert ONLY_ONE in page
    assert '<td data-v="0.9">9/10</td>' in page


def test_programs_with_outcome_extraction_and_failure(page: str) -> None:
    assert page.count("<details") == 6
    assert "extraction: fence" in page
    assert '<span class="outcome-failed">failed</span> &times; 5' in page
    assert "<pre>assert 1 == 2</pre>" in page


def test_without_the_additions_their_parts_are_left_out() -> None:
    page = render_html(report(extras=False))
    assert "Comparison" not in page and "selected@1" not in page
    assert "Cost assumptions" not in page
    assert "cost unknown (no price): small, large" in page
    assert NO_COST in page
    assert page.count("<svg") == 1  # the cost figure would hold nothing but that note


def test_one_model_has_no_highlight() -> None:
    page = render_html(report(("small",)))
    assert 'class="only-one"' not in page
    assert "solved only by" not in page
    assert page.count("<details") == 6


def test_incomplete_run_and_missing_programs_are_said() -> None:
    document: dict[str, Any] = report(extras=False)
    document["complete"] = False
    for task in document["tasks"]:
        del task["programs"]
    page = render_html(document, figures=False)
    assert INCOMPLETE in page
    assert "does not list programs" in page
    assert "<svg" not in page


def test_without_matplotlib_the_page_says_how_to_get_curves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pytest_passk.html_report.matplotlib_available", lambda: False)
    page = render_html(report())
    assert "pip install &#x27;pytest-passk[plot]&#x27;" in page
    assert "<svg" not in page


def test_check_mode_says_so_instead_of_a_summary_and_curves() -> None:
    document = report(("small",), extras=False)
    document["mode"] = "check"
    page = render_html(document)
    assert html.escape(CHECK_MODE) in page
    assert "<svg" not in page and "pass@1 [95% CI]" not in page
    assert page.count("<details") == 6


def _summary_row(page: str, model: str) -> list[str]:
    summary = page.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    for row in re.findall(r"<tr>(.*?)</tr>", summary):
        cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", row)]
        if cells and cells[0] == model:
            return cells
    raise AssertionError(f"no summary row for {model}")


def test_cost_per_solved_task_with_no_task_solved_is_not_an_unknown_cost() -> None:
    """The JSON's null means "no task solved" here: the page must not call a known cost
    unknown (the cost column beside it shows the dollars).
    """
    document = report(extras=False)
    for task in document["tasks"]:
        if task["model"] == "large":
            task["c"] = 0
    document["models"]["large"] |= {"cost_usd": 0.03, "cost_per_solved_task_usd": None}
    document["models"]["small"] |= {"cost_usd": 0.06, "cost_per_solved_task_usd": 0.02}
    page = render_html(document)
    large, small = _summary_row(page, "large"), _summary_row(page, "small")
    assert large[-3:] == ["$0.03", "$0.001", NONE_SOLVED]
    assert small[-1] == "$0.02"
    document["models"]["large"]["cost_usd"] = None
    assert _summary_row(render_html(document), "large")[-3:] == ["unknown"] * 3


def test_a_free_model_is_said_free_in_the_page() -> None:
    pytest.importorskip("matplotlib")
    document = report()
    for label in ("small", "large"):
        document["models"][label] |= {"cost_usd": 0.0, "cost_per_sample_usd": 0.0}
    page = render_html(document)
    assert html.escape(COST_FREE.format(models="small, large")) in page
    assert NO_COST_ABOVE_ZERO in page and NO_COST not in page
    assert "cost unknown" not in page


def test_a_tiny_cost_is_never_shown_as_zero() -> None:
    """A second of CPU engine time costs about $0.00000139: six decimals rounded it to "$0",
    the page's word for free.
    """
    document = report(extras=False)
    document["models"]["large"] |= {"cost_usd": 0.0000417, "cost_per_sample_usd": 1.39e-7}
    cells = _summary_row(render_html(document), "large")
    assert cells[-3:-1] == ["$0.000042", "$0.00000014"]


def test_one_models_reach_of_the_target_is_on_the_page() -> None:
    """One model and --passk-target: no comparison, but the model's reach on its own tasks."""
    document = report(("small",))
    document["models"]["small"]["target"] = {
        "pass_at_k": 0.5,
        "k": 3,
        "cost_per_task_usd": 0.0003,
        "pass_at_k_at_k": 0.52,
        "n": 10,
    }
    page = render_html(document)
    assert "<h3>To reach pass@k = 0.50 (each model on its own tasks)</h3>" in page
    assert "<td>small</td><td>3</td><td>$0.0003</td>" in page
    # With a comparison's own target table the page shows that one only.
    both = report()
    both["models"]["small"]["target"] = document["models"]["small"]["target"]
    assert "own tasks" not in render_html(both)
