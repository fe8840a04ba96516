"""The package's layers, checked from its source: no import cycle (function-level imports
included), only the pytest shell imports pytest, and the code that runs inside the sandbox imports
nothing but the standard library and the sandbox's own protocol and codec.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_passk

PACKAGE = Path(pytest_passk.__file__).parent
#: The pytest shell: the only modules that may import pytest.
SHELL = {
    "pytest_passk.plugin",
    "pytest_passk.hookspecs",
    "pytest_passk.settings",
    "pytest_passk.compare_settings",
    "pytest_passk.collect",
    "pytest_passk.session",
    "pytest_passk.outputs",
    "pytest_passk.render_options",
    "pytest_passk.pytest_html_hooks",
    "pytest_passk.ini_types",
}
#: What code under ``sandbox/inside/`` may import from the package.
INSIDE_MAY_IMPORT = {"pytest_passk.sandbox.protocol", "pytest_passk.sandbox.plain"}
MAX_LINES = 500


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def runtime_imports(path: Path) -> Iterator[str]:
    """Absolute names of the modules ``path`` imports when it runs (``if TYPE_CHECKING:`` blocks
    never run, so they are left out); ``from package import name`` counts as importing
    ``package.name`` when that is a module.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"


GRAPH = {
    name: sorted({target for target in runtime_imports(path) if target in MODULES} - {name})
    for name, path in MODULES.items()
}


def find_cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target in GRAPH[node]:
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in GRAPH:
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_walk_sees_the_package() -> None:
    assert (
        "pytest_passk.session" in MODULES
        and "pytest_passk.collect" in GRAPH["pytest_passk.session"]
    )
    assert "pytest_passk.sampling" in GRAPH["pytest_passk.session"]


def test_no_import_cycle() -> None:
    assert find_cycle() is None, " -> ".join(find_cycle() or [])


def test_the_cycle_finder_finds_cycles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        GRAPH, "pytest_passk.estimate", [*GRAPH["pytest_passk.estimate"], "pytest_passk.session"]
    )
    cycle = find_cycle()
    assert cycle is not None and "pytest_passk.session" in cycle


@pytest.mark.parametrize("name", sorted(set(MODULES) - SHELL))
def test_only_the_shell_imports_pytest(name: str) -> None:
    imported = {target.split(".")[0] for target in runtime_imports(MODULES[name])}
    assert not imported & {"pytest", "_pytest", "pluggy", "xdist"}, f"{name} imports pytest"


INSIDE = sorted(name for name in MODULES if name.startswith("pytest_passk.sandbox.inside"))


@pytest.mark.parametrize("name", INSIDE or ["(no sandbox/inside package)"])
def test_sandbox_inside_imports_only_the_stdlib_and_the_protocol(name: str) -> None:
    if name not in MODULES:
        pytest.skip("the sandbox has no inside/ package")
    for target in runtime_imports(MODULES[name]):
        top = target.split(".")[0]
        if top == "pytest_passk":
            allowed = INSIDE_MAY_IMPORT | set(INSIDE) | {"pytest_passk", "pytest_passk.sandbox"}
            assert target in allowed, f"{name} imports {target}"
        else:
            assert top in sys.stdlib_module_names or top == "__future__", f"{name} imports {top}"


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_is_over_the_size_limit(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{name} has {lines} lines (limit {MAX_LINES}): split it"
