"""Compatibility names: the executor is now the warm pool of :mod:`pytest_passk.sandbox.pool`."""

from __future__ import annotations

from pytest_passk.sandbox.pool import Limits, real_python, site_dirs
from pytest_passk.sandbox.pool import PoolExecutor as ProcessExecutor

__all__ = ["Limits", "ProcessExecutor", "real_python", "site_dirs"]
