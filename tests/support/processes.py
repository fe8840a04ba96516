"""Running pytest in a subprocess that may start an engine: on a timeout, its whole process group
goes, not only the direct child (a vLLM engine's processes would otherwise outlive the test and
keep a CPU busy for the rest of the session).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence
from typing import Any


def run_in_group(
    args: Sequence[str], *, timeout: float, **options: Any
) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(args, capture_output=True, text=True, timeout=...)``, in a new
    session whose every process is killed when the timeout passes (then it raises as ``run``
    does).
    """
    with subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **options,
    ) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
