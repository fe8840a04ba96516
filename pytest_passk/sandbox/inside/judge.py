"""The judge (trusted, in Z): runs the task's test against a stub candidate whose calls go to C.

The test never runs in the candidate's process: each call's arguments cross to C as plain data
(:class:`~..protocol.Call`) and its return value comes back as plain data
(:class:`~..protocol.Return`), so the verdict is decided here, from what the test itself
observed, and an always-equal object or a forged exit cannot pass. K's word on how the candidate
ended (:class:`~..protocol.End`) arrives on the same channel.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import mmap
import os
import pathlib
import shutil
import socket
import sys
import tempfile
import time
import traceback
import types
from typing import Any

from .. import plain
from ..protocol import (
    DETAIL_LIMIT,
    LOADED,
    MESSAGE_LIMIT,
    End,
    JobRequest,
    JudgeResult,
    OutcomeName,
)
from .cases import SANDBOX_FIXTURES, Case, CaseError, cases, fixtures_of
from .differ import run as run_differential
from .remote import CandidateGone, Remote, RemoteFunction
from .text import first_line, format_traceback

TEST_FILE = "<test>"
UNKNOWN_FIXTURE = (
    "the task's test asks for the fixture {name!r}, which the sandbox cannot provide: a task's "
    "test may take the candidate, its parametrized names and tmp_path"
)
LIMIT_PASSED = "a limit on what crosses between the candidate and the test was passed"
NOT_PLAIN_HINT = "(only plain data crosses from the candidate to the test; see docs/security.md)"


class RemoteModule(types.ModuleType):
    """Stands for the candidate's module namespace (tasks without an ``entry_point``)."""

    def __init__(self, remote: Remote, names: dict[str, Any]) -> None:
        super().__init__("candidate")
        for name, kind in names.items():
            value = _stub(remote, name, kind)
            if value is not None:
                setattr(self, name, value)


def _stub(remote: Remote, name: str, kind: dict[str, Any] | None) -> Any:
    if not isinstance(kind, dict):
        return None
    if "c" in kind:
        return RemoteFunction(remote, name)
    if "m" in kind:
        module_name = str(kind["m"]).split(".")[0]
        if module_name in sys.stdlib_module_names:
            try:
                return __import__(str(kind["m"]))
            except ImportError:
                return None
        return None
    try:
        return plain.decode(kind.get("v"))
    except (ValueError, TypeError, KeyError, plain.NotPlainData):
        return None


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


def verdict(outcome: OutcomeName, message: str, detail: str = "") -> JudgeResult:
    """A :class:`~..protocol.JudgeResult`, its message and detail capped."""
    return {"outcome": outcome, "message": message[:MESSAGE_LIMIT],
            "detail": detail[-DETAIL_LIMIT:]}  # fmt: skip


def _gone_verdict(ended: End, remote: Remote | None) -> JudgeResult:
    kind = ended.get("end")
    if kind == "timeout":
        result = verdict("timeout", "timed out")
        result["cpu"] = ended.get("cpu", 0.0)
        if ended.get("by") is not None:
            result["by"] = ended["by"]
        result["call"] = remote.calling if remote else ""
        return result
    if kind == "raised":
        return verdict("error", f"the candidate stopped the run: {ended.get('message', '')}")
    if kind == "lost":
        result = verdict("error", "the sandbox lost the candidate")
        result["harness"] = result["lost"] = True
        return result
    if kind == "garbled":
        reason = remote.tainted if remote and remote.tainted else "malformed data"
        return verdict("error", f"the candidate broke the protocol: {reason}")
    if kind == "limit" and remote is not None:
        return verdict("error", f"{LIMIT_PASSED}: {remote.tainted}")
    status = ended.get("status")
    how = f" (exit status {status})" if status is not None else ""
    return verdict("error", f"the candidate's process ended before the test finished{how}")


def _run_case(test_function: Any, candidate: Any, arguments: dict[str, Any], remote: Remote,
              sources: dict[str, str]) -> JudgeResult | None:  # fmt: skip
    """Run one case of the test: its verdict if it did not pass, else ``None``."""
    try:
        test_function(candidate, **arguments)
    except CandidateGone as gone:
        return _gone_verdict(gone.args[0], remote)
    except plain.NotPlainData as exc:
        # Not a wrong answer as such: a value the sandbox cannot hand to the test.
        return verdict("error", f"{exc} {NOT_PLAIN_HINT}")
    except AssertionError as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        line = failing_test_line(exc, sources)
        message = _assertion_message(exc)
        if line and message == "AssertionError":
            message = f"AssertionError: {line}"
        if remote.mismatch:
            message = f"{message} ({remote.mismatch})"
        return verdict("failed", message, format_traceback(exc))
    except BaseException as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        detail = remote.last_detail or format_traceback(exc)
        return verdict("error", first_line(exc), detail)
    if remote.ended is not None or remote.tainted:
        return _gone_verdict(remote.ended or {"end": "garbled"}, remote)
    failure = remote.callback_failure
    if failure is not None:  # the test's own callable failed, and the candidate swallowed it
        return verdict("failed", f"a callable of the test failed: {first_line(failure)}")
    return None


