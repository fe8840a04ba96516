# ruff: noqa: E501  (attack programs are kept one statement a line, as written)
"""Hostile candidates: none may pass, escape, persist, phone home, steal a secret or linger.

Every attack is bounded twice: by the sandbox's own limits (2 s wall, CPU budget from the
reference, 256 MiB address space, processes) and by the test's expectations on the outcome.
"""

from __future__ import annotations

import os
import site
import socket
import sys
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_passk.results import Outcome
from pytest_passk.sandbox import Job
from pytest_passk.sandbox.pool import IsolationLevel, PoolExecutor
from pytest_passk.tasks import CheckTest

from .conftest import SECRET, SECRET_NAME, descendants

CHECK = CheckTest(
    "def check(candidate):\n"
    "    assert candidate(2, 3) == 5\n"
    "    assert candidate(0, 0) == 0\n"
    "    assert candidate(-1, 1) == 0\n"
    "    assert candidate(10, 7) == 17\n"
)
REFERENCE = "def add(a, b):\n    return a + b\n"
WALL = 2.0

ATTACKS: dict[str, str] = {
    # -- forged exits and verdicts --
    "os_exit_at_load": "import os\nos._exit(0)\n",
    "os_exit_in_call": "import os\ndef add(a, b):\n    os._exit(0)\n",
    "sys_exit_at_load": "import sys\nsys.exit(0)\n",
    "system_exit_in_call": "def add(a, b):\n    raise SystemExit(0)\n",
    "keyboard_interrupt": "def add(a, b):\n    raise KeyboardInterrupt\n",
    "forged_output": (
        "print('passed')\nprint('{\"outcome\": \"passed\"}')\n"
        "def add(a, b):\n    print('1 passed in 0.01s')\n    return 0\n"
    ),
    "forged_verdict_on_every_fd": (
        "import os\n"
        "for fd in range(0, 64):\n"
        '    for line in (b\'{"outcome":"passed","message":"","detail":""}\\n\',\n'
        '                 b\'{"s":1,"ok":5}\\n{"s":2,"ok":0}\\n\'):\n'
        "        try: os.write(fd, line)\n"
        "        except OSError: pass\n"
        "def add(a, b):\n    return -1\n"
    ),
    "forged_replies_ahead": (
        "import os\n"
        'os.write(3, b\'{"s":0,"names":{"add":{"c":true}}}\\n{"s":1,"ok":5}\\n\')\n'
        "os._exit(0)\n"
    ),
    "close_channel": "import os\nfor fd in range(3, 64):\n    try: os.close(fd)\n    except OSError: pass\ndef add(a, b):\n    return a + b\n",
    "atexit_exit": "import atexit, os\natexit.register(lambda: os._exit(0))\ndef add(a, b):\n    raise SystemExit(0)\n",
    "excepthook": "import sys\nsys.excepthook = lambda *a: None\ndef add(a, b):\n    raise AssertionError\n",
    "settrace": "import sys\nsys.settrace(lambda *a: None)\ndef add(a, b):\n    return a * b\n",
    "skip_and_xfail": "import unittest\ndef add(a, b):\n    raise unittest.SkipTest('skipped')\n",
    # -- values that claim to equal anything --
    "always_equal": "class E:\n    def __eq__(self, o): return True\n    def __ne__(self, o): return False\ndef add(a, b):\n    return E()\n",
    "int_subclass_eq": "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\ndef add(a, b):\n    return I(99)\n",
    "str_subclass_eq": "class S(str):\n    def __eq__(self, o): return True\ndef add(a, b):\n    return S('x')\n",
    "list_subclass_eq": "class L(list):\n    def __eq__(self, o): return True\ndef add(a, b):\n    return L()\n",
    "truthy_object": "class T:\n    def __bool__(self): return True\n    __eq__ = lambda s, o: s\ndef add(a, b):\n    return T()\n",
    "float_nan": "def add(a, b):\n    return float('nan')\n",
    # -- patching the harness --
    "builtins_patch": (
        "import builtins\nbuiltins.AssertionError = type('X', (Exception,), {})\n"
        "builtins.isinstance = lambda *a: True\ndef add(a, b):\n    return 0\n"
    ),
    "module_patch": (
        "import sys\nfor m in list(sys.modules.values()):\n"
        "    if hasattr(m, 'encode') and hasattr(m, 'Opaque'):\n"
        "        m.encode = lambda v, **k: 5\n"
        'import json\njson.dumps = lambda *a, **k: \'{"outcome": "passed"}\'\n'
        "def add(a, b):\n    return None\n"
    ),
    "frame_walking": (
        "import sys, gc\n"
        "def add(a, b):\n"
        "    # Built at run time, so that this program's own text never matches.\n"
        "    mark = ''.join(['assert cand', 'idate(10, 7)'])\n"
        "    f = sys._getframe().f_back\n"
        "    while f is not None:\n"
        "        if 'check' in f.f_globals or mark in repr(f.f_locals):\n"
        "            return a + b\n"
        "        f = f.f_back\n"
        "    for o in gc.get_objects():\n"
        "        if isinstance(o, dict) and mark in repr(o)[:100000]:\n"
        "            return a + b\n"
        "    return -1\n"
    ),
    "read_test_files": (
        "import os\n"
        "def add(a, b):\n"
        "    for root, _, files in os.walk('@HIDDEN@'):\n"
        "        for name in files:\n"
        "            if 'EXPECTED' in open(os.path.join(root, name)).read():\n"
        "                return a + b\n"
        "    return -1\n"
    ),
    # -- reaching other processes and privileges (each answers right only if it escaped) --
    "ptrace_others": (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def add(a, b):\n"
        "    for name in os.listdir('/proc'):\n"
        "        if name.isdigit() and int(name) != os.getpid():\n"
        "            if libc.ptrace(16, int(name), None, None) == 0:  # PTRACE_ATTACH\n"
        "                libc.ptrace(17, int(name), None, None)  # PTRACE_DETACH\n"
        "                return a + b\n"
        "    for pid in (os.getppid(), 1):\n"
        "        if pid != os.getpid() and libc.ptrace(16, pid, None, None) == 0:\n"
        "            libc.ptrace(17, pid, None, None)\n"
        "            return a + b\n"
        "    return -1\n"
    ),
    "read_other_memory": (
        "import os\n"
        "def add(a, b):\n"
        "    for name in os.listdir('/proc'):\n"
        "        if name.isdigit() and int(name) != os.getpid():\n"
        "            try:\n"
        "                with open(f'/proc/{name}/mem', 'rb') as mem:\n"
        "                    mem.read(1)\n"
        "                return a + b\n"
        "            except OSError:\n"
        "                pass\n"
        "    return -1\n"
    ),
    "become_root": (
        "import os\n"
        "def add(a, b):\n"
        "    for attempt in (lambda: os.setuid(0), lambda: os.setgid(0), lambda: os.seteuid(0)):\n"
        "        try:\n"
        "            attempt()\n"
        "            return a + b\n"
        "        except OSError:\n"
        "            pass\n"
        "    return -1\n"
    ),
    "remount_root_writable": (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def add(a, b):\n"
        "    # MS_REMOUNT | MS_BIND on /: a writable root would let persistence through\n"
        "    if libc.mount(None, b'/', None, 32 | 4096, None) == 0:\n"
        "        return a + b\n"
        "    if libc.unshare(0x00020000) == 0:  # CLONE_NEWNS\n"
        "        return a + b\n"
        "    return -1\n"
    ),
    "abstract_unix_sockets": (
        "import socket\n"
        "def add(a, b):\n"
        "    try:\n"
        "        lines = open('/proc/net/unix').read().splitlines()[1:]\n"
        "    except OSError:\n"
        "        return -1\n"
        "    for line in lines:\n"
        "        path = line.split()[-1] if len(line.split()) > 7 else ''\n"
        "        if path.startswith('@'):\n"
        "            s = socket.socket(socket.AF_UNIX)\n"
        "            s.settimeout(0.2)\n"
        "            try:\n"
        "                s.connect('\\0' + path[1:])\n"
        "                return a + b\n"
        "            except OSError:\n"
        "                pass\n"
        "            finally:\n"
        "                s.close()\n"
        "    return -1\n"
    ),
    # -- resources --
    "fork_bomb": (
        "import os\ndef add(a, b):\n"
        "    for _ in range(100000):\n"
        "        try: os.fork()\n"
        "        except OSError: pass\n"
        "    return -1\n"
    ),
    "memory_bomb": "def add(a, b):\n    x = bytearray(8 * 1024 ** 3)\n    return a + b\n",
    "memory_creep": "def add(a, b):\n    x = []\n    while True:\n        x.append(bytearray(10 ** 7))\n",
    "recursion_bomb": "import sys\nsys.setrecursionlimit(10 ** 8)\ndef add(a, b):\n    return add(a, b) + 1\n",
    "output_bomb": "import os, sys\ndef add(a, b):\n    while True:\n        print('x' * 100000)\n        os.write(1, b'y' * 100000)\n        os.write(2, b'z' * 100000)\n",
    "disk_bomb": "def add(a, b):\n    with open('big', 'wb') as f:\n        while True:\n            f.write(b'x' * 10 ** 6)\n",
    "cpu_loop": "def add(a, b):\n    while True:\n        pass\n",
    "loop_while_loading": "while True:\n    pass\n",
    "spinning_thread": (
        "import threading\n"
        "def spin():\n    while True:\n        pass\n"
        "def add(a, b):\n    threading.Thread(target=spin).start()\n    spin()\n"
    ),
    "signal_ignoring_sleeper": (
        "import signal, time\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):\n"
        "    signal.signal(s, signal.SIG_IGN)\n"
        "def add(a, b):\n    time.sleep(1000)\n"
    ),
    "non_daemon_thread": (
        "import threading, time\n"
        "threading.Thread(target=time.sleep, args=(1000,)).start()\n"
        "def add(a, b):\n    return a - b\n"
    ),
    "daemonised_grandchild": (
        "import os, time\n"
        "def add(a, b):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        if os.fork() == 0:\n"
        "            time.sleep(1000)\n"
        "        os._exit(0)\n"
        "    return a - b\n"
    ),
    # -- the file system --
    "write_outside": "def add(a, b):\n    open('@OUTSIDE@/written.txt', 'w').write('pwned')\n    return 0\n",
    "delete_outside": "import os\ndef add(a, b):\n    os.remove('@OUTSIDE@/sentinel.txt')\n    return 0\n",
    "write_tmp": "def add(a, b):\n    open('/tmp/passk-attack-was-here', 'w').write('pwned')\n    return 0\n",
    "pth_persistence": "def add(a, b):\n    open('@SITE@/passk_attack.pth', 'w').write('import os\\n')\n    return 0\n",
    "sitecustomize_persistence": "def add(a, b):\n    open('@STDLIB@/sitecustomize.py', 'w').write('x = 1\\n')\n    return 0\n",
    "conftest_persistence": "def add(a, b):\n    open('@OUTSIDE@/conftest.py', 'w').write('x = 1\\n')\n    return 0\n",
    # -- the network, secrets and other processes --
    "network_connect": (
        "import socket\ndef add(a, b):\n"
        "    s = socket.socket()\n    s.settimeout(1)\n    s.connect(('127.0.0.1', @PORT@))\n"
        "    return a + b\n"
    ),
    "secret_environ": f"import os\ndef add(a, b):\n    raise ValueError(str(dict(os.environ)) + os.environ['{SECRET_NAME}'])\n",
    "secret_proc_environ": (
        "import os\ndef add(a, b):\n"
        "    found = []\n"
        "    for pid in os.listdir('/proc'):\n"
        "        try: found.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        "        except Exception: pass\n"
        "    raise ValueError(' '.join(found)[-3000:])\n"
    ),
    "kill_parent": (
        "import os, signal\ndef add(a, b):\n"
        "    for pid in (os.getppid(), 1, -1):\n"
        "        try: os.kill(pid, signal.SIGKILL)\n"
        "        except OSError: pass\n"
        "    os.killpg(0, signal.SIGKILL)\n"
    ),
    "kill_every_pid": (
        "import os, signal\ndef add(a, b):\n"
        "    for pid in range(2, 5000):\n"
        "        try: os.kill(pid, signal.SIGKILL)\n"
        "        except OSError: pass\n"
        "    return 0\n"
    ),
    # -- the channel to the judge --
    "forge_lost_frame": (
        "import os\n"
        "for fd in range(3, 64):\n"
        '    try: os.write(fd, b\'{"end":"lost"}\\n\')\n'
        "    except OSError: pass\n"
        "def add(a, b):\n    return a + b\n"
    ),
    "shutdown_channel": (
        "import socket\n"
        "def add(a, b):\n"
        "    for fd in range(3, 64):\n"
        "        try: s = socket.socket(fileno=fd)\n"
        "        except OSError: continue\n"
        "        try: s.shutdown(socket.SHUT_RDWR)\n"
        "        except OSError: pass\n"
        "        s.detach()\n"
        "    return a + b\n"
    ),
    "reply_over_frame_limit": "def add(a, b):\n    return 'x' * (17 * 2**20)\n",
    # -- CPU out of the budget's sight --
    "cpu_in_grandchildren": (
        "import os, time\n"
        "def add(a, b):\n"
        "    if os.fork() == 0:\n"
        "        for _ in range(40):\n"
        "            pid = os.fork()\n"
        "            if pid == 0:\n"
        "                end = time.process_time() + 0.04\n"
        "                while time.process_time() < end: pass\n"
        "                os._exit(0)\n"
        "            os.waitpid(pid, 0)\n"
        "        os._exit(0)\n"
        "    os.wait()\n"
        "    return a + b\n"
    ),
}


