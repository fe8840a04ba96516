"""Everything that runs inside a sandbox worker, one module per process role (stdlib only).

:mod:`.zygote` (Z, the process the pool starts), :mod:`.judge` (the judge, in Z),
:mod:`.supervisor` (K), :mod:`.template` (T), :mod:`.candidate` (C), and what they share:
:mod:`.linux` (namespaces, mounts, CPU clocks) and :mod:`.text` (output and tracebacks). They
import only the standard library and, relatively, :mod:`pytest_passk.sandbox.protocol` and
:mod:`pytest_passk.sandbox.plain`, so that the worker can load them without the package: the pool
compiles them and the worker executes them in :data:`MODULES` order (see
:mod:`pytest_passk.sandbox.slot`).
"""

from __future__ import annotations

#: The worker's modules, relative to ``pytest_passk.sandbox``, each after those it imports.
MODULES = (
    "protocol",
    "plain",
    "inside.linux",
    "inside.text",
    "inside.candidate",
    "inside.template",
    "inside.supervisor",
    "inside.cases",
    "inside.handles",
    "inside.remote",
    "inside.differ",
    "inside.judge",
    "inside.zygote",
)
