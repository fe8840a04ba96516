"""The judge's end of the channel to C (trusted, in Z): calls, handles, write-back, callbacks.

Every request of the test (a call of the candidate's function, an operation on a
:class:`~.handles.Handle`) is one plain line to C, and the judge reads C's answer as a claim:
plain data, handles to C's objects, the arguments it changed in place (written back into the
test's own objects), or an exception. While it waits, C may call back a callable the test passed
(``{"cb": id}``); the judge runs it and answers, so calls nest. Every limit on what crosses is
here: :data:`MAX_HANDLES`, :data:`MAX_CALLBACKS`, :data:`MAX_REQUESTS`, plain data's own depth
and size limits and the frame limit.
"""

from __future__ import annotations

import builtins
import contextlib
import mmap
import socket
import sys
import time
from typing import Any, NoReturn, cast

from .. import plain
from ..protocol import FRAME_LIMIT, SHARED_BYTES, End
from .handles import Handle

NOT_PLAIN_ARGS = (
    "the arguments of {name}() cannot cross to the candidate: plain data (None, bool, int, "
    "float, str, bytes, complex, and lists, tuples, dicts and sets of them), the candidate's own "
    "objects and callables cross; {type} does not"
)
#: Handles one test may hold (C keeps the objects alive for the judge).
MAX_HANDLES = 100_000
#: Calls back into the test one test may receive from the candidate.
MAX_CALLBACKS = 10_000
#: Requests (calls and handle operations) one test may make.
MAX_REQUESTS = 1_000_000
#: How deeply callbacks and calls may nest inside each other.
MAX_NESTING = 50
LIMIT_HANDLES = f"the candidate's objects held by the test passed {MAX_HANDLES}"
LIMIT_CALLBACKS = f"the candidate called the test's callables back more than {MAX_CALLBACKS} times"
LIMIT_REQUESTS = f"the test made more than {MAX_REQUESTS} requests of the candidate"
LIMIT_NESTING = f"calls and callbacks nested more than {MAX_NESTING} deep"
#: The types the judge writes back into in place.
MUTABLE = (list, dict, set, bytearray)


class CandidateGone(BaseException):
    """The candidate's process ended or was stopped; a ``BaseException`` so tests cannot catch it
    with ``except Exception`` and carry on to a pass.
    """


class CandidateError(Exception):
    """The candidate raised an exception of its own class (where the test has not imported
    ``pytest_passk``, whose ``CandidateError`` stand-ins derive from otherwise).
    """


_STAND_INS: dict[tuple[str, type[Exception]], type[Exception]] = {}
#: Stand-in classes a worker keeps (the names are the candidates' choice, and the worker serves
#: many candidates): past it, a new name gets a class of its own that no registry keeps.
MAX_STAND_INS = 4096


def stand_in(name: str, base: type[Exception]) -> type[Exception]:
    """The judge's class for the candidate's exception class ``name`` (nearest builtin ``base``):
    ``pytest_passk.candidate_exception(name)`` where the test imported pytest_passk.
    """
    key = (name, base)
    public = sys.modules.get("pytest_passk.raised")
    made = getattr(public, "_MADE", None)
    make = getattr(public, "candidate_exception", None)
    if make is not None and isinstance(made, dict) and (key in made or len(made) < MAX_STAND_INS):
        return cast(type[Exception], make(name, base))
    if key in _STAND_INS:
        return _STAND_INS[key]
    bases = (CandidateError,) if base is Exception else (CandidateError, base)
    made_here = type(name, bases, {"__module__": "candidate"})
    if len(_STAND_INS) < MAX_STAND_INS:
        _STAND_INS[key] = made_here
    return made_here