#: Attacks that would do real harm where the sandbox is weaker than strict (network, files,
#: signals as your own uid): run only where they are contained.
NEEDS_STRICT = frozenset(
    {
        "network_connect", "write_outside", "delete_outside", "write_tmp", "pth_persistence",
        "sitecustomize_persistence", "conftest_persistence", "kill_parent", "kill_every_pid",
        "secret_proc_environ", "read_test_files", "fork_bomb", "daemonised_grandchild",
        "ptrace_others", "read_other_memory", "become_root", "remount_root_writable",
        "abstract_unix_sockets",
    }
)  # fmt: skip


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    state = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                stat = path.stat()
                state[str(path)] = (stat.st_size, stat.st_mtime_ns)
    return state


def _process_counts(pool: PoolExecutor) -> dict[int, int]:
    """Processes under each pool slot: its zygotes and one standby candidate, nothing else."""
    return {slot.proc.pid: len(descendants(slot.proc.pid)) for slot in pool._slots}


def _steady(pool: PoolExecutor) -> dict[int, int]:
    """A quiet slot: its zygote (when a PID namespace wraps it), the clean zygote, the template
    that clones candidates, one standby.
    """
    return {slot.proc.pid: 4 if pool.layers.get("pidns") else 3 for slot in pool._slots}


