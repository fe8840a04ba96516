"""The sandbox's wire contract: every message that crosses a process boundary, in one place.

Stdlib only: the pool imports this module as ``pytest_passk.sandbox.protocol``, and every worker
loads it (from the code object the pool compiled) before the modules of :mod:`.inside`, which
import it relatively. Both ends read and write the types below; nothing else crosses.

Processes (see :mod:`pytest_passk.sandbox.inside`)::

    pool ──stdin: WorkerConfig, then JobRequest per line──▶ Z ──stdout: Hello | StartError,
                                                              then JudgeResult per line──▶ pool
    Z ──frame: CandidateJob + [channel, done]──▶ K ──frame: CandidateJob + [channel]──▶ C
    K ──frame: CloneRequest + [standby socket, imports]──▶ T ──8-byte signed PID or -errno──▶ K
    Z (judge) ◀──channel, plain lines──▶ C: Call | Get | HandleCall ▶, ◀ Loaded | LoadError,
        Return | Raise; while a request is open, C may ask Callback ▶ and Z answers CallbackReply
    K ──channel, one plain line──▶ Z: End (how the candidate ended, when not by the judge's word)

Shared memory and pipes (no messages): ``calls`` (8 bytes, little-endian counter, Z writes, K
reads: the start of each call), ``imports`` (8 bytes, C writes byte 0 while importing, K reads)
and ``done`` (a pipe, Z to K: :data:`LOADED` once the program is loaded, end of file once the
judge is finished).

Carriers: the pool and Z speak JSON lines over the worker's stdin and stdout; Z, K and T speak
length-prefixed frames (:func:`send_frame`) that carry descriptors; the judge and C speak
:mod:`~pytest_passk.sandbox.plain` lines, which only ever hold plain data.

C is untrusted, and it holds its end of the channel: the types of what C sends (and any
:class:`End` that arrives on the channel) say what an honest candidate writes; the judge reads
every field of them as a claim, checked where it is read (``inside.judge.Remote``).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

# -- constants -------------------------------------------------------------------------------

#: Largest frame or line either side reads (a longer reply is the candidate's protocol error).
FRAME_LIMIT = 16 * 1024 * 1024
#: Characters kept of a verdict's detail (a traceback and captured output, its tail).
DETAIL_LIMIT = 4000
#: Characters kept of a verdict's one-line message.
MESSAGE_LIMIT = 300
#: Characters kept of what a candidate or a test prints.
OUTPUT_LIMIT = 2000
#: Environment variables the sandbox may see; everything else (API keys included) is dropped:
#: by the pool when it starts a worker, and again by T for every candidate.
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
#: What Z writes on the ``done`` pipe once the candidate's program is loaded: K starts the CPU
#: budget then. The end of file on that pipe says the judge is finished.
LOADED = b"L"
#: Bytes of the ``calls`` and ``imports`` shared maps.
SHARED_BYTES = 8
#: The first bytes of a :func:`send_frame` frame, which carry its descriptors.
FIRST_CHUNK = 65536

#: A verdict's outcomes, as :class:`pytest_passk.results.Outcome` values (a test ties them).
OutcomeName = Literal["passed", "failed", "error", "timeout"]
OUTCOMES: tuple[OutcomeName, ...] = ("passed", "failed", "error", "timeout")
#: The isolation layers a worker reports in its :class:`Hello`.
LAYERS = ("userns", "netns", "mountns", "pidns", "rofs", "nobody")


# -- pool <-> Z: JSON lines on the worker's stdin and stdout ---------------------------------


class WorkerConfig(TypedDict):
    """The first line the pool writes to a new worker (after the code objects)."""

    #: Enter network, mount and PID namespaces (``False`` at ``--passk-isolation=process``).
    namespaces: bool
    #: Directories the candidates must not see (the run's rootdir), real paths.
    hide: list[str]
    #: Installed packages' directories the candidates may import from, real paths.
    site_dirs: list[str]


class Layers(TypedDict):
    """The isolation layers a worker achieved (see :data:`LAYERS`)."""

    userns: bool
    netns: bool
    mountns: bool
    pidns: bool
    rofs: bool
    nobody: bool


class Hello(TypedDict):
    """Z's first line: it is ready."""

    hello: Layers
    #: Z's scratch directory (in the host's /tmp without a mount namespace: the pool removes it).
    scratch: str


class StartError(TypedDict):
    """Instead of :class:`Hello`: the worker cannot run (another Python version)."""

    error: str


class CheckSpec(TypedDict):
    """A dataset task's test: ``check(candidate)`` source."""

    kind: Literal["check"]
    source: str


class FunctionSpec(TypedDict):
    """A decorated task's test function, which Z imports as pytest did."""

    kind: Literal["function"]
    module_name: str
    module_file: str
    qualname: str
    sys_path: list[str]


TestSpec = CheckSpec | FunctionSpec