class Remote:
    """The judge's end of the channel: every request of the test goes through here."""

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
        self.handles: dict[int, Handle] = {}
        self.callbacks: list[Any] = []
        self.callback_ids: dict[int, int] = {}
        self.callbacks_run = 0
        self.nesting = 0
        #: What the last failed comparison of a handle saw (for the failure's message).
        self.mismatch = ""
        #: An AssertionError (or worse) a callback of the test raised: never a pass.
        self.callback_failure: BaseException | None = None

    def note_mismatch(self, text: str) -> None:
        self.mismatch = text

    def receive(self) -> dict[str, Any]:
        """C's next message, untrusted: every field is checked where it is read. K's
        :class:`~..protocol.End`, or a broken channel, raise :class:`CandidateGone`.
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
            # Only the judge concludes "lost" and "limit"; the candidate may write any frame.
            forwarded = cast(End, message)  # untrusted too: read with .get() and str()
            ours = message["end"] in ("lost", "limit")
            self._end({"end": "garbled"} if ours else forwarded)
        if self.marks is not None and isinstance(message.get("t"), float):
            self.marks.append(message["t"])
        return dict(message)

    def _end(self, message: End) -> NoReturn:
        self.ended = message
        raise CandidateGone(message)

    def limit(self, reason: str) -> NoReturn:
        """A limit on what crosses was passed: the candidate cannot pass."""
        self.tainted = reason
        self._end({"end": "limit"})

    # -- requests ------------------------------------------------------------------------------

    def request(self, name: str, args: tuple[Any, ...] | None,
                kwargs: dict[str, Any] | None) -> Any:  # fmt: skip
        """Call the candidate's ``name`` (``args`` ``None``: read it)."""
        if args is None:
            return self._send({"name": name, "get": True}, name, None)
        return self._send(
            {"name": name, **self._arguments(name, args, kwargs)}, name, (args, kwargs or {})
        )

    def batch(self, name: str, arguments: list[Any]) -> Any:
        """Call the candidate's ``name`` on each encoded argument list; its answer undecoded
        (untrusted: :mod:`.differ` reads it).
        """
        return self._send({"name": name, "args": [], "kwargs": {}, "batch": arguments}, name,
                          None, raw=True)  # fmt: skip

    def operate(self, hid: int, op: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                attribute: str) -> Any:  # fmt: skip
        """One operation on the candidate's object ``hid`` (see :class:`~.handles.Handle`)."""
        handle = self.handles.get(hid)
        what = f"{handle._type if handle is not None else 'object'}.{attribute or op}"
        frame = {"h": hid, "op": op, "n": attribute, **self._arguments(what, args, kwargs)}
        return self._send(frame, what, (args, kwargs))

    def _arguments(self, name: str, args: tuple[Any, ...],
                   kwargs: dict[str, Any] | None) -> dict[str, Any]:  # fmt: skip
        try:
            return {
                "args": plain.encode(list(args), strict=True, other=self._out),
                "kwargs": plain.encode(dict(kwargs or {}), strict=True, other=self._out),
            }
        except ValueError as exc:
            raise TypeError(NOT_PLAIN_ARGS.format(name=name, type=exc)) from None

    def _out(self, value: object, depth: int, count: list[int]) -> Any:
        """A value of the test's that is not plain data, as C will see it."""
        if isinstance(value, Handle) and value._owner is self:
            return {plain.TAG: "ref", "v": value._hid}
        if callable(value) and not isinstance(value, type):
            index = self.callback_ids.get(id(value))
            if index is None:
                index = self.callback_ids[id(value)] = len(self.callbacks)
                self.callbacks.append(value)  # kept alive: its id stays its own
            return {plain.TAG: "cb", "v": index}
        raise plain.EncodeError(type(value).__name__)

    def _send(self, frame: dict[str, Any], name: str,
              passed: tuple[tuple[Any, ...], dict[str, Any]] | None,
              raw: bool = False) -> Any:  # fmt: skip
        if self.seq >= MAX_REQUESTS:
            self.limit(LIMIT_REQUESTS)
        if self.nesting >= MAX_NESTING:
            self.limit(LIMIT_NESTING)
        self.seq += 1
        seq = frame["s"] = self.seq
        self.calling = name
        # The supervisor starts this call's clock when it sees the counter move.
        counter = int.from_bytes(self.calls[:SHARED_BYTES], "little") + 1
        self.calls[:SHARED_BYTES] = counter.to_bytes(SHARED_BYTES, "little")
        try:
            self.sock.sendall(plain.dumps(frame))
        except OSError:
            # The candidate ended (K's word on it is waiting to be read), or K is gone.
            self.receive()
            self._end({"end": "lost"})
        self.mismatch = ""
        self.nesting += 1
        try:
            reply = self.receive()
            while "cb" in reply and "s" not in reply:
                self._callback(reply)
                reply = self.receive()
        finally:
            self.nesting -= 1
        if reply.get("s") != seq:
            self.tainted = "the candidate's reply did not match the call"
            self._end({"end": "garbled"})
        failure = self.callback_failure
        if failure is not None:  # raised once, in the test, where the candidate cannot catch it
            self.callback_failure = None
            raise failure
        if "raise" in reply:
            self._raise(reply)
        if raw:
            return reply.get("ok")
        try:
            if frame.get("op") == "view":
                return plain.decode(reply.get("ok"))  # a view holds no handles
            result = plain.decode(reply.get("ok"), refs=self._refs)
            if passed is not None and "w" in reply:
                self._write_back(passed, reply["w"])
        except (ValueError, TypeError, KeyError, RecursionError, IndexError) as exc:
            self.tainted = f"the candidate sent malformed data: {exc}"
            self._end({"end": "garbled"})
        return result

    def _raise(self, reply: dict[str, Any]) -> NoReturn:
        self.last_detail = str(reply.get("detail", ""))
        name = str(reply["raise"])
        klass = getattr(builtins, name, None)
        message = str(reply.get("message", ""))
        own = reply.get("type")
        if isinstance(klass, type) and issubclass(klass, Exception):
            if isinstance(own, str) and own != name and own.isidentifier():
                raise _rebuilt(stand_in(own, klass), reply.get("args"), _own_text(message, own))
            raise _rebuilt(klass, reply.get("args"), message)
        if isinstance(klass, type) and issubclass(klass, BaseException):
            self._end({"end": "raised", "message": message})
        raise stand_in(own if isinstance(own, str) and own.isidentifier() else "Exception",
                       Exception)(message)  # fmt: skip

    def _refs(self, tag: str, data: dict[str, Any]) -> Any:
        hid = data.get("v")
        if type(hid) is not int or hid < 0:
            raise ValueError("a reference that is not a number")
        if tag == "cb":
            if hid >= len(self.callbacks):
                raise ValueError("a callback the test never passed")
            return self.callbacks[hid]
        if tag != "handle":
            return plain.Opaque(tag)
        known = self.handles.get(hid)
        if known is not None:
            return known
        if len(self.handles) >= MAX_HANDLES:
            self.limit(LIMIT_HANDLES)
        made = Handle(self, self.operate, hid, str(data.get("t", "?"))[:100], data.get("i") is True)
        self.handles[hid] = made
        return made

    def _write_back(self, passed: tuple[tuple[Any, ...], dict[str, Any]], changes: Any) -> None:
        """Copy what the candidate changed in the test's plain arguments back, in place."""
        args, kwargs = passed
        if not isinstance(changes, list):
            raise ValueError("a write-back that is not a list")
        for change in changes:
            where, value = change
            target = args[where] if type(where) is int else kwargs[str(where)]
            if type(target) not in MUTABLE:
                raise ValueError("a write-back of an argument that cannot change")
            assign(target, plain.decode(value, refs=self._refs))

    # -- callbacks -----------------------------------------------------------------------------

    def _callback(self, message: dict[str, Any]) -> None:
        """C calls a callable of the test's: run it here and answer ``{"c": n, ...}``."""
        self.callbacks_run += 1
        if self.callbacks_run > MAX_CALLBACKS:
            self.limit(LIMIT_CALLBACKS)
        index, number = message.get("cb"), message.get("c")
        if (
            type(index) is not int
            or not 0 <= index < len(self.callbacks)
            or type(number) is not int
        ):
            self.tainted = "a callback the test never passed"
            self._end({"end": "garbled"})
        try:
            args = plain.decode(message.get("args"), refs=self._refs)
            kwargs = plain.decode(message.get("kwargs"), refs=self._refs)
            if not isinstance(args, list) or not isinstance(kwargs, dict):
                raise ValueError("arguments")
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            self.tainted = f"the candidate sent malformed data: {exc}"
            self._end({"end": "garbled"})
        answer: dict[str, Any]
        try:
            result = self.callbacks[index](*args, **{str(k): v for k, v in kwargs.items()})
            answer = {"c": number, "ok": plain.encode(result, strict=True, other=self._out)}
        except (AssertionError, CandidateGone, plain.NotPlainData) as exc:
            # The test's own failure: the candidate must not be able to swallow it.
            if self.callback_failure is None:
                self.callback_failure = exc
            answer = {"c": number, "raise": "Exception", "message": "the test's callable failed"}
        except plain.EncodeError as exc:
            text = f"a callable's result cannot cross to the candidate: {exc}"
            answer = {"c": number, "raise": "TypeError", "message": text}
        except Exception as exc:
            name = (
                type(exc).__name__
                if getattr(builtins, type(exc).__name__, None) is type(exc)
                else "Exception"
            )
            answer = {"c": number, "raise": name, "message": str(exc)[:300]}
        try:
            self.sock.sendall(plain.dumps(answer))
        except OSError:
            self.receive()
            self._end({"end": "lost"})