def _settled(pool: PoolExecutor, expected: dict[int, int]) -> dict[int, int]:
    # The kernel tears a killed fork bomb's few hundred processes down in well under a second
    # on an idle machine, but took over 5 s at load average 20: wait long, return at once.
    deadline = time.monotonic() + 60.0
    while True:
        now = _process_counts(pool)
        if now == expected or time.monotonic() > deadline:
            return now
        time.sleep(0.05)


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_attack_never_passes_and_leaves_no_trace(
    name: str, pool: PoolExecutor, tmp_path: Path, hidden_dir: Path, listener: socket.socket
) -> None:
    if name in NEEDS_STRICT and pool.level < IsolationLevel.STRICT:
        pytest.skip(f"runs only under strict isolation (this host: {pool.level.label})")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sentinel.txt").write_text("keep me")
    site_dir = Path(site.getsitepackages()[0])
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    program = (
        ATTACKS[name]
        .replace("@OUTSIDE@", str(outside))
        .replace("@HIDDEN@", str(hidden_dir))
        .replace("@SITE@", str(site_dir))
        .replace("@STDLIB@", str(stdlib))
        .replace("@PORT@", str(listener.getsockname()[1]))
    )
    before = _snapshot(outside, hidden_dir)
    # Some interpreters ship one (Debian's): what must not change is its content.
    sitecustomize = stdlib / "sitecustomize.py"
    sitecustomize_before = sitecustomize.read_bytes() if sitecustomize.exists() else None
    started = time.monotonic()

    (verdict,) = pool.run([Job(program, CHECK, "add", WALL, reference=REFERENCE)])

    assert verdict.outcome is not Outcome.PASSED, verdict
    assert time.monotonic() - started < 4 * WALL + 5
    assert os.getpid() > 0 and os.getppid() != 1  # pytest (and its parent) survived
    assert SECRET not in verdict.message + verdict.detail
    with pytest.raises(BlockingIOError):
        listener.accept()
    assert _snapshot(outside, hidden_dir) == before
    assert not (site_dir / "passk_attack.pth").exists()
    assert (sitecustomize.read_bytes() if sitecustomize.exists() else None) == sitecustomize_before
    assert not Path("/tmp/passk-attack-was-here").exists()
    assert _settled(pool, _steady(pool)) == _steady(pool)  # nothing of the run remains


