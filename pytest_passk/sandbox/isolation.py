"""Isolation levels: what the sandbox guarantees, parsed once and checked against what a host
achieves (the layers each worker reports in its :class:`~pytest_passk.sandbox.protocol.Hello`).
"""

from __future__ import annotations

import enum

from pytest_passk.errors import PassKError
from pytest_passk.sandbox.protocol import Layers

__all__ = [
    "ISOLATION_UNAVAILABLE",
    "LEVEL_CHOICES",
    "UNKNOWN_LEVEL",
    "IsolationLevel",
    "IsolationUnavailable",
    "UnknownIsolationLevel",
    "describe_layers",
    "level_of",
    "unavailable_message",
]

#: The values ``--passk-isolation`` takes (``auto``: the strongest the host offers).
LEVEL_CHOICES = ("auto", "process", "namespaces", "strict")
#: ``problem|fix``: the settings reader words it as a usage error of the option it parses.
UNKNOWN_LEVEL = "unknown isolation level|choose one of " + ", ".join(LEVEL_CHOICES)
ISOLATION_UNAVAILABLE = (
    "--passk-isolation={required}: this host provides only '{achieved}' ({layers}); {fix}"
)
FIX_NAMESPACES = (
    "run as root, or enable unprivileged user namespaces "
    "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), "
    "or ask for a lower level (process)"
)
FIX_STRICT = "run as root (strict drops each candidate to uid nobody), or ask for 'namespaces'"
LAYER_NAMES = {
    "netns": "no network",
    "pidns": "PID namespace",
    "mountns": "mount namespace",
    "rofs": "read-only root, private /tmp",
    "nobody": "uid nobody",
    "userns": "user namespace",
}


class UnknownIsolationLevel(PassKError, ValueError):
    """A level that is none of :data:`LEVEL_CHOICES` (its text is :data:`UNKNOWN_LEVEL`)."""


class IsolationUnavailable(PassKError):
    """The host cannot provide the isolation level the user required."""


class IsolationLevel(enum.IntEnum):
    """What the sandbox guarantees; each level includes the ones below it."""

    PROCESS = 1  # own session, rlimits, scrubbed environment, temp dir, verdict from the judge
    NAMESPACES = 2  # + no network, PID namespace (every descendant killed), private mounts
    STRICT = 3  # + read-only root, private /tmp, run's files hidden, candidate as uid nobody

    @property
    def label(self) -> str:
        """Lower-case name used on the command line and in reports."""
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> IsolationLevel | None:
        """The level ``text`` names; ``auto`` gives ``None`` (the strongest available).

        Raises:
            UnknownIsolationLevel: ``text`` is none of :data:`LEVEL_CHOICES`.

        """
        if text == "auto":
            return None
        if text not in LEVEL_CHOICES:
            raise UnknownIsolationLevel(UNKNOWN_LEVEL)
        return cls[text.upper()]


def level_of(layers: Layers) -> IsolationLevel:
    """The level a set of achieved layers amounts to."""
    if layers.get("netns") and layers.get("pidns") and layers.get("mountns"):
        if layers.get("rofs") and layers.get("nobody"):
            return IsolationLevel.STRICT
        return IsolationLevel.NAMESPACES
    return IsolationLevel.PROCESS


def describe_layers(layers: Layers) -> str:
    """The layers in force, in words."""
    names = [text for key, text in LAYER_NAMES.items() if layers.get(key)]
    return ", ".join(["rlimits", "scrubbed env", *names])


def unavailable_message(required: IsolationLevel, achieved: IsolationLevel, layers: Layers) -> str:
    """Why the host cannot provide ``required``, and how to fix it (one line)."""
    fix = FIX_STRICT if required is IsolationLevel.STRICT else FIX_NAMESPACES
    return ISOLATION_UNAVAILABLE.format(
        required=required.label, achieved=achieved.label, layers=describe_layers(layers), fix=fix
    )
