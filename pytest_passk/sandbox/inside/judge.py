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
import socket
import sys
import time
import traceback
import types
from typing import Any, NoReturn, cast

from .. import plain
from ..protocol import (
    DETAIL_LIMIT,
    FRAME_LIMIT,
    LOADED,
    MESSAGE_LIMIT,
    SHARED_BYTES,
    Call,
    End,
    Get,
    JobRequest,
    JudgeResult,
    OutcomeName,
)
from .text import first_line, format_traceback

TEST_FILE = "<test>"
NOT_PLAIN_HINT = "(only plain data crosses from the candidate to the test; see docs/security.md)"
NOT_PLAIN_ARGS = (
    "the arguments of {name}() are not plain data (None, bool, int, float, str, bytes, complex, "
    "and lists, tuples, dicts and sets of them): the sandbox cannot pass them to the candidate"
)


class CandidateGone(BaseException):
    """The candidate's process ended or was stopped; a ``BaseException`` so tests cannot catch it
    with ``except Exception`` and carry on to a pass.
    """


class CandidateError(Exception):
    """The candidate raised an exception whose type is not a builtin one."""


class Remote:
    """The judge's end of the channel: every call of the candidate goes through here."""

    def __init__(self, sock: socket.socket, deadline: float, calls: mmap.mmap,
                 measure: bool = False) -> None:  # fmt: skip
        self.sock = sock
        self.reader = sock.makefile("rb", buffering=65536)
        self.deadline = deadline
        self.calls = calls
        self.seq = 0
        self.tainted = ""
        self.ended: End | None = None
        self.last_detail = ""
        #: The call in progress, named in a timeout's message.
        self.calling = ""
        #: With ``measure``, the candidate's CPU clock after loading and after each call.
        self.marks: list[float] | None = [] if measure else None

    def receive(self) -> dict[str, Any]:
        """C's next reply (:data:`~..protocol.Reply`), untrusted: every field is checked where it
        is read. K's :class:`~..protocol.End`, or a broken channel, raise :class:`CandidateGone`.
        """
        if self.ended is not None:
            raise CandidateGone(self.ended)
        self.sock.settimeout(max(0.01, self.deadline - time.monotonic()))
        try:
            line = self.reader.readline(FRAME_LIMIT)
        except (TimeoutError, OSError):
            self._end({"end": "timeout", "by": "judge"})
        if len(line) >= FRAME_LIMIT and not line.endswith(b"\n"):
            self.tainted = f"a reply of more than {FRAME_LIMIT // 2**20} MiB"
            self._end({"end": "garbled"})
        if not line or not line.endswith(b"\n"):
            # K holds the channel until it has said how the candidate ended: the end of the
            # stream without its word means K is gone, or the candidate shut the socket down
            # (run_job tells which).
            self._end({"end": "lost"})
        try:
            message = plain.loads(line)
        except (ValueError, RecursionError):
            self._end({"end": "garbled"})
        if not isinstance(message, dict):
            self._end({"end": "garbled"})
        if "end" in message:
            # Only the judge concludes "lost"; the candidate may write any frame.
            forwarded = cast(End, message)  # untrusted too: read with .get() and str()
            self._end(forwarded if message["end"] != "lost" else {"end": "garbled"})
        if self.marks is not None and isinstance(message.get("t"), float):
            self.marks.append(message["t"])
        return dict(message)

    def _end(self, message: End) -> NoReturn:
        self.ended = message
        raise CandidateGone(message)

    def request(self, name: str, args: tuple[Any, ...] | None,
                kwargs: dict[str, Any] | None) -> Any:  # fmt: skip
        self.seq += 1
        self.calling = name
        # The supervisor starts this call's clock when it sees the counter move.
        counter = int.from_bytes(self.calls[:SHARED_BYTES], "little") + 1
        self.calls[:SHARED_BYTES] = counter.to_bytes(SHARED_BYTES, "little")
        frame: Call | Get
        if args is None:
            frame = {"s": self.seq, "name": name, "get": True}
        else:
            try:
                frame = {
                    "s": self.seq,
                    "name": name,
                    "args": plain.encode(list(args), strict=True),
                    "kwargs": plain.encode(dict(kwargs or {}), strict=True),
                }
            except ValueError:
                raise TypeError(NOT_PLAIN_ARGS.format(name=name)) from None
        try:
            self.sock.sendall(plain.dumps(frame))
        except OSError:
            # The candidate ended (K's word on it is waiting to be read), or K is gone.
            self.receive()
            self._end({"end": "lost"})
        reply = self.receive()
        if reply.get("s") != self.seq:
            self.tainted = "the candidate's reply did not match the call"
            self._end({"end": "garbled"})
        if "raise" in reply:
            self.last_detail = str(reply.get("detail", ""))
            name_ = str(reply["raise"])
            klass = getattr(builtins, name_, None)
            message = str(reply.get("message", ""))
            if isinstance(klass, type) and issubclass(klass, Exception):
                raise _rebuilt(klass, reply.get("args"), message)
            if isinstance(klass, type) and issubclass(klass, BaseException):
                self._end({"end": "raised", "message": message})
            raise CandidateError(message)
        try:
            return plain.decode(reply.get("ok"))
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            self.tainted = f"the candidate sent malformed data: {exc}"
            self._end({"end": "garbled"})


def _rebuilt(klass: type[Exception], args: Any, message: str) -> Exception:
    """The candidate's exception, of its builtin type, from its plain arguments if it sent them
    (``KeyError('k')`` stays ``KeyError('k')``), else from its message.
    """
    if isinstance(args, list):
        with contextlib.suppress(Exception):
            decoded = plain.decode(args)
            if isinstance(decoded, list):
                return klass(*decoded)
    return klass(message)


class RemoteFunction:
    """Stands for a function of the candidate; calling it calls the real one in C."""

    def __init__(self, remote: Remote, name: str) -> None:
        self._remote = remote
        self.__name__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._remote.request(self.__name__, args, kwargs)

    def __repr__(self) -> str:
        return f"<candidate function {self.__name__}>"


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
    status = ended.get("status")
    how = f" (exit status {status})" if status is not None else ""
    return verdict("error", f"the candidate's process ended before the test finished{how}")


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
            return verdict("error", f"the task's test failed to load: {first_line(exc)}")
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
        return verdict("error", "the task's test function was not found")
    try:
        test_function(candidate)
    except CandidateGone as gone:
        return _gone_verdict(gone.args[0], remote)
    except plain.NotPlainData as exc:
        # Not a wrong answer as such: a value the sandbox cannot hand to the test.
        return verdict("error", f"{exc} {NOT_PLAIN_HINT}")
    except AssertionError as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        line = failing_test_line(exc, sources)
        message = first_line(exc)
        if line and message == "AssertionError":
            message = f"AssertionError: {line}"
        detail = format_traceback(exc)
        return verdict("failed", message, detail)
    except BaseException as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        detail = remote.last_detail or format_traceback(exc)
        return verdict("error", first_line(exc), detail)
    if remote.ended is not None or remote.tainted:
        return _gone_verdict(remote.ended or {"end": "garbled"}, remote)
    result = verdict("passed", "")
    marks = remote.marks
    if marks:
        # The candidate's CPU for the whole test and for its most expensive call.
        result["test_cpu"] = marks[-1] - marks[0]
        result["call_cpu"] = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
    return result
