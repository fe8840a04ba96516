"""The figures of a report: pass@k against k, and pass@k against cost per task.

Drawn from a ``pytest-passk/report/v1`` document through matplotlib (the ``plot`` extra),
imported only here and only when a figure is drawn. Figures are made with matplotlib's
object-oriented ``Figure`` and its Agg canvas, never through pyplot: no window ever opens and the
process's global backend (another plugin's, or the user's tests') is left alone.
"""

from __future__ import annotations

import importlib.util
import io
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pytest_passk.curves import Curve, pass_at_k_curve
from pytest_passk.errors import PassKError
from pytest_passk.report_data import cost_per_sample, model_labels, task_counts

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "COST_FIGURE",
    "COST_FREE",
    "COST_UNKNOWN",
    "NO_COST",
    "NO_COST_ABOVE_ZERO",
    "PLOT_EXTRA",
    "PlotUnavailable",
    "RenderedFigure",
    "cost_notes",
    "matplotlib_available",
    "model_curves",
    "render_figures",
    "require_matplotlib",
    "write_plots",
]

PLOT_EXTRA = (
    "{option} draws its figures with matplotlib, which is not installed: "
    "pip install 'pytest-passk[plot]'"
)
#: Said in the cost figure (and the HTML) for models without a known cost.
COST_UNKNOWN = "cost unknown (no price): {models}"
#: Said for models whose samples cost 0 (a price or an hourly rate of 0): known, but a log axis
#: has no place for them.
COST_FREE = "cost 0 (free), so not on the log cost axis: {models}"
NO_COST = "No model has a known cost per sample: no price for these models, so no cost axis."
NO_COST_ABOVE_ZERO = "No model costs more than 0 per sample: nothing to draw on a log cost axis."
COST_FIGURE = "pass_at_k_cost"
FIGURE_NAMES = ("pass_at_k", COST_FIGURE)


class PlotUnavailable(PassKError):
    """matplotlib (the ``plot`` extra) is not installed."""


def matplotlib_available() -> bool:
    """Whether matplotlib can be imported (checked without importing it)."""
    return importlib.util.find_spec("matplotlib") is not None


def require_matplotlib(option: str = "--passk-plot") -> None:
    """Raise :class:`PlotUnavailable` naming ``option`` and the extra when matplotlib is missing."""
    if not matplotlib_available():
        raise PlotUnavailable(PLOT_EXTRA.format(option=option))


@dataclass(frozen=True, slots=True)
class RenderedFigure:
    """One figure as SVG text (and PNG bytes when asked for)."""

    name: str
    title: str
    svg: str
    png: bytes | None


def model_curves(document: dict[str, Any]) -> list[tuple[Curve, float | None]]:
    """Each model's curve with its cost per sample (``None`` when unknown)."""
    reported = [int(k) for k in document.get("k", [])]
    return [
        (
            pass_at_k_curve(label, task_counts(document, label), reported),
            cost_per_sample(document, label),
        )
        for label in model_labels(document)
    ]


def render_figures(document: dict[str, Any], *, png: bool = True) -> list[RenderedFigure]:
    """Both figures of ``document``; the same document always gives the same SVG."""
    require_matplotlib()
    curves = model_curves(document)
    reported = [int(k) for k in document.get("k", [])]
    rendered = []
    for name, title, draw in (
        (FIGURE_NAMES[0], "pass@k by samples per task", _draw_by_k),
        (FIGURE_NAMES[1], "pass@k by cost per task", _draw_by_cost),
    ):
        # Each figure's own salt: two figures inline in one page never share an element id.
        with _style(name):
            figure = _new_figure()
            draw(figure, curves, reported)
            image = _png(figure) if png else None
            rendered.append(RenderedFigure(name, title, _svg(figure), image))
    return rendered


