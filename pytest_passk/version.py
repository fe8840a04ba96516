"""The installed package's version, for reports and messages."""

from __future__ import annotations

__all__ = ["package_version"]


def package_version() -> str:
    """pytest-passk's version from its metadata (``"unknown"`` when not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-passk")
    except PackageNotFoundError:
        return "unknown"