class Limits(TypedDict):
    """A candidate's limits, in seconds and bytes: what K and C enforce."""

    #: CPU seconds for the whole test (counted from the program's load).
    cpu_limit: float
    #: CPU seconds for any one call of the test.
    call_limit: float
    #: Wall seconds for the whole job, loading included.
    wall_limit: float
    memory_bytes: int
    file_bytes: int
    processes: int
    #: The reference's calibration run: C stamps its CPU clock on each reply (``t``).
    measure: bool


class CandidateJob(Limits):
    """What reaches K and C: the program and its limits, never the test."""

    program: str


class DifferentialSpec(TypedDict):
    """A job's stronger tests: ``cases`` is a list of ``[arguments, expected, tier]`` (encoded
    argument list; the reference's observation ``{"ok": value, "w": arguments after}`` or
    ``{"raise": type name}``; 0 for the task's own tests, 1 for the stronger ones only), and
    ``compare`` how outputs agree (``{"kind": "exact" | "approx" | "evalplus", ...}``).
    """

    cases: list[Any]
    compare: dict[str, Any]


class _JobRequestBase(CandidateJob):
    entry_point: str | None
    test: TestSpec


class JobRequest(_JobRequestBase, total=False):
    """One job, a line from the pool to Z."""

    #: Stronger tests, run after the test in the same candidate process.
    differential: DifferentialSpec


class _JudgeResultBase(TypedDict):
    outcome: OutcomeName
    #: One line, at most :data:`MESSAGE_LIMIT` characters.
    message: str
    #: At most :data:`DETAIL_LIMIT` characters.
    detail: str


class JudgeResult(_JudgeResultBase, total=False):
    """Z's answer to a :class:`JobRequest`, one line."""

    #: Wall seconds from handing the program to K to the verdict.
    wall: float
    #: The harness failed, not the program.
    harness: bool
    #: The task cannot run (its test failed to load, asks for a fixture the sandbox lacks, has
    #: unreadable parametrize marks): not the program's fault either.
    task: bool
    #: A timeout's cause: ``cpu`` (the test's budget), ``call`` (one call's), ``wall`` or
    #: ``judge`` (the judge's own deadline).
    by: str
    #: A timeout's CPU seconds.
    cpu: float
    #: A timeout's call in progress (the function's name).
    call: str
    #: With ``measure`` and a pass: the candidate's CPU seconds for the test and its most
    #: expensive call.
    test_cpu: float
    call_cpu: float
    #: Z only (never sent): the channel ended without K's word; Z finds out why.
    lost: bool
    #: With ``differential``: the outcome on the task's own tests alone (the verdict's own
    #: outcome is on the stronger tests too), and a hash of every output on the generated
    #: inputs (the behaviour fingerprint).
    original: OutcomeName
    behaviour: str


# -- K <-> T: frames ---------------------------------------------------------------------------


class CloneRequest(TypedDict):
    """K asks T for a standby candidate; the frame carries its socket and the imports map.

    T answers with 8 bytes, big-endian and signed: the new PID, or minus an errno.
    """

    workdir: str
    #: Drop to uid nobody (root without a user namespace).
    drop: bool


# -- judge (Z) <-> C: plain lines on the channel --------------------------------------------------


class ModuleName(TypedDict):
    """A name of the program that is a module (the judge imports it where it is stdlib)."""

    m: str


class CallableName(TypedDict):
    """A name of the program that is callable: the judge stubs it with a remote function."""

    c: Literal[True]


class ValueName(TypedDict):
    """A name of the program bound to plain data (encoded)."""

    v: Any


NameKind = ModuleName | CallableName | ValueName


class _Stamped(TypedDict, total=False):
    #: With ``measure``: C's CPU clock when it sent the message (trusted code then: the
    #: reference's calibration run).
    t: float


class Loaded(_Stamped):
    """C's first line: the program loaded, and what it defines (``None``: not describable)."""

    s: Literal[0]
    names: dict[str, NameKind | None]


class LoadError(_Stamped):
    """C's first line instead of :class:`Loaded`: the program raised while loading."""

    s: Literal[0]
    load_error: str
    detail: str


class _CallBase(TypedDict):
    s: int
    name: str
    args: Any
    kwargs: Any


class Call(_CallBase, total=False):
    """Call ``name`` with encoded arguments. ``s`` numbers the calls from 1; each reply carries
    its call's.
    """

    #: The stronger tests' inputs: encoded argument lists, each called in turn (``args`` and
    #: ``kwargs`` empty); the :class:`Return`'s ``ok`` is a list of one observation each:
    #: ``{"ok": value}`` (and ``"w"``: the arguments after the call, where it changed them) or
    #: ``{"raise": type name}`` (``own:Name`` for the candidate's own class). One request, one
    #: call for the per-call CPU budget: round trips would cost more than most programs.
    batch: list[Any]


class Get(TypedDict):
    """Read ``name`` (a value, not a call)."""

    s: int
    name: str
    get: Literal[True]


