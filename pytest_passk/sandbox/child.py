"""The harness that runs inside each sandbox process (stdlib only; run as ``python -I -S -B``).

It reads one job as JSON from stdin, lowers its own resource limits, runs the candidate and the
task's test, and writes one JSON verdict line to the file descriptor named in the job. Anything the
candidate prints goes to capped in-memory sinks; the parent decides from the verdict channel only.
"""

from __future__ import annotations

import io
import json
import os
import resource
import sys
import traceback
import types
from typing import Any

DETAIL_LIMIT = 4000
MESSAGE_LIMIT = 300
OUTPUT_LIMIT = 2000
CANDIDATE_FILE = "<candidate>"
TEST_FILE = "<test>"


class CappedSink(io.TextIOBase):
    """A text stream that keeps only the last ``limit`` characters written to it."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._text = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._text = (self._text + str(text))[-self._limit :]
        return len(text)

    def getvalue(self) -> str:
        return self._text


def lower_limits(job: dict[str, Any]) -> None:
    """Resource limits sized for this process (never inherited from a large parent)."""
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm") as statm:
        current = int(statm.read().split()[0]) * page
    limits = {
        resource.RLIMIT_AS: current + int(job["memory_bytes"]),
        resource.RLIMIT_CPU: int(job["cpu_seconds"]),
        resource.RLIMIT_FSIZE: int(job["file_bytes"]),
        resource.RLIMIT_NOFILE: 256,
        resource.RLIMIT_CORE: 0,
    }
    for which, value in limits.items():
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value if which != resource.RLIMIT_CPU else value + 1))


def first_line(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    return line[:MESSAGE_LIMIT]


def failing_test_line(exc: BaseException, sources: dict[str, str]) -> str:
    """The line of the test that raised, e.g. ``assert candidate(2) == 3``, if it can be found."""
    found = ""
    for frame, lineno in traceback.walk_tb(exc.__traceback__):
        filename = frame.f_code.co_filename
        if filename in sources:
            lines = sources[filename].splitlines()
            if 0 < lineno <= len(lines):
                found = lines[lineno - 1].strip()
    return found[:MESSAGE_LIMIT]


def verdict(
    outcome: str, message: str, exc: BaseException | None, output: CappedSink
) -> dict[str, str]:
    detail = ""
    if exc is not None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    captured = output.getvalue()
    if captured:
        detail += "\n--- captured output (tail) ---\n" + captured
    return {
        "outcome": outcome,
        "message": message[:MESSAGE_LIMIT],
        "detail": detail[-DETAIL_LIMIT:],
    }


def import_test_module(test: dict[str, Any]) -> types.ModuleType:
    """Import the test module as pytest did: same import path, ``.pth`` files (editable installs)
    processed, by name, or from its file when pytest's importlib mode gave it an unimportable name.
    """
    import importlib
    import importlib.util
    import site

    sys.path[:] = list(test["sys_path"])
    for entry in list(sys.path):
        if entry.endswith(("site-packages", "dist-packages")):
            site.addsitedir(entry)
    try:
        return importlib.import_module(test["module_name"])
    except ModuleNotFoundError as exc:
        if exc.name != test["module_name"].split(".")[0] and exc.name != test["module_name"]:
            raise
    spec = importlib.util.spec_from_file_location(test["module_name"], test["module_file"])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {test['module_file']}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[test["module_name"]] = module
    spec.loader.exec_module(module)
    return module


def judge(job: dict[str, Any], output: CappedSink) -> dict[str, str]:
    """Run the candidate and the test; map what happened to an outcome."""
    test = job["test"]
    sources = {CANDIDATE_FILE: job["program"]}
    namespace: dict[str, Any]
    test_module: types.ModuleType | None = None
    if test["kind"] == "function":
        # The test module is imported before any candidate code runs.
        try:
            test_module = import_test_module(test)
        except BaseException as exc:
            return verdict(
                "error", f"the test module failed to import: {first_line(exc)}", exc, output
            )
        module_file = getattr(test_module, "__file__", None)
        if module_file:
            try:
                with open(module_file, encoding="utf-8") as handle:
                    sources[module_file] = handle.read()
            except OSError:
                pass
    else:
        # Installed packages, without processing their .pth files (``-S`` skipped site).
        sys.path.extend(d for d in test.get("site_dirs", ()) if d not in sys.path)
    candidate_module = types.ModuleType("candidate")
    namespace = candidate_module.__dict__
    try:
        code = compile(job["program"], CANDIDATE_FILE, "exec")
    except (SyntaxError, ValueError) as exc:
        return verdict("error", first_line(exc), exc, output)
    try:
        exec(code, namespace)
    except BaseException as exc:
        return verdict(
            "error", f"the candidate raised while loading: {first_line(exc)}", exc, output
        )
    if test["kind"] == "check":
        sources[TEST_FILE] = test["source"]
        try:
            exec(compile(test["source"], TEST_FILE, "exec"), namespace)
        except BaseException as exc:
            return verdict(
                "error", f"the task's test failed to load: {first_line(exc)}", exc, output
            )
        test_function = namespace.get("check")
    else:
        assert test_module is not None
        test_function = test_module
        for part in test["qualname"].split("."):
            test_function = getattr(test_function, part, None)
    if not callable(test_function):
        return verdict("error", "the task's test function was not found", None, output)
    entry_point = job["entry_point"]
    if entry_point is None:
        candidate: Any = candidate_module
    else:
        candidate = namespace.get(entry_point)
        if not callable(candidate):
            return verdict("error", f"no function named {entry_point!r} was defined", None, output)
    try:
        test_function(candidate)
    except AssertionError as exc:
        line = failing_test_line(exc, sources)
        message = first_line(exc)
        if line and message == "AssertionError":
            message = f"AssertionError: {line}"
        return verdict("failed", message, exc, output)
    except BaseException as exc:
        return verdict("error", first_line(exc), exc, output)
    return verdict("passed", "", None, output)


def main() -> None:
    job = json.loads(sys.stdin.buffer.read())
    channel = int(job["channel"])
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    output = CappedSink(OUTPUT_LIMIT)
    sys.stdout = sys.stderr = output
    sys.stdin = io.StringIO()
    lower_limits(job)
    try:
        result = judge(job, output)
    except BaseException as exc:  # e.g. MemoryError while formatting
        result = {"outcome": "error", "message": first_line(exc), "detail": ""}
    os.write(channel, (json.dumps(result) + "\n").encode())
    # Skip atexit handlers, non-daemon threads and finalizers the candidate may have left.
    os._exit(0)


if __name__ == "__main__":
    main()
