"""T, the template (trusted): clones each candidate for K, so that K's own pages stay unshared.

A clone write-protects every page of the process that makes it: K, busy between clones, would
then copy a few hundred pages per candidate, while T's loop touches a handful. T is forked from K
once (:class:`Template` is K's handle on it); for each :class:`~..protocol.CloneRequest` it clones
a candidate as K's child (``CLONE_PARENT``) and answers with its PID.
"""

from __future__ import annotations

import errno
import gc
import json
import mmap
import os
import signal
import socket
import sys
from typing import Any

from .. import plain
from ..protocol import (
    OUTPUT_LIMIT,
    SAFE_ENV,
    CandidateJob,
    CloneRequest,
    Layers,
    decode_pid,
    encode_pid,
    recv_frame,
    send_frame,
)
from .candidate import CANDIDATE_MODULE, candidate_main, serve
from .linux import CLONE_NEWPID, CLONE_PARENT, PR_SET_DUMPABLE, PR_SET_PDEATHSIG, Libc
from .text import CappedSink


class Template:
    """K's handle on T, the process that clones candidates (see the module docstring)."""

    def __init__(self, libc: Libc, layers: Layers, site_dirs: list[str]) -> None:
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
        request: CloneRequest = {"workdir": workdir, "drop": drop}
        send_frame(self.sock, json.dumps(request).encode(), [channel.fileno(), imports])
        reply = b""
        while len(reply) < 8:
            more = self.sock.recv(8 - len(reply))
            if not more:
                raise OSError(errno.EPIPE, "the candidate template is gone")
            reply += more
        pid = decode_pid(reply)
        if pid < 0:
            raise OSError(-pid, f"clone: {os.strerror(-pid)}")
        return pid


def template_main(control: socket.socket, libc: Libc, layers: Layers,
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
        request: CloneRequest = json.loads(message)
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
        control.sendall(encode_pid(pid))


def scrub_environment() -> None:
    """T: keep only :data:`~..protocol.SAFE_ENV` in the environment every candidate inherits (the
    pool started the worker with little more; this holds whatever Z and K may have added).
    """
    env = {key: value for key, value in os.environ.items() if key in SAFE_ENV}
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
    job: CandidateJob = {
        "program": WARM_PROGRAM,
        "cpu_limit": 1.0,
        "call_limit": 1.0,
        "wall_limit": 1.0,
        "memory_bytes": 0,
        "file_bytes": 0,
        "processes": 0,
        "measure": False,
    }
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