class HandleCall(TypedDict):
    """An operation on the candidate's object ``h`` (a handle the judge holds): ``op`` is one of
    ``call``, ``getattr``, ``setattr``, ``delattr`` (attribute ``n``), ``len``, ``iter``,
    ``next``, ``getitem``, ``setitem``, ``delitem``, ``contains``, ``enter``, ``exit``, ``bool``,
    ``str`` and ``view`` (the object's plain view, :func:`~.plain.view`).
    """

    s: int
    h: int
    op: str
    n: str
    args: Any
    kwargs: Any


class _ReturnBase(_Stamped):
    s: int
    ok: Any


class Return(_ReturnBase, total=False):
    """The call returned ``ok``, encoded (objects that are not plain data as handles: markers
    ``{"#": "handle", "v": id, "t": type name}``, with ``"i": true`` for an iterator). ``w``:
    the arguments it changed in place, ``[position or keyword, encoded value]``.
    """

    w: list[Any]


class Callback(TypedDict):
    """C calls the test's callable ``cb`` (passed to it as ``{"#": "cb", "v": index}``); ``c``
    numbers C's callbacks.
    """

    cb: int
    c: int
    args: Any
    kwargs: Any


class CallbackReply(TypedDict, total=False):
    """The judge's answer to :class:`Callback` ``c``: ``ok`` (encoded), or ``raise`` (a builtin
    exception's name) and ``message``.
    """

    c: int
    ok: Any
    message: str


# ``raise`` is a keyword: these keys are declared the functional way.
_RaiseKeys = TypedDict("_RaiseKeys", {"s": int, "raise": str, "message": str, "detail": str})


class Raise(_RaiseKeys, total=False):
    """The call raised: ``raise`` names its builtin type (else ``Exception``), ``message`` its
    text; ``args`` are its arguments, encoded, where it is exactly a builtin type and they are
    plain.
    """

    args: Any
    t: float
    #: The name of the candidate's own exception class, where it is not a builtin one.
    type: str


Reply = Loaded | LoadError | Return | Raise

#: How a candidate ended without the judge's word: ``exited`` (K saw it exit), ``timeout`` (K
#: stopped it, or the judge's deadline passed), ``raised`` (a ``BaseException`` such as
#: ``SystemExit`` reached the judge), ``garbled`` (it broke the protocol), ``lost`` (the channel
#: ended without K's word; only the judge concludes it), ``limit`` (a limit on what crosses was
#: passed; only the judge concludes it too).
EndKind = Literal["exited", "timeout", "raised", "garbled", "lost", "limit"]


class _EndBase(TypedDict):
    end: EndKind


class End(_EndBase, total=False):
    """K's word on the channel (or the judge's own conclusion)."""

    #: ``exited``: the exit status.
    status: int
    #: ``timeout``: CPU and wall seconds, and which limit (see :attr:`JudgeResult.by`).
    cpu: float
    wall: float
    by: str
    #: ``raised``: the exception's text.
    message: str


# -- framing -----------------------------------------------------------------------------------


def send_frame(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    """One length-prefixed frame on a stream socket, with file descriptors on its first byte."""
    header = len(data).to_bytes(8, "big")
    socket.send_fds(sock, [header + data[:FIRST_CHUNK]], fds)
    if len(data) > FIRST_CHUNK:
        sock.sendall(data[FIRST_CHUNK:])


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]]:
    """Inverse of :func:`send_frame` (an empty frame at end of stream)."""
    first, fds, _, _ = socket.recv_fds(sock, FIRST_CHUNK + 8, 4)
    if not first:
        return b"", fds
    while len(first) < 8:
        more = sock.recv(8 - len(first))
        if not more:
            return b"", fds
        first += more
    size = int.from_bytes(first[:8], "big")
    if size > FRAME_LIMIT:
        raise OSError("frame too large")
    chunks = [first[8:]]
    have = len(first) - 8
    while have < size:
        more = sock.recv(min(1 << 20, size - have))
        if not more:
            return b"", fds
        chunks.append(more)
        have += len(more)
    return b"".join(chunks), fds


def encode_pid(pid: int) -> bytes:
    """T's answer to a :class:`CloneRequest`: a PID, or minus an errno."""
    return pid.to_bytes(8, "big", signed=True)


def decode_pid(data: bytes) -> int:
    """Inverse of :func:`encode_pid`."""
    return int.from_bytes(data, "big", signed=True)


def read_layers(said: Mapping[str, object]) -> Layers:
    """The layers of a parsed :class:`Hello` (a missing one is off)."""
    return Layers(
        userns=bool(said.get("userns")),
        netns=bool(said.get("netns")),
        mountns=bool(said.get("mountns")),
        pidns=bool(said.get("pidns")),
        rofs=bool(said.get("rofs")),
        nobody=bool(said.get("nobody")),
    )


def no_layers() -> Layers:
    """Every layer off: where a worker starts before it sets up its namespaces."""
    return Layers(userns=False, netns=False, mountns=False, pidns=False, rofs=False, nobody=False)
