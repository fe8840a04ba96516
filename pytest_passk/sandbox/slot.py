"""One pool slot: a sandbox worker process (Z) and the pipe pair the pool speaks to it over.

Each slot is a fresh ``python -I -S -B -c BOOT`` (never a fork of pytest, so it never copies a
model's memory) with a scrubbed environment. The pool compiles the worker's modules
(:data:`pytest_passk.sandbox.inside.MODULES`) and sends their code objects on the worker's stdin,
followed by a :class:`~pytest_passk.sandbox.protocol.WorkerConfig` line; then one
:class:`~pytest_passk.sandbox.protocol.JobRequest` line per job, each answered by one
:class:`~pytest_passk.sandbox.protocol.JudgeResult` line.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import marshal
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from pytest_passk.sandbox.inside import MODULES
from pytest_passk.sandbox.protocol import (
    SAFE_ENV,
    JobRequest,
    JudgeResult,
    Layers,
    WorkerConfig,
    read_layers,
)

__all__ = ["BOOT", "START_TIMEOUT", "Slot", "safe_environment", "worker_code"]

SANDBOX_DIR = Path(__file__).parent
#: The package name the worker registers its modules under (``-I -S``: the real package is not
#: importable there, and a decorated task's test may import it for itself).
WORKER_PACKAGE = "_passk_sandbox"
#: The ``__name__`` each module runs under in the worker: as before the modules were split (the
#: codec as ``_passk_plain``, the rest as the one ``__main__`` script), so that what a verdict
#: says of the harness's own exception types reads as it always has.
WORKER_NAMES = {"plain": "_passk_plain"}
#: How a worker starts: from the code objects of :data:`~pytest_passk.sandbox.inside.MODULES`,
#: compiled by the pool and sent on the worker's stdin, each a module of :data:`WORKER_PACKAGE`
#: (relative imports between them resolve there). Compiling them in the worker would leave about
#: 4 MB of the compiler's memory resident, and each candidate's clone pays for every resident page.
BOOT = (
    "import marshal, sys\n"
    "if sys.version_info[:2] != {version}:\n"
    "    import json\n"
    "    got = '%d.%d' % sys.version_info[:2]\n"
    "    error = 'the sandbox runs Python ' + got + ', pytest runs {version[0]}.{version[1]}'\n"
    "    print(json.dumps({{'error': error + ': they must be one version'}}), flush=True)\n"
    "    raise SystemExit(1)\n"
    "def boot(stdin, modules):\n"
    "    for package in ({root!r}, {root!r} + '.inside'):\n"
    "        sys.modules[package] = type(sys)(package)\n"
    "        sys.modules[package].__path__ = []\n"
    "    for name in {modules!r}:\n"
    "        code = marshal.loads(stdin.read(int(stdin.readline())))\n"
    "        full = {root!r} + '.' + name\n"
    "        parent, _, leaf = full.rpartition('.')\n"
    "        module = type(sys)({names!r}.get(name, '__main__'))\n"
    "        module.__file__ = code.co_filename\n"
    "        module.__package__ = parent\n"
    "        sys.modules[full] = module\n"
    "        setattr(sys.modules[parent], leaf, module)\n"
    "        exec(code, module.__dict__)\n"
    "    return module\n"
    "zygote = boot(sys.stdin.buffer, {modules!r})\n"
    "del boot\n"
    "zygote.main()\n"
).format(
    version=tuple(sys.version_info[:2]), root=WORKER_PACKAGE, modules=MODULES, names=WORKER_NAMES
)
#: The code (about 140 KB) fits in the pipe, where the kernel lets it grow: starting a worker
#: then never waits for it to read.
BOOT_PIPE_BYTES = 1 << 18
START_TIMEOUT = 20.0


def worker_code() -> bytes:
    """The worker's modules' code, marshalled and length-prefixed, as :data:`BOOT` reads it."""
    parts = []
    for name in MODULES:
        path = SANDBOX_DIR.joinpath(*name.split(".")).with_suffix(".py")
        source = path.read_text(encoding="utf-8")
        code = marshal.dumps(compile(source, str(path), "exec", dont_inherit=True, optimize=0))
        parts.append(b"%d\n" % len(code) + code)
    return b"".join(parts)


def safe_environment() -> dict[str, str]:
    """The worker's environment: only :data:`~pytest_passk.sandbox.protocol.SAFE_ENV`."""
    return {key: os.environ[key] for key in SAFE_ENV if key in os.environ}


class Slot:
    """One zygote process and the pipe pair the pool talks to it over."""

    def __init__(self, python: str, env: dict[str, str], config: WorkerConfig, code: bytes) -> None:
        self.proc = subprocess.Popen(
            [python, "-I", "-S", "-B", "-c", BOOT],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd="/",
            env=env,
            start_new_session=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in = self.proc.stdin
        self._out = self.proc.stdout.fileno()
        self._buffer = b""
        #: The worker closed its end: it has exited (or is exiting).
        self.gone = False
        with contextlib.suppress(OSError):
            fcntl.fcntl(self._in.fileno(), fcntl.F_SETPIPE_SZ, BOOT_PIPE_BYTES)
        self._in.write(code + json.dumps(config).encode() + b"\n")
        self._in.flush()
        self.layers: Layers | None = None
        #: The worker's directory in the host's /tmp (only without a mount namespace).
        self.scratch: str | None = None

    def hello(self, timeout: float) -> Layers:
        """Wait for the worker's :class:`~pytest_passk.sandbox.protocol.Hello`; its layers."""
        message = self.receive(time.monotonic() + timeout)
        if message is not None and "error" in message:  # a StartError
            raise OSError(str(message["error"]))
        if message is None or "hello" not in message:
            raise OSError("the sandbox worker did not start")
        said = message["hello"]
        layers = read_layers(said if isinstance(said, dict) else {})
        self.layers = layers
        if not layers["mountns"]:
            self.scratch = str(message.get("scratch") or "") or None
        return layers

    def send(self, job: JobRequest) -> None:
        """One job for the worker."""
        self._in.write(json.dumps(job).encode() + b"\n")
        self._in.flush()

    def result(self, deadline: float) -> JudgeResult | None:
        """The worker's verdict on the job sent last; ``None`` if none came by ``deadline``."""
        message = self.receive(deadline)
        return message  # type: ignore[return-value]  # checked by the pool's to_verdict

    def receive(self, deadline: float) -> dict[str, Any] | None:
        """The worker's next line, as a JSON object; ``None`` at ``deadline`` or its exit."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._out], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(self._out, 1 << 16)
            if not chunk:
                self.gone = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        return message if isinstance(message, dict) else None

    def kill(self) -> None:
        """Stop the worker and everything under it; remove its scratch in the host's /tmp."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self._in.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5.0)
        with contextlib.suppress(OSError):
            self.proc.stdout.close()  # type: ignore[union-attr]
        if self.scratch is not None and os.path.basename(self.scratch).startswith("passk-"):
            shutil.rmtree(self.scratch, ignore_errors=True)