def _assertion_message(exc: AssertionError) -> str:
    """``AssertionError: assert 2 == 1 + where 2 = f(1)``: a rewritten assert's explanation (it
    spans lines) on one line.
    """
    try:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    except Exception:
        return first_line(exc)
    return f"AssertionError: {text}"[:MESSAGE_LIMIT] if text else "AssertionError"


def task_error(message: str, detail: str = "") -> JudgeResult:
    """The task itself cannot run (its test, its signature, its marks): not the candidate's fault
    nor the reference's.
    """
    result = verdict("error", message, detail)
    result["task"] = True
    return result


def judge(job: JobRequest, sock: socket.socket, test_function: Any,
          compiled: dict[str, types.CodeType], loaded: int,
          calls: mmap.mmap) -> JudgeResult:  # fmt: skip
    """Z: run the test against a stub candidate and decide the verdict from what it observed."""
    deadline = time.monotonic() + float(job["wall_limit"]) + 1.0
    remote = Remote(sock, deadline, calls, measure=bool(job.get("measure")))
    try:
        hello = remote.receive()
    except CandidateGone as gone:
        return _gone_verdict(gone.args[0], remote)
    with contextlib.suppress(OSError):
        os.write(loaded, LOADED)  # the supervisor starts the CPU budget now
    if "load_error" in hello:
        return verdict(
            "error", f"the candidate raised while loading: {hello['load_error']}",
            str(hello.get("detail", "")),
        )  # fmt: skip
    names = hello.get("names")
    if not isinstance(names, dict):
        return verdict("error", "the candidate broke the protocol: no names")
    test = job["test"]
    sources: dict[str, str] = {}
    entry_point = job["entry_point"]
    candidate: Any
    if entry_point is None:
        candidate = RemoteModule(remote, names)
    else:
        kind = names.get(entry_point)
        if not (isinstance(kind, dict) and "c" in kind):
            return verdict("error", f"no function named {entry_point!r} was defined")
        candidate = RemoteFunction(remote, entry_point)
    if test["kind"] == "check":
        sources[TEST_FILE] = test["source"]
        namespace: dict[str, Any] = {"__name__": "__test__", "__builtins__": builtins}
        for name, kind in names.items():
            value = _stub(remote, name, kind)
            if value is not None:
                namespace[name] = value
        try:
            code = compiled.get(test["source"])
            if code is None:
                if len(compiled) > 4096:
                    compiled.clear()
                source = test["source"]
                code = compiled[source] = compile(source, TEST_FILE, "exec", dont_inherit=True)
            exec(code, namespace)
        except Exception as exc:
            return task_error(f"the task's test failed to load: {first_line(exc)}")
        test_function = namespace.get("check")
    elif test_function is not None:
        module_file = getattr(sys.modules.get(test["module_name"]), "__file__", None)
        if module_file:
            try:
                with open(module_file, encoding="utf-8") as handle:
                    sources[module_file] = handle.read()
            except OSError:
                pass
    if not callable(test_function):
        return task_error("the task's test function was not found")
    found = [Case("", {})]
    wanted: list[str] = []
    if test["kind"] == "function":
        try:
            found, wanted = cases(test_function), fixtures_of(test_function)
        except CaseError as exc:
            return task_error(f"the task's test cannot run: {exc}")
        unknown = [name for name in wanted if name not in SANDBOX_FIXTURES]
        if unknown:
            return task_error(UNKNOWN_FIXTURE.format(name=unknown[0]))
    failed: JudgeResult | None = None
    for case in found:
        arguments = dict(case.arguments)
        scratch = tempfile.mkdtemp(prefix="case-") if "tmp_path" in wanted else None
        if scratch is not None:
            arguments["tmp_path"] = pathlib.Path(scratch)
        try:
            failed = _run_case(test_function, candidate, arguments, remote, sources)
        finally:
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)
        if failed is not None:
            if case.case_id and failed["outcome"] != "timeout":
                failed["message"] = f"[{case.case_id}] {failed['message']}"[:MESSAGE_LIMIT]
            break
    differential = job.get("differential")
    if differential is None or entry_point is None:
        return failed if failed is not None else _passed(remote)
    if failed is not None and remote.ended is not None:
        return failed  # the candidate is gone: nothing more to observe
    try:
        seen = run_differential(remote, entry_point, differential)
    except CandidateGone as gone:
        result = failed or _gone_verdict(gone.args[0], remote)
        result["original"] = failed["outcome"] if failed else "passed"
        return result
    except plain.NotPlainData as exc:  # an opaque value in the arguments written back
        result = failed or verdict("error", f"{exc} {NOT_PLAIN_HINT}")
        result["original"] = failed["outcome"] if failed else "passed"
        return result
    original = failed
    if original is None and seen.original is not None:
        original = verdict("failed", seen.original[1])
    if original is not None:
        result = original
    elif seen.stronger is not None:
        result = verdict("failed", seen.stronger[1])
    else:
        result = _passed(remote)
    result["original"] = original["outcome"] if original else "passed"
    if seen.behaviour is not None:
        result["behaviour"] = seen.behaviour
    return result


def _passed(remote: Remote) -> JudgeResult:
    result = verdict("passed", "")
    marks = remote.marks
    if marks:
        # The candidate's CPU for the whole test and for its most expensive call.
        result["test_cpu"] = marks[-1] - marks[0]
        result["call_cpu"] = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
    return result
