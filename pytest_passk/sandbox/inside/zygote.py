"""Z, the zygote (trusted): the process the pool starts; sets up isolation and judges jobs.

Process tree, per pool slot::

    Z   zygote and judge (trusted): sets up the namespaces once, reads jobs from the pool, and
    │   runs each task's test itself (:mod:`.judge`), with a stub candidate whose calls go to C
    └── K   clean zygote and supervisor (trusted, :mod:`.supervisor`): forked before the first
        │   job, so its memory never held a test; keeps one candidate process cloned ahead,
        │   enforces CPU and wall limits, kills the candidate's PID namespace when the judge is done
        ├── T   template (trusted, :mod:`.template`): forked from K once; clones each candidate
        │       for K, as K's child
        └── C   candidate (untrusted, :mod:`.candidate`): PID 1 of its own PID namespace, uid
                nobody, rlimits; loads the program and answers the judge's calls

The pool starts Z as ``python -I -S -B -c BOOT`` and sends it the code objects of
:mod:`~..protocol`, :mod:`~..plain` and of this package's modules, then a
:class:`~..protocol.WorkerConfig` line (see :mod:`pytest_passk.sandbox.slot`); BOOT calls
:func:`main`. What crosses between the processes is in :mod:`pytest_passk.sandbox.protocol`.
"""

from __future__ import annotations

import gc
import io
import json
import mmap
import os
import socket
import sys
import time
import types
from typing import Any

from .. import plain
from ..protocol import (
    OUTPUT_LIMIT,
    CandidateJob,
    FunctionSpec,
    Hello,
    JobRequest,
    JudgeResult,
    WorkerConfig,
    no_layers,
    send_frame,
)
from .judge import judge, verdict
from .linux import JUDGE_TMP, Libc, make_private_dir, null_stdio, setup_namespaces
from .supervisor import clean_zygote
from .text import CappedSink, first_line, format_traceback


def import_test_module(test: FunctionSpec) -> Any:
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


def run_job(job: JobRequest, control: socket.socket, compiled: dict[str, types.CodeType],
            calls: mmap.mmap, supervisor: int) -> JudgeResult:  # fmt: skip
    """Z: hand the program to K and judge it here, with a stub candidate that calls it in C.

    The judge runs in the zygote itself (no fork per job): it is trusted code, every job gets a
    fresh namespace, and a test that hangs makes the pool kill and replace the whole slot.
    """
    test_function = None
    test = job["test"]
    if test["kind"] == "function":
        try:
            test_function = import_test_module(test)
        except BaseException as exc:
            return verdict(
                "error", f"the test module failed to import: {first_line(exc)}",
                format_traceback(exc),
            )  # fmt: skip
    judge_sock, candidate_sock = socket.socketpair()
    done_read, done_write = os.pipe()
    # The program and its limits; the test never reaches K nor the candidate.
    clean: CandidateJob = {
        "program": job["program"],
        "cpu_limit": job["cpu_limit"],
        "call_limit": job["call_limit"],
        "wall_limit": job["wall_limit"],
        "memory_bytes": job["memory_bytes"],
        "file_bytes": job["file_bytes"],
        "processes": job["processes"],
        "measure": job["measure"],
    }
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
    if result.pop("lost", False):
        if not _alive(supervisor):
            os._exit(5)  # K is gone: so goes this slot, and the pool judges it on a fresh one
        result = verdict("error", "the candidate shut its channel down before the test finished")
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
    config: WorkerConfig = json.loads(sys.stdin.buffer.readline())
    libc = Libc()
    layers = no_layers()
    if config["namespaces"]:
        layers = setup_namespaces(libc)
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
        clean_zygote(control_child, libc, layers, config["hide"], config["site_dirs"], calls)
    control_child.close()
    os.chdir(make_private_dir("judge-", scratch))  # the judge's scratch (hypothesis's database)
    gc.collect()
    gc.freeze()
    # The protocol moves to private descriptors: a test that prints to, or reads from, fds 0-2
    # cannot corrupt it.
    out = os.fdopen(os.dup(1), "wb")
    inp = os.fdopen(os.dup(0), "rb")
    null_stdio((0, 1, 2))
    sys.stdin = io.StringIO()
    hello: Hello = {"hello": layers, "scratch": scratch}
    out.write(plain.dumps(hello))
    out.flush()
    compiled: dict[str, types.CodeType] = {}  # each task's test, compiled once
    for line in inp:
        job: JobRequest = json.loads(line)
        try:
            result = run_job(job, control, compiled, calls, clean_pid)
        except BaseException as exc:
            result = verdict("error", f"the sandbox failed: {first_line(exc)}")
            result["harness"] = True
        out.write(plain.dumps(result))
        out.flush()
    os._exit(0)
