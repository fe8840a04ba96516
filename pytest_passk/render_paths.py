"""Where the outputs go: checks of a ``--passk-plot`` directory and of a report file
(``--passk-html``, ``--passk-report``, ``--passk-samples-out``), made before a run starts (and by
``pytest-passk report``), each a problem in words or ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["OUTPUT_FILE", "output_file_problem", "plot_dir_problem"]

#: A report file's path that cannot be written, as a usage error.
OUTPUT_FILE = "{source}={value!r}: {problem}; give a file whose directory exists or can be created"


def plot_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be made the directory of the figures, or ``None`` when it can."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK):
        return f"{existing} is not writable"
    return None


def output_file_problem(path: Path) -> str | None:
    """Why a report file (``--passk-report``, ``--passk-samples-out``, ``--passk-html``) cannot
    be written at ``path``, its missing directories made first; ``None`` when it can.
    """
    if path.is_dir():
        return "is a directory"
    return plot_dir_problem(path.parent)