def test_the_reference_passes_on_the_same_pool(pool: PoolExecutor) -> None:
    (verdict,) = pool.run([Job(REFERENCE, CHECK, "add", WALL, reference=REFERENCE)])
    assert verdict.outcome is Outcome.PASSED, verdict


def test_there_are_at_least_thirty_distinct_attacks() -> None:
    assert len(set(ATTACKS.values())) >= 30
    assert set(ATTACKS) >= NEEDS_STRICT


def test_candidates_run_unprivileged_and_offline(pool: PoolExecutor) -> None:
    if pool.level.label != "strict":
        pytest.skip(f"isolation here is {pool.level.label}")
    probe = (
        "import os, socket\n"
        "def add(a, b):\n"
        "    assert os.getuid() == 65534\n"
        "    assert os.getpid() == 1\n"
        "    assert [n for n in socket.if_nameindex() if n[1] != 'lo'] == []\n"
        f"    assert '{SECRET_NAME}' not in os.environ\n"
        "    return a + b\n"
    )
    (verdict,) = pool.run([Job(probe, CHECK, "add", WALL, reference=REFERENCE)])
    assert verdict.outcome is Outcome.PASSED, verdict
    assert sys.platform == "linux"


# -- shapes: handles, views, iteration, write-back, callbacks (docs/tasks.md, "What crosses") --