def _own_text(line: str, own: str) -> str:
    """``candidate.Insufficient: no money`` (the exception's first line) without its type."""
    head, _, rest = line.partition(": ")
    if head.rpartition(".")[2] == own:
        return rest
    return line


def assign(target: Any, value: Any) -> None:
    """Make ``target`` (a list, dict, set or bytearray of the test's) equal ``value`` in place,
    keeping the identity of nested lists and dicts where the shape allows.
    """
    if type(target) is list and type(value) is list:
        if len(target) == len(value):
            for i, (old, new) in enumerate(zip(target, value, strict=True)):
                if type(old) in (list, dict) and type(old) is type(new):
                    assign(old, new)
                else:
                    target[i] = new
        else:
            target[:] = value
    elif type(target) is dict and type(value) is dict:
        for key in [k for k in target if k not in value]:
            del target[key]
        for key, new in value.items():
            old = target.get(key)
            if type(old) in (list, dict) and type(old) is type(new) and key in target:
                assign(old, new)
            else:
                target[key] = new
    elif type(target) is set and type(value) is set:
        target.clear()
        target.update(value)
    elif type(target) is bytearray and type(value) in (bytes, bytearray):
        target[:] = value
    else:
        raise ValueError(f"a write-back of a {type(value).__name__} into a {type(target).__name__}")


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
