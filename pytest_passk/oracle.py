"""A task's stronger tests, built once per task in the trusted pytest process.

For a task with a :class:`~pytest_passk.differential.DifferentialSpec` (or any HumanEval-format
task with a reference under ``--passk-augment``) the :class:`Oracle` draws the inputs
(:mod:`pytest_passk.inputs`, :mod:`pytest_passk.augment`), runs the reference on them in a
fresh trusted interpreter (:mod:`pytest_passk.sandbox.reference`: the reference is trusted
but may hang, so each input has a time budget, and an input it cannot answer is left out), and
hands the result to every candidate job as a :class:`~pytest_passk.differential.Differential`.
Results are kept per task in memory, and, for inputs that do not come from a user's strategy
object (augmented and EvalPlus tasks), in the store (``differential/``), so reruns and
pytest-xdist workers reuse them.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_passk.differential import AUTO, STRONGER, Differential, DifferentialSpec
from pytest_passk.tasks import CheckTest, Task

__all__ = ["INPUT_BUDGET", "REFERENCE_LOAD_FAILED", "Oracle", "reference_observations"]

#: Wall seconds the reference may take on one input (at most the task's timeout).
INPUT_BUDGET = 2.0
#: Inputs the reference may fail to answer in time before the rest are left out too.
MAX_STUCK = 5
REFERENCE_LOAD_FAILED = "the reference of {task} failed to load in the reference runner: {error}"
CACHE_DIR = "differential"
CACHE_SCHEMA = "pytest-passk/differential/v1"
SANDBOX_DIR = Path(__file__).parent / "sandbox"
#: The runner's start: the sandbox directory as a package of its own (``-I -S``: the installed
#: package is not importable), so the runner and the codec load without the rest.
BOOT = (
    "import sys\n"
    "package = type(sys)('_passk_ref')\n"
    f"package.__path__ = [{str(SANDBOX_DIR)!r}]\n"
    "sys.modules['_passk_ref'] = package\n"
    "import _passk_ref.reference as runner\n"
    "runner.main()\n"
)


def reference_observations(
    program: str, entry_point: str, inputs: Sequence[Any], budget: float
) -> list[dict[str, Any] | None]:
    """The reference's observation on each encoded argument list (``None``: no answer within
    ``budget`` seconds, or the runner died on it).

    Raises:
        RuntimeError: the reference does not load.

    """
    from pytest_passk.sandbox.pool import real_python, site_dirs
    from pytest_passk.sandbox.slot import safe_environment

    answers: list[dict[str, Any] | None] = []
    stuck = 0
    while len(answers) < len(inputs) and stuck < MAX_STUCK:
        with tempfile.TemporaryDirectory(prefix="passk-ref-") as scratch:
            process = subprocess.Popen(
                [real_python(), "-I", "-S", "-B", "-c", BOOT],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                cwd=scratch,
                env=safe_environment(),
                start_new_session=True,
            )
            try:
                header = {"program": program, "entry_point": entry_point,
                          "site_dirs": list(site_dirs())}  # fmt: skip
                loaded = _exchange(process, header, 30.0)
                if loaded is None or "load_error" in loaded:
                    error = loaded.get("load_error") if loaded else "it did not start"
                    raise RuntimeError(str(error))
                for arguments in inputs[len(answers) :]:
                    answer = _exchange(process, arguments, budget)
                    answers.append(answer)
                    if answer is None:
                        stuck += 1
                        break
            finally:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(process.pid, 9)
                process.wait()
                for stream in (process.stdin, process.stdout):
                    if stream is not None:
                        with contextlib.suppress(OSError):
                            stream.close()
    return answers + [None] * (len(inputs) - len(answers))


def _exchange(process: subprocess.Popen[bytes], message: Any, budget: float) -> Any:
    """Send one line, read one line within ``budget`` seconds (``None``: none came)."""
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(json.dumps(message, allow_nan=False).encode() + b"\n")
        process.stdin.flush()
    except OSError:
        return None
    deadline = time.monotonic() + budget
    fd = process.stdout.fileno()
    chunks: list[bytes] = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        chunks.append(chunk)
        if chunk.endswith(b"\n"):
            try:
                return json.loads(b"".join(chunks))
            except ValueError:
                return None


class Oracle:
    """Builds and keeps each task's :class:`Differential` (thread-safe)."""

    def __init__(
        self,
        *,
        augment: bool,
        examples: int,
        store: Path | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.augment = augment
        self.examples = examples
        self._store = store
        self._warn = warn or (lambda message: None)
        self._known: dict[tuple[object, ...], Differential | None] = {}
        self._lock = threading.Lock()

    def spec_of(self, task: Task) -> DifferentialSpec | None:
        """The task's stronger tests: its own, or, under ``--passk-augment``, those a dataset
        task with a reference gets.
        """
        if task.differential is not None:
            return task.differential
        if self.augment and isinstance(task.test, CheckTest) and task.reference is not None:
            from pytest_passk.augment import seeds_of

            if task.entry_point is None:
                return None
            seeds = tuple(seeds_of(task.test.source, task.entry_point))
            return DifferentialSpec(seeds=seeds, drop_raising=True)
        return None

    def differential(self, task: Task, timeout: float) -> Differential | None:
        """The task's :class:`Differential`, built on first use.

        Raises:
            TaskFormatError: ``inputs=`` cannot be drawn (no strategy derivable, not plain data).

        """
        spec = self.spec_of(task)
        if spec is None or task.reference is None or task.entry_point is None:
            return None
        key = (task.task_id, task.reference, task.test, spec.examples, id(spec.inputs))
        with self._lock:
            if key in self._known:
                return self._known[key]
            found = self._build(task, spec, timeout)
            self._known[key] = found
            return found

    def _build(self, task: Task, spec: DifferentialSpec, timeout: float) -> Differential:
        from pytest_passk.store.keys import digest

        cacheable = self._store is not None and (spec.inputs is None or spec.inputs == AUTO)
        path = None
        if cacheable and self._store is not None:
            name = digest({
                "schema": CACHE_SCHEMA, "task": task.task_id, "reference": task.reference,
                "test": repr(task.test), "examples": spec.examples or self.examples,
                "fixed": repr(spec.fixed), "seeds": repr(spec.seeds),
                "compare": spec.compare_plain(), "drop": spec.drop_raising,
                "harness": _harness(),
            })  # fmt: skip
            path = self._store / CACHE_DIR / f"{name}.json"
            cached = _read(path)
            if cached is not None:
                return cached
        built = build(task, spec, spec.examples or self.examples, timeout)
        if path is not None:
            _write(path, built)
        return built


def build(task: Task, spec: DifferentialSpec, examples: int, timeout: float) -> Differential:
    """Draw the inputs of ``task`` and compute its reference's observations on them."""
    from pytest_passk.inputs import plain_key

    assert task.reference is not None and task.entry_point is not None
    tiered = [(args, tier) for args, tier in spec.fixed]
    tiered += [(args, STRONGER) for args in _drawn(task, spec, examples)]
    seen: set[str] = set()
    unique = []
    for args, tier in tiered:
        key = plain_key(args)
        if key is not None and key not in seen:
            seen.add(key)
            unique.append((args, tier))
    from pytest_passk.sandbox import plain

    encoded = [plain.encode(list(args), strict=True) for args, _ in unique]
    budget = min(INPUT_BUDGET, timeout) if not spec.fixed else timeout
    try:
        answers = reference_observations(task.reference, task.entry_point, encoded, budget)
    except RuntimeError as exc:
        from pytest_passk.errors import TaskFormatError

        raise TaskFormatError(
            task.origin, REFERENCE_LOAD_FAILED.format(task=task.task_id, error=exc),
            "fix the reference solution",
        ) from None  # fmt: skip
    cases: list[Any] = []
    dropped = 0
    for (_, tier), arguments, answer in zip(unique, encoded, answers, strict=True):
        if answer is None or "drop" in answer or (spec.drop_raising and "raise" in answer):
            dropped += 1
            continue
        cases.append([arguments, answer, tier])
    return Differential.of(cases, spec.compare_plain(), dropped)


def _drawn(task: Task, spec: DifferentialSpec, examples: int) -> list[tuple[Any, ...]]:
    """The generated inputs: from the task's strategy, ``"auto"``, or the augmentation."""
    from pytest_passk.inputs import auto_strategy, draw, seed_of, signature_function

    assert task.reference is not None and task.entry_point is not None
    where = task.origin or task.task_id
    seed = seed_of(task.task_id)
    if spec.inputs == AUTO:
        function = spec.reference or signature_function(task.reference, task.entry_point)
        if function is None:
            from pytest_passk.errors import TaskFormatError

            raise TaskFormatError(
                where, f"inputs=\"auto\": the reference defines no {task.entry_point}()",
                "give the reference as a function, or inputs=<strategy>",
            )  # fmt: skip
        return draw(auto_strategy(function, where), examples, seed, where)
    if spec.inputs is not None:
        return draw(spec.inputs, examples, seed, where)
    if not spec.seeds and spec.fixed:
        return []  # an EvalPlus task: its own inputs
    from pytest_passk.augment import generate

    function = signature_function(task.reference, task.entry_point)
    return generate(spec.seeds, function, examples, seed)


def _harness() -> str:
    """What makes a cached differential stale besides its task: the generating code."""
    import hashlib

    hasher = hashlib.sha256()
    for name in ("augment.py", "inputs.py", "oracle.py", "sandbox/reference.py"):
        hasher.update((Path(__file__).parent / name).read_bytes())
    with contextlib.suppress(Exception):
        import hypothesis

        hasher.update(hypothesis.__version__.encode())
    return hasher.hexdigest()


def _read(path: Path) -> Differential | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != CACHE_SCHEMA:
            return None
        return Differential(str(data["cases"]), str(data["compare"]), int(data["dropped"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write(path: Path, value: Differential) -> None:
    data = {"schema": CACHE_SCHEMA, "cases": value.cases, "compare": value.compare,
            "dropped": value.dropped}  # fmt: skip
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temporary, path)