ALWAYS_EQUAL = (
    "class E:\n"
    "    def __eq__(self, other): return True\n"
    "    def __ne__(self, other): return False\n"
    "    def __hash__(self): return 0\n"
    "    def __bool__(self): return True\n"
)
FIND_PLAIN = (
    "import sys\n"
    "plain = next(m for m in list(sys.modules.values()) if hasattr(m, 'view') and hasattr(m, 'TAG'))\n"
)
#: The candidate's end of its channel to the judge (a socket among its few descriptors).
CHANNEL = "import os, stat, time\nchannel = next(fd for fd in range(3, 64) if _is_socket(fd))\n"
IS_SOCKET = (
    "import os, stat\n"
    "def _is_socket(fd):\n"
    "    try: return stat.S_ISSOCK(os.fstat(fd).st_mode)\n"
    "    except OSError: return False\n"
)
CHECK_METHOD = "def check(candidate):\n    box = candidate()\n    assert box.get() == 5\n    assert box.get() != 6\n"
CHECK_ITER = "import itertools\ndef check(candidate):\n    assert list(itertools.islice(candidate(3), 3)) == [0, 1, 2]\n"
CHECK_POINT = (
    "from dataclasses import dataclass\n"
    "@dataclass\nclass P:\n    x: int\n    y: int\n"
    "def check(candidate):\n    assert candidate(1) == P(1, 2)\n    assert candidate(2) == P(2, 3)\n"
)
CHECK_SORT = "def check(candidate):\n    xs = [3, 1, 2]\n    assert candidate(xs) is None\n    assert xs == [1, 2, 3]\n"
CHECK_KEY = "def check(candidate):\n    assert candidate([3, -1, 2], abs) == [-1, 2, 3]\n"
CHECK_CALLBACK_ASSERTS = (
    "def check(candidate):\n"
    "    def must_be_positive(x):\n        assert x > 0\n        return x\n"
    "    assert candidate(must_be_positive, [1, -2]) == [1, -2]\n"
)
CHECK_WITH = "def check(candidate):\n    with candidate() as value:\n        assert value == 5\n"