def write_plots(document: dict[str, Any], directory: Path) -> list[Path]:
    """Write ``pass_at_k.{png,svg}`` and ``pass_at_k_cost.{png,svg}`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for figure in render_figures(document, png=True):
        svg_path = directory / f"{figure.name}.svg"
        png_path = directory / f"{figure.name}.png"
        svg_path.write_text(figure.svg, encoding="utf-8")
        png_path.write_bytes(figure.png or b"")
        written += [png_path, svg_path]
    return written


@contextmanager
def _style(salt: str) -> Iterator[None]:
    import matplotlib

    # Paths instead of font references (renders the same without the fonts); a fixed salt
    # for element ids, so the same report gives byte-identical SVG.
    with matplotlib.rc_context(
        {"svg.fonttype": "path", "svg.hashsalt": f"pytest-passk-{salt}", "font.size": 9}
    ):
        yield


def _new_figure() -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _svg(figure: Figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    return buffer.getvalue()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _draw_by_k(
    figure: Figure, curves: Sequence[tuple[Curve, float | None]], reported: Sequence[int]
) -> None:
    axes = figure.add_subplot()
    for curve, _ in curves:
        if not curve.ks:
            continue
        _plot(axes, curve, list(curve.ks), reported)
    axes.set_xscale("log")
    axes.set_xlabel("k (samples per task, log scale)")
    axes.set_ylabel("pass@k")
    axes.set_ylim(0.0, 1.02)
    axes.set_title("pass@k with 95% bootstrap band over tasks")
    axes.grid(True, which="both", alpha=0.3)
    if any(curve.ks for curve, _ in curves):
        axes.legend(loc="lower right")
    else:
        axes.text(0.5, 0.5, "no task has samples", ha="center", transform=axes.transAxes)


def _draw_by_cost(
    figure: Figure, curves: Sequence[tuple[Curve, float | None]], reported: Sequence[int]
) -> None:
    axes = figure.add_subplot()
    priced = [(c, cost) for c, cost in curves if cost is not None and cost > 0 and c.ks]
    for curve, cost in priced:
        _plot(axes, curve, [k * cost for k in curve.ks], reported)
    axes.set_title("pass@k by cost per task (k samples x cost per sample)")
    headline, notes = cost_notes([(c.model, cost) for c, cost in curves])
    if not priced:
        axes.set_axis_off()
        axes.text(0.5, 0.55, headline, ha="center", wrap=True, transform=axes.transAxes)
    else:
        axes.set_xscale("log")
        axes.set_xlabel("cost per task in USD (log scale)")
        axes.set_ylabel("pass@k")
        axes.set_ylim(0.0, 1.02)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(loc="lower right")
    if notes:
        note = _literal("; ".join(notes))
        axes.text(0.5, 0.02, note, ha="center", fontsize=8, transform=axes.transAxes, wrap=True)


def cost_notes(costs: Sequence[tuple[str, float | None]]) -> tuple[str, list[str]]:
    """What the cost figure says where it has no curve: its headline when no model has a cost
    above 0, and a note for the models without a price and one for the free ones.
    """
    unknown = [model for model, cost in costs if cost is None]
    free = [model for model, cost in costs if cost is not None and cost <= 0]
    headline = NO_COST if len(unknown) == len(costs) else NO_COST_ABOVE_ZERO
    notes = [COST_UNKNOWN.format(models=", ".join(unknown))] if unknown else []
    notes += [COST_FREE.format(models=", ".join(free))] if free else []
    return headline, notes


def _literal(text: str) -> str:
    r"""``text`` as matplotlib draws it literally: it parses ``$...$`` as mathtext (a model label
    such as ``m$\bad{$`` would raise), and shows an escaped ``\$`` as ``$``.
    """
    return text.replace("$", r"\$")


def _plot(axes: Any, curve: Curve, xs: Sequence[float], reported: Sequence[int]) -> None:
    (line,) = axes.plot(xs, curve.values, label=_literal(curve.model), linewidth=1.5)
    axes.fill_between(xs, curve.low, curve.high, alpha=0.2, color=line.get_color(), linewidth=0)
    marks = [i for i, k in enumerate(curve.ks) if k in set(reported)]
    values = [curve.values[i] for i in marks]
    if marks and all(not math.isnan(v) for v in values):
        axes.plot([xs[i] for i in marks], values, "o", color=line.get_color(), markersize=4)
