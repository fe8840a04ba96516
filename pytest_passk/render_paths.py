"""Where the renderings go: checks of a ``--passk-plot`` directory and a ``--passk-html`` file,
made before a run starts (and by ``pytest-passk report``), each a problem in words or ``None``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["html_path_problem", "plot_dir_problem"]


def plot_dir_problem(path: Path) -> str | None:
    """Why ``path`` cannot be made the directory of the figures, or ``None`` when it can."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK):
        return f"{existing} is not writable"
    return None


def html_path_problem(path: Path) -> str | None:
    """Why the HTML report cannot be written at ``path``, or ``None`` when it can."""
    if path.is_dir():
        return "is a directory"
    if not path.parent.is_dir():
        return f"the directory {path.parent} does not exist"
    return None