#: name: (test, entry point, reference, hostile program)
SHAPE_ATTACKS: dict[str, tuple[str, str, str, str]] = {
    "handle_method_returns_always_equal": (
        CHECK_METHOD, "make", "class B:\n    def get(self): return 5\ndef make(): return B()\n",
        ALWAYS_EQUAL + "class B:\n    def get(self): return E()\ndef make(): return B()\n",
    ),
    "handle_is_always_equal": (
        CHECK_METHOD, "make", "class B:\n    def get(self): return 5\ndef make(): return B()\n",
        ALWAYS_EQUAL + "class B(E):\n    def get(self): return self\ndef make(): return B()\n",
    ),
    "generator_yields_always_equal": (
        CHECK_ITER, "f", "def f(n):\n    yield from range(n)\n",
        ALWAYS_EQUAL + "def f(n):\n    while True:\n        yield E()\n",
    ),
    "iterator_class_spoofs_int": (
        CHECK_ITER, "f", "def f(n):\n    yield from range(n)\n",
        ALWAYS_EQUAL + "class I(E):\n    __class__ = property(lambda s: int)\n"
        "class It:\n    def __iter__(self): return self\n    def __next__(self): return I()\n"
        "def f(n):\n    return It()\n",
    ),
    "class_spoofs_the_tests_dataclass": (
        CHECK_POINT, "f",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a): return P(a, a + 1)\n",
        ALWAYS_EQUAL + "import dataclasses\nclass P(E):\n    __class__ = property(lambda s: dataclasses.dataclass)\n"
        "    __dataclass_fields__ = {}\ndef f(a): return P()\n",
    ),
    "view_lies_through_its_dict": (
        CHECK_POINT, "f",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a): return P(a, a + 1)\n",
        ALWAYS_EQUAL + "class P(E):\n    __dict__ = property(lambda s: {'x': E(), 'y': E()})\ndef f(a): return P()\n",
    ),
    "view_patched_to_smuggle_a_handle": (
        CHECK_POINT, "f",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a): return P(a, a + 1)\n",
        ALWAYS_EQUAL + FIND_PLAIN
        + "plain.view = lambda v, other=None: {'#': 'view', 'k': 'dataclass', 't': 'P', 'v': [['x', {'#': 'handle', 'v': 0}], ['y', {'#': 'opaque', 'v': 'E'}]]}\n"
        "class P(E): pass\ndef f(a): return P()\n",
    ),
    "view_patched_to_an_unknown_tag": (
        CHECK_POINT, "f",
        "from dataclasses import dataclass\n@dataclass\nclass P:\n    x: int\n    y: int\ndef f(a): return P(a, a + 1)\n",
        ALWAYS_EQUAL + FIND_PLAIN
        + "plain.view = lambda v, other=None: {'#': 'any'}\nclass P(E): pass\ndef f(a): return P()\n",
    ),
    "write_back_of_always_equal_items": (
        CHECK_SORT, "f", "def f(xs):\n    xs.sort()\n",
        ALWAYS_EQUAL + "def f(xs):\n    xs[:] = [E() for _ in xs]\n",
    ),
    "write_back_forged_into_a_dict": (
        CHECK_SORT, "f", "def f(xs):\n    xs.sort()\n",
        IS_SOCKET + "def f(xs):\n" + "".join("    " + line + "\n" for line in CHANNEL.splitlines())
        + "    os.write(channel, b'{\"s\":1,\"ok\":null,\"w\":[[0,{\"#\":\"dict\",\"v\":[]}]]}\\n')\n    time.sleep(5)\n",
    ),
    "write_back_forged_past_the_arguments": (
        CHECK_SORT, "f", "def f(xs):\n    xs.sort()\n",
        IS_SOCKET + "def f(xs):\n" + "".join("    " + line + "\n" for line in CHANNEL.splitlines())
        + "    os.write(channel, b'{\"s\":1,\"ok\":null,\"w\":[[7,[1,2,3]]]}\\n')\n    time.sleep(5)\n",
    ),
    "write_back_huge": (
        CHECK_SORT, "f", "def f(xs):\n    xs.sort()\n",
        ALWAYS_EQUAL + "def f(xs):\n    xs[:] = [E()] * 200_000\n",
    ),
    "handle_flood": (
        CHECK_METHOD, "make", "class B:\n    def get(self): return 5\ndef make(): return B()\n",
        IS_SOCKET + CHANNEL
        + "items = ','.join('{\"#\":\"handle\",\"v\":%d}' % i for i in range(100_001))\n"
        "reply = ('{\"s\":1,\"ok\":[' + items + ']}\\n').encode()\n"
        "def make():\n    os.write(channel, reply)\n    time.sleep(5)\n",
    ),
    "callback_called_a_million_times": (
        CHECK_KEY, "f", "def f(xs, key):\n    return sorted(xs, key=key)\n",
        "def f(xs, key):\n    for i in range(10**6):\n        key(i)\n    return sorted(xs, key=key)\n",
    ),
    "callback_forged_index": (
        CHECK_KEY, "f", "def f(xs, key):\n    return sorted(xs, key=key)\n",
        IS_SOCKET + "def f(xs, key):\n" + "".join("    " + line + "\n" for line in CHANNEL.splitlines())
        + "    os.write(channel, b'{\"cb\":5,\"c\":1,\"args\":[1],\"kwargs\":{\"#\":\"dict\",\"v\":[]}}\\n')\n    time.sleep(5)\n",
    ),
    "callback_assertion_swallowed": (
        CHECK_CALLBACK_ASSERTS, "f", "def f(g, xs):\n    return xs\n",
        "def f(g, xs):\n    for x in xs:\n        try: g(x)\n        except BaseException: pass\n    return xs\n",
    ),
    "exit_suppresses_the_tests_assertion": (
        CHECK_WITH, "f",
        "class R:\n    def __enter__(self): return 5\n    def __exit__(self, *a): return False\ndef f(): return R()\n",
        "class R:\n    def __enter__(self): return 4\n    def __exit__(self, *a): return True\ndef f(): return R()\n",
    ),
    "own_exception_named_assertion_error": (
        CHECK_METHOD, "make", "class B:\n    def get(self): return 5\ndef make(): return B()\n",
        "class AssertionError(Exception): pass\nclass B:\n    def get(self): raise AssertionError('x')\ndef make(): return B()\n",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SHAPE_ATTACKS))
def test_shape_attack_never_passes(name: str, pool: PoolExecutor) -> None:
    check, entry_point, reference, program = SHAPE_ATTACKS[name]
    job = Job(program, CheckTest(check), entry_point, WALL, reference=reference)
    honest = Job(reference, CheckTest(check), entry_point, WALL, reference=reference)
    verdict, reference_verdict = pool.run([job, honest])
    assert reference_verdict.outcome is Outcome.PASSED, reference_verdict
    assert verdict.outcome is not Outcome.PASSED, verdict
