"""The reference runner (trusted): a task's reference solution answers its generated inputs.

Stdlib and the plain-data codec only. Not a process of the candidates' sandbox (so not under
:mod:`.inside`): :mod:`pytest_passk.oracle` starts it as a fresh ``python -I -S -B`` (never a
fork of pytest) with a scrubbed environment, in a scratch directory, under an address-space
limit. It loads the reference's program, then reads one encoded argument list a line and
answers each with one line: the reference's observation, as the judge's
:func:`~.inside.differ.observe` writes a candidate's (``{"ok": value}``; ``"w"``: the arguments
after the call, where it changed them; ``{"raise": type name}``), or ``{"drop": why}`` where the
output is not plain data or too large to carry. One runner serves many tasks in turn (a line
that names a program loads it in a fresh namespace): an interpreter's start costs more than a
task's inputs. The parent enforces the time budget of each input (a runner that hangs on one is
killed, and a new one restarted on the next).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import resource
import signal
import sys
import time
from typing import Any

from . import plain

#: Bytes one observation may take (larger outputs are left out: they would cross to every
#: candidate's judge, and make unreadable failure messages).
OBSERVATION_LIMIT = 256 * 1024
#: Address space of the runner.
MEMORY_BYTES = 4 * 1024**3


def observe(function: Any, arguments: Any) -> dict[str, Any]:
    """The reference's observation on encoded ``arguments``."""
    args = plain.decode(arguments)
    before = plain.encode(args)
    try:
        result = function(*args)
    except Exception as exc:
        klass = type(exc)
        name = klass.__name__
        return {"raise": name if getattr(builtins, name, None) is klass else "own:" + name}
    try:
        seen: dict[str, Any] = {"ok": plain.encode(result, strict=True)}
    except plain.EncodeError as exc:
        return {"drop": f"its output is not plain data ({exc})"}
    after = plain.encode(args)
    # As JSON text: the decoded data's == has True == 1 and would miss 1 made True.
    if plain.dumps(after) != plain.dumps(before):
        seen["w"] = after
    return seen


def _load(header: dict[str, Any]) -> tuple[Any, str]:
    """The reference's entry point, loaded in a namespace of its own, and the line to answer."""
    for entry in header.get("site_dirs", []):
        if entry not in sys.path:
            sys.path.append(entry)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    try:
        exec(compile(header["program"], "<reference>", "exec", dont_inherit=True), namespace)
        function = namespace[header["entry_point"]]
    except BaseException as exc:
        return None, json.dumps({"load_error": f"{type(exc).__name__}: {exc}"[:300]})
    return function, '{"loaded":true}'


class TooSlow(BaseException):
    """The reference passed its CPU budget on one input (raised by the CPU timer; a
    ``BaseException``, so the reference's own ``except Exception`` cannot take it for its own).
    """


def _too_slow(signum: int, frame: Any) -> None:
    raise TooSlow


def main() -> None:
    """Serve references: a JSON object line loads one (``program``, ``entry_point``), each list
    line is an input of the last one loaded; one answer line per line read.
    """
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    sys.setrecursionlimit(10_000)
    stdout = sys.stdout
    signal.signal(signal.SIGPROF, _too_slow)
    function: Any = None
    input_cpu = task_cpu = None
    spent = 0.0
    for line in sys.stdin:
        message = json.loads(line)
        if isinstance(message, dict):
            function, text = _load(message)
            input_cpu, task_cpu, spent = message.get("input_cpu"), message.get("task_cpu"), 0.0
        elif function is None:
            text = json.dumps({"drop": "the reference did not load"})
        elif task_cpu is not None and spent > task_cpu:
            text = json.dumps({"drop": "the task's inputs took their CPU budget"})
        else:
            started = time.process_time()
            try:
                if input_cpu:
                    signal.setitimer(signal.ITIMER_PROF, float(input_cpu))
                try:
                    seen = observe(function, message)
                finally:
                    signal.setitimer(signal.ITIMER_PROF, 0)
                    cpu = time.process_time() - started
                    spent += cpu
                seen["c"] = round(cpu, 6)  # its CPU seconds
                text = json.dumps(seen, separators=(",", ":"), allow_nan=False)
            except TooSlow:
                text = json.dumps({"drop": "too slow"})
            except RecursionError:
                text = json.dumps({"drop": "its output is nested too deeply"})
            except (ValueError, MemoryError) as exc:
                text = json.dumps({"drop": f"{type(exc).__name__}"})
            if len(text) > OBSERVATION_LIMIT:
                text = json.dumps({"drop": "its output is too large"})
        stdout.write(text + "\n")
        stdout.flush()
