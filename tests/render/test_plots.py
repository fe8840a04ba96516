"""The figures: both files of both figures, from a report with and without costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .reports import report

pytest.importorskip("matplotlib")

from pytest_passk.plots import (
    COST_FREE,
    NO_COST,
    NO_COST_ABOVE_ZERO,
    render_figures,
    write_plots,
)


def test_writes_png_and_svg_of_both_figures(tmp_path: Path) -> None:
    written = write_plots(report(), tmp_path / "plots")
    names = sorted(path.name for path in written)
    assert names == [
        "pass_at_k.png",
        "pass_at_k.svg",
        "pass_at_k_cost.png",
        "pass_at_k_cost.svg",
    ]
    for path in written:
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG") if path.suffix == ".png" else b"<svg" in data
        assert len(data) > 2000


def test_same_report_same_svg() -> None:
    first = render_figures(report(), png=False)
    second = render_figures(report(), png=False)
    assert [f.svg for f in first] == [f.svg for f in second]


def test_cost_figure_says_when_no_cost_is_known() -> None:
    without = render_figures(report(extras=False), png=False)[1]
    with_costs = render_figures(report(), png=False)[1]
    # Text is drawn as paths; the note leaves its glyphs, and the axis ticks are gone.
    assert without.svg != with_costs.svg
    assert "xtick" not in without.svg
    assert "xtick" in with_costs.svg
    # matplotlib keeps each text in a comment beside its glyphs.
    assert NO_COST[:40] in without.svg
    assert NO_COST[:40] not in with_costs.svg


def test_one_model() -> None:
    figures = render_figures(report(("small",)), png=False)
    assert len(figures) == 2


def _renamed(document: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    document["models"][new] = document["models"].pop(old)
    for task in document["tasks"]:
        if task["model"] == old:
            task["model"] = new
    return document


@pytest.mark.parametrize("label", ["m$\\bad{$", "cheap $1 & $2 model"])
def test_model_labels_are_text_never_mathtext(label: str) -> None:
    """A label with dollar signs is drawn as written: matplotlib would parse ``$...$`` as
    mathtext (and raise on one it cannot parse, losing every figure of the run).
    """
    document = _renamed(report(), "large", label)
    by_k, by_cost = render_figures(document, png=True)
    # matplotlib keeps each drawn text in a comment beside its glyphs.
    assert f"<!-- {label.replace('&', '&amp;')} -->" in by_k.svg
    document["models"][label].pop("cost_usd", None)
    document["models"][label].pop("cost_per_sample_usd", None)
    by_cost = render_figures(document, png=False)[1]
    assert label.replace("&", "&amp;") in by_cost.svg  # the "cost unknown" note names it


def test_a_free_model_is_not_called_unpriced() -> None:
    """A model whose samples cost 0 (an hourly rate or a price of 0) has a known cost: the
    figure says it is free and off the log axis, not "cost unknown (no price)".
    """
    document = report()
    document["models"]["large"] |= {"cost_usd": 0.0, "cost_per_sample_usd": 0.0}
    svg = render_figures(document, png=False)[1].svg
    assert COST_FREE.format(models="large") in svg
    assert "cost unknown" not in svg
    document["models"]["small"] |= {"cost_usd": 0.0, "cost_per_sample_usd": 0.0}
    svg = render_figures(document, png=False)[1].svg
    assert NO_COST_ABOVE_ZERO[:40] in svg and NO_COST[:40] not in svg
