"""K, the clean zygote and supervisor (trusted): starts each candidate and enforces its limits.

Forked from Z before the first job, so its memory never held a test. K keeps one candidate
cloned ahead (:class:`Standby`, through T), hands it each :class:`~..protocol.CandidateJob` Z
sends with the job's channel, and watches it (:func:`supervise`): it kills the candidate when it
exceeds its CPU budget (for the whole test, or for one call) or its wall limit, or when the judge
is finished, and says how it ended on the channel (:class:`~..protocol.End`).
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
import os
import signal
import socket
import time

from .. import plain
from ..protocol import SHARED_BYTES, CandidateJob, End, Layers, send_frame
from .linux import (
    CLONE_NEWNS,
    NOBODY,
    PR_SET_CHILD_SUBREAPER,
    Libc,
    blocking_ancestor,
    cover,
    is_under,
    kill_tree,
    make_private_dir,
    null_stdio,
    outermost,
    reap_all,
    remove_tree,
    scan,
    shared_file,
    stdlib_dirs,
    tree_cpu_seconds,
)
from .template import Template, next_request

PRELOAD = (
    "typing", "collections", "math", "re", "itertools", "functools", "heapq", "string",
    "hashlib", "ast", "linecache", "tokenize",  # the last three: formatting tracebacks
)  # fmt: skip
POLL = 0.01


def clean_zygote(control: socket.socket, libc: Libc, layers: Layers,
                 hide: list[str], site_dirs: list[str], calls: mmap.mmap) -> None:  # fmt: skip
    """K: receive candidate programs (never tests) with their channel; start and watch each."""
    calls.madvise(mmap.MADV_DONTFORK)  # the judge's call counter: never a candidate's to write
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            __import__(name)
    null_stdio((0, 1))
    scratch = Scratch()
    if layers["mountns"]:
        # The candidates' own view: the run's files hidden, fresh writable temporary directories.
        try:
            libc.unshare(CLONE_NEWNS)
            exposed = outermost([*stdlib_dirs(), *site_dirs])
            covers = [*hide]
            if os.geteuid() == 0 and not layers["userns"]:
                covers += [blocking_ancestor(d) or "" for d in exposed]
            for path in outermost([c for c in covers if c and os.path.isdir(c)]):
                cover(libc, path, [d for d in exposed if is_under(d, path)])
            for path in SCRATCH_DIRS:
                if os.path.isdir(path):
                    keep = [d for d in exposed if is_under(d, path)]
                    cover(libc, path, keep, writable=True)
                    scratch.add(path)
        except OSError:
            layers["rofs"] = False
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1)
    gc.collect()
    gc.freeze()  # forked candidates then never copy the preloaded heap through the collector
    spawner = Spawner(libc, layers, site_dirs)
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
            job: CandidateJob = json.loads(message)
            calls_before = bytes(calls[:SHARED_BYTES])  # read before the candidate can be called
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
            reap_all()


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
            for entry in scan(stack.pop()):
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
            for entry in scan(directory):
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


class Spawner:
    """K's source of standby candidates: through T, which it starts again if T has died, with a
    few retries when the system is short of processes (a fork bomb in another slot). When no
    candidate can be had, K exits: Z then stops too, and the pool replaces the whole slot
    instead of answering every later job with an error.
    """

    ATTEMPTS = 8

    def __init__(self, libc: Libc, layers: Layers, site_dirs: list[str]) -> None:
        self._args = (libc, layers, site_dirs)
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

    def __init__(self, template: Template, layers: Layers) -> None:
        self.workdir = make_private_dir("passk-")
        self.drop = os.geteuid() == 0 and not layers["userns"]
        if self.drop:
            os.chown(self.workdir, NOBODY, NOBODY)
        self.sock, theirs = socket.socketpair()
        #: Shared with the candidate: raised while it imports a module (:class:`ImportClock`).
        #: The candidate can write anything here; it only ever buys itself time up to the wall
        #: limit, which a sleeper gets anyway.
        shared = shared_file(self.workdir)
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


def supervise(job: CandidateJob, candidate: Standby, channel: int, done: int,
              layers: Layers, calls: mmap.mmap, seen: bytes) -> None:  # fmt: skip
    """K: watch the candidate; kill it when it exceeds its CPU budget (for the whole test or for
    one call) or its wall limit, or when the judge is finished, whichever comes first.
    """
    from select import select  # K's own: T, and so every candidate, never imports it

    pid = candidate.pid
    started = time.monotonic()
    cpu_limit, wall_limit = float(job["cpu_limit"]), float(job["wall_limit"])
    call_limit = float(job["call_limit"])
    end: End | None = None
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
            if os.read(done, 64):  # LOADED
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
        counter = bytes(calls[:SHARED_BYTES])
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
        kill_tree(pid, status is None, spare=candidate.template)
    if end is not None:
        with contextlib.suppress(OSError):
            os.write(channel, plain.dumps(end))
    candidate.imports.close()
    remove_tree(candidate.workdir)
