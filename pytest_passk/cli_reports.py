"""``pytest-passk report`` and ``pytest-passk compare``: saved JSON reports, rendered again.

::

    pytest-passk report  REPORT.json [--html PATH] [--plot DIR]    summary; HTML; curves
    pytest-passk compare A.json B.json                             paired pass@k difference

Bad input (a missing file, a file that is not a report, another schema, a malformed
``pass_at_k`` or ``ci95``, two reports without a model or task in common) is one line on
standard error and exit status 2.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, TextIO

from pytest_passk.compare_runs import compare_reports, comparison_lines
from pytest_passk.comparison import TargetReach
from pytest_passk.comparison_report import target_line
from pytest_passk.errors import PassKError
from pytest_passk.render_paths import output_file_problem, plot_dir_problem
from pytest_passk.report_data import load_report, model_labels, target_cells

__all__ = ["BAD_INPUT_STATUS", "HTML_BAD", "PLOT_BAD", "add_commands", "run_command"]

#: Exit status for input the commands cannot use (argparse's own status for a bad command line).
BAD_INPUT_STATUS = 2
HTML_BAD = "--html {path}: {problem}; give a file whose directory exists or can be created"
PLOT_BAD = "--plot {path}: {problem}; give a directory that exists or can be created"
WROTE = "pytest-passk: wrote {path}"


class CommandInputError(PassKError):
    """The command line names something the command cannot use."""


def add_commands(commands: Any) -> None:
    """Add ``report`` and ``compare`` to the console script's subcommands."""
    report = commands.add_parser(
        "report", help="Render a saved JSON report: summary, --html page, --plot curves"
    )
    report.add_argument(
        "report", metavar="REPORT.json", help="A --passk-report file (pytest-passk/report/v1)"
    )
    report.add_argument("--html", metavar="PATH", help="Write the self-contained HTML report")
    report.add_argument(
        "--plot", metavar="DIR", help="Write the curves here (PNG and SVG; the plot extra)"
    )

    report.set_defaults(render=_report)
    compare = commands.add_parser(
        "compare", help="Paired comparison of two runs' pass@k on the same tasks"
    )
    compare.add_argument("first", metavar="A.json", help="The first run's report")
    compare.add_argument("second", metavar="B.json", help="The second run's report")
    compare.set_defaults(render=_compare)


def run_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    """Run ``report`` or ``compare``; bad input is one line on ``err`` and status 2."""
    try:
        result: int = args.render(args, out, err)
    except PassKError as exc:
        print(f"pytest-passk: error: {exc}", file=err)
        return BAD_INPUT_STATUS
    return result


def _report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    html_path = Path(args.html) if args.html else None
    plot_dir = Path(args.plot) if args.plot else None
    problem = output_file_problem(html_path) if html_path is not None else None
    if problem:
        raise CommandInputError(HTML_BAD.format(path=html_path, problem=problem))
    if plot_dir is not None:
        from pytest_passk.plots import require_matplotlib

        require_matplotlib("--plot")
        problem = plot_dir_problem(plot_dir)
        if problem:
            raise CommandInputError(PLOT_BAD.format(path=plot_dir, problem=problem))
    document = load_report(Path(args.report))
    for line in summary_lines(document):
        print(line, file=out)
    if html_path is not None:
        from pytest_passk.html_report import render_html

        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_html(document), encoding="utf-8")
        print(WROTE.format(path=html_path), file=err)
    if plot_dir is not None:
        from pytest_passk.plots import write_plots

        for path in write_plots(document, plot_dir):
            print(WROTE.format(path=path), file=err)
    return 0


def _compare(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    first = load_report(Path(args.first))
    second = load_report(Path(args.second))
    compared = compare_reports(first, second, (args.first, args.second))
    for line in comparison_lines(compared, args.first, args.second):
        print(line, file=out)
    return 0


def summary_lines(document: dict[str, Any]) -> list[str]:
    """A saved report's headline: pass@k with its interval per model."""
    ks = [str(k) for k in document.get("k", [])]
    lines = [f"{document.get('mode', 'sampling')} run, created {document.get('created', '?')}"]
    if document.get("complete") is False:
        lines.append("incomplete: the run was stopped early")
    for label in model_labels(document):
        entry = document["models"].get(label, {})
        parts = []
        for k in ks:
            value = entry.get("pass_at_k", {}).get(k)
            bounds = entry.get("ci95", {}).get(k) or [None, None]
            if not (isinstance(value, int | float) and math.isfinite(value)):
                parts.append(f"pass@{k} n/a")
            elif all(isinstance(b, int | float) for b in bounds):
                parts.append(f"pass@{k} {value:.3f} [{bounds[0]:.3f}, {bounds[1]:.3f}]")
            else:
                parts.append(f"pass@{k} {value:.3f}")
        tasks = entry.get("tasks", sum(1 for t in document["tasks"] if t["model"] == label))
        lines.append(f"{label}: {tasks} tasks; " + "; ".join(parts))
    target = target_summary(document)
    if target is not None:
        lines.append(target)
    return lines


def target_summary(document: dict[str, Any]) -> str | None:
    """The run's ``to reach pass@k >= P`` line (``--passk-target``), as its terminal showed it:
    the comparison's reach on shared tasks, else each model's on its own tasks. ``None`` for a
    run without a target; a hand-edited cell that is not in the shape a run writes is left out.
    """
    found = target_cells(document)
    if found is None:
        return None
    target, cells, _ = found
    if not isinstance(target, int | float) or isinstance(target, bool):
        return None
    reaches = {label: _reach(cell) for label, cell in cells.items()}
    kept = {label: reach for label, reach in reaches.items() if reach is not None}
    return target_line(target, kept) if kept else None


def _reach(cell: object) -> TargetReach | None:
    if not isinstance(cell, dict):
        return None
    k, cost, value, n = (cell.get(f) for f in ("k", "cost_per_task_usd", "pass_at_k_at_k", "n"))
    counts = all(v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in (k, n))
    numbers = all(v is None or isinstance(v, int | float) for v in (cost, value))
    if not (counts and numbers and isinstance(n, int)):
        return None
    return TargetReach(k, cost, value, n)
