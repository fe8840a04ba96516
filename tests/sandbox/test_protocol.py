"""The wire contract: one place for what crosses, and what runs inside imports nothing else."""

from __future__ import annotations

import ast
import marshal
import sys
from pathlib import Path

from pytest_passk.results import Outcome
from pytest_passk.sandbox import inside, protocol
from pytest_passk.sandbox.protocol import LAYERS, OUTCOMES, Layers
from pytest_passk.sandbox.slot import SANDBOX_DIR, worker_code

#: What a module of the worker may import relatively (the codec, the contract, each other).
WORKER_LOCAL = {"protocol", "plain"}


def _worker_sources() -> dict[str, Path]:
    return {
        name: SANDBOX_DIR.joinpath(*name.split(".")).with_suffix(".py") for name in inside.MODULES
    }


def test_outcomes_are_the_result_outcomes() -> None:
    assert set(OUTCOMES) == {outcome.value for outcome in Outcome}


def test_layers_are_the_keys_of_a_hello() -> None:
    assert set(LAYERS) == set(Layers.__annotations__)
    assert set(protocol.no_layers()) == set(LAYERS)


def test_every_inside_module_is_sent_to_the_worker() -> None:
    on_disk = {f"inside.{path.stem}" for path in (SANDBOX_DIR / "inside").glob("*.py")}
    assert on_disk - {"inside.__init__"} == {m for m in inside.MODULES if m.startswith("inside.")}


def test_the_worker_imports_only_the_standard_library_and_the_contract() -> None:
    for name, path in _worker_sources().items():
        package = name.rpartition(".")[0].split(".") if "." in name else []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    assert top in sys.stdlib_module_names, f"{path}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                top = (node.module or "").split(".")[0]
                assert top in sys.stdlib_module_names or top == "__future__", (
                    f"{path}: from {node.module} import ..."
                )
            elif isinstance(node, ast.ImportFrom):
                # Relative: resolved against the sandbox package, never above it.
                base = package[: len(package) - (node.level - 1)]
                assert node.level - 1 <= len(package), f"{path}: import above the sandbox"
                target = ".".join([*base, *(node.module or "").split(".")]).strip(".")
                names = [target] if node.module else [a.name for a in node.names]
                for each in names:
                    assert each in WORKER_LOCAL or each in inside.MODULES, f"{path}: {each}"


def test_each_module_comes_after_those_it_imports() -> None:
    seen: set[str] = set()
    for name, path in _worker_sources().items():
        package = name.rpartition(".")[0].split(".") if "." in name else []
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - (node.level - 1)]
                if node.module:
                    target = ".".join([*base, *node.module.split(".")])
                    assert target in seen, f"{name} imports {target} before it is loaded"
                else:
                    for alias in node.names:
                        assert ".".join([*base, alias.name]) in seen, f"{name}: {alias.name}"
        seen.add(name)


def test_the_worker_code_holds_every_module_in_order() -> None:
    # As BOOT reads it: a length line, then that many bytes of a marshalled code object.
    data, filenames = worker_code(), []
    while data:
        size, _, data = data.partition(b"\n")
        code, data = marshal.loads(data[: int(size)]), data[int(size) :]
        filenames.append(code.co_filename)
    assert filenames == [str(path) for path in _worker_sources().values()]
