"""Linux primitives of the sandbox: namespaces, mounts, private directories, CPU clocks, reaping.

Stdlib only, like every module of :mod:`pytest_passk.sandbox.inside`. Nothing here decides a
verdict; the process roles (:mod:`.zygote`, :mod:`.supervisor`, :mod:`.template`,
:mod:`.candidate`) compose these.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import sys
import time

from ..protocol import Layers, no_layers

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
#: Where Z keeps its scratch under a read-only root: a private tmpfs.
JUDGE_TMP = "/dev/shm"


class Libc:
    """The libc calls Python does not wrap (unshare, mount, prctl, clone, capset)."""

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


def mount_points() -> list[tuple[str, int]]:
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


def setup_namespaces(libc: Libc) -> Layers:
    """Enter network, mount and PID namespaces (as root, or as root of a new user namespace).

    Returns the layers achieved. The calling process forks: the child continues as PID 1 of the
    new PID namespace, the original waits and exits with the child's status.
    """
    layers = no_layers()
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
        for target, flags in mount_points():
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


def is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def outermost(paths: list[str]) -> list[str]:
    """``paths`` without duplicates and without those inside another one."""
    unique = sorted(set(paths), key=len)
    kept: list[str] = []
    for path in unique:
        if not any(is_under(path, outer) for outer in kept):
            kept.append(path)
    return kept


def stdlib_dirs() -> list[str]:
    """Where this interpreter imports the standard library from (``-I -S``: nothing else)."""
    return [os.path.realpath(entry) for entry in sys.path if entry and os.path.isdir(entry)]


def blocking_ancestor(path: str) -> str | None:
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


def cover(libc: Libc, path: str, keep: list[str], *, writable: bool = False) -> None:
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


def scan(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except OSError:
        return []


def shared_file(workdir: str) -> int:
    """A file of K's that T's clone can map: a memfd, else an unlinked file in ``workdir``."""
    with contextlib.suppress(AttributeError, OSError):
        return os.memfd_create("passk-imports", os.MFD_CLOEXEC)
    path = os.path.join(workdir, ".passk-imports")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.unlink(path)
    return fd


def reap_all() -> None:
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
        total += cpu_seconds(node) + waited_for_cpu_seconds(node)
        todo.extend(children_of(node))
    return total


def children_of(pid: int) -> list[int]:
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


def waited_for_cpu_seconds(pid: int) -> float:
    """CPU time of the children ``pid`` has reaped (its stat's cutime and cstime)."""
    return stat_seconds(pid, 13)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process, all its threads together, to the nanosecond: its process CPU clock
    (the clock id that ``clock_getcpuclockid(pid)`` makes), else its stat in clock ticks.
    """
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # CPUCLOCK_SCHED of the process ``pid``
    except OSError:
        return stat_seconds(pid, 11)


def stat_seconds(pid: int, field: int) -> float:
    """The sum of two clock-tick fields of ``/proc/<pid>/stat`` from ``field`` on (counted after
    the command name): utime and stime at 11, cutime and cstime at 13.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[field]) + int(fields[field + 1])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def kill_tree(pid: int, alive: bool, spare: int) -> None:
    """Without a PID namespace: SIGKILL the candidate, its process group and every orphan this
    subreaper inherited (all of K's children but ``spare``, the template), and reap them.
    """
    if alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for _ in range(1000):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        others = set(children_of(os.getpid())) - {spare}
        for child in others:
            with contextlib.suppress(OSError):
                os.kill(child, signal.SIGKILL)
        reap_all()
        if not others:
            return
        time.sleep(0.001)


def null_stdio(fds: tuple[int, ...]) -> None:
    """Point ``fds`` (of 0, 1, 2) at /dev/null."""
    null = os.open(os.devnull, os.O_RDWR)
    for fd in fds:
        os.dup2(null, fd)
    os.close(null)
