"""``--passk-plot`` and ``--passk-html``: read (command line over ini) and checked when pytest is
configured, so a run never finds out at its end that it cannot write its figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.plots import PlotUnavailable, require_matplotlib
from pytest_passk.render_paths import OUTPUT_FILE, output_file_problem, plot_dir_problem

__all__ = ["HTML_PATH", "PLOT_DIR", "RENDER_OPTIONS", "render_paths"]

PLOT_DIR = "{source}={value!r}: {problem}; give a directory that exists or can be created"
HTML_PATH = OUTPUT_FILE

#: ``(flags, ini key, help, metavar)`` of each option, registered with the others.
RENDER_OPTIONS = (
    (
        ("--passk-plot",),
        "passk_plot",
        "Write the pass@k curves (by k, and by cost per task) here as PNG and SVG "
        "(needs the plot extra: pip install 'pytest-passk[plot]')",
        "DIR",
    ),
    (
        ("--passk-html",),
        "passk_html",
        "Write a self-contained HTML report here (tables, curves, every task's programs)",
        "PATH",
    ),
)


def render_paths(config: pytest.Config) -> tuple[Path | None, Path | None]:
    """The checked ``--passk-plot`` directory and ``--passk-html`` file (``None`` when not
    asked for).

    Raises:
        pytest.UsageError: naming the option, the problem and the fix.

    """
    return _read(config, "passk_plot"), _read(config, "passk_html")


def _read(config: pytest.Config, dest: str) -> Path | None:
    raw = config.getoption(dest)
    source = "--" + dest.replace("_", "-")
    base = Path(config.invocation_params.dir)
    if raw is None:
        # An ini value is relative to the ini file, as every other path option is.
        raw, source = config.getini(dest), f"ini {dest}"
        if config.inipath is not None:
            base = Path(config.inipath).parent
    value = str(raw or "").strip()
    if not value:
        return None
    path = Path(value).expanduser()
    path = path if path.is_absolute() else base / path
    if dest == "passk_plot":
        try:
            require_matplotlib(source)
        except PlotUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        problem, template = plot_dir_problem(path), PLOT_DIR
    else:
        problem, template = output_file_problem(path), HTML_PATH
    if problem:
        raise pytest.UsageError(template.format(source=source, value=value, problem=problem))
    return path
