"""Judging one task's samples: programs, de-duplication, execution, and the task's result.

Pure core: no pytest. Each distinct program runs once; duplicates (the same compiled code up to
layout and comments, or the same text when it does not compile) inherit its verdict.
"""

from __future__ import annotations

import enum
import marshal
import math
import time
import types
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pytest_passk.backends import USAGE_UNDERCOUNTED, Completion
from pytest_passk.estimate import below, pass_at_k, shown
from pytest_passk.extract import Extraction, ExtractMode, extract_for_task
from pytest_passk.results import CandidateResult, Outcome, TaskResult, empty_counts
from pytest_passk.sandbox import Executor, Job, Verdict
from pytest_passk.tasks import Task

__all__ = [
    "BELOW_MIN",
    "NO_REFERENCE",
    "NO_SAMPLES",
    "REFERENCE_FAILS",
    "TASK_CANNOT_RUN",
    "Decision",
    "ItemDecision",
    "ItemIdentity",
    "Plan",
    "decide",
    "decide_reference",
    "evaluate",
    "plan",
    "program_key",
]

NO_SAMPLES = "no samples for task {task_id} from {model}"
NO_REFERENCE = (
    "task {task_id} has no reference solution: give @passk.task(reference=...) "
    "or a canonical_solution"
)
BELOW_MIN = "pass@{k} = {value} is below the task's min_pass_at_k={threshold:g}"
TASK_CANNOT_RUN = "task {task_id} cannot run (this is not the solution's fault): {message}"
REFERENCE_FAILS = (
    "the reference solution does not pass the task's test in the sandbox (its error is below)"
)


class Decision(enum.Enum):
    """What becomes of an item."""

    PASSED = "passed"
    FAILED = "failed"  # the task's criterion is not met: a failure like a failed assertion
    SKIPPED = "skipped"  # nothing to judge (no samples; no reference in check mode)
    ERROR = "error"  # the item could not be judged (samples could not be drawn)


@dataclass(frozen=True, slots=True)
class ItemDecision:
    """An item's verdict, decided in the core; the pytest item raises or skips from it."""

    decision: Decision
    result: TaskResult | None = None
    #: A line for the failure text (the threshold missed), or the skip or error reason.
    message: str | None = None


def decide(result: TaskResult, task: Task, max_k: int) -> ItemDecision:
    """Sampling mode: passed when a candidate passed (c >= 1), or, for a task with
    ``min_pass_at_k``, when pass@max(K) reaches it (undefined when n < max(K): failed).
    """
    if result.n == 0:
        message = NO_SAMPLES.format(task_id=task.task_id, model=result.model)
        return ItemDecision(Decision.SKIPPED, result, message)
    cannot_run = cannot_run_message(result)
    if cannot_run is not None:
        return ItemDecision(Decision.ERROR, result, cannot_run)
    if task.min_pass_at_k is not None:
        value = pass_at_k(result.n, result.c, max_k) if result.n >= max_k else math.nan
        if below(value, task.min_pass_at_k):
            text = shown(value) + (" (n < k)" if math.isnan(value) else "")
            note = BELOW_MIN.format(k=max_k, value=text, threshold=task.min_pass_at_k)
            return ItemDecision(Decision.FAILED, result, note)
        return ItemDecision(Decision.PASSED, result)
    return ItemDecision(Decision.PASSED if result.c else Decision.FAILED, result)


def decide_reference(result: TaskResult) -> ItemDecision:
    """Check mode: passed when the task's reference solution passes its test; an error (not a
    failure blamed on the reference) when the task cannot run at all.
    """
    if result.c:
        return ItemDecision(Decision.PASSED, result)
    cannot_run = cannot_run_message(result)
    if cannot_run is not None:
        return ItemDecision(Decision.ERROR, result, cannot_run)
    return ItemDecision(Decision.FAILED, result, REFERENCE_FAILS)


def cannot_run_message(result: TaskResult) -> str | None:
    """Why the task cannot run, when every sample's error says so (else ``None``)."""
    if result.c or not result.samples or not all(s.task_error for s in result.samples):
        return None
    return TASK_CANNOT_RUN.format(task_id=result.task_id, message=result.samples[0].message)


@dataclass(frozen=True, slots=True)
class ItemIdentity:
    """Which item a result belongs to."""

    model: str
    spec: str
    nodeid: str


def program_key(program: str, code: types.CodeType | None = None) -> bytes:
    """A key equal for programs that behave identically: their compiled code without its line
    and column tables (so layout, comments, ``pass`` against ``return None`` or ``2 * 3``
    against ``6`` make no difference), else, when it does not compile, its normalised text.

    Compiling runs none of the program. It is also about twice as fast as dumping the syntax
    tree, which matters: every sample of the run is keyed before the first one can run. ``code``
    is the program already compiled the same way (extraction compiles most programs anyway).
    """
    if code is not None:
        return b"c" + marshal.dumps(_without_positions(code), 2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a candidate's SyntaxWarning is not the user's
            # optimize=0 whatever pytest's own -O: the sandbox runs asserts, so the key keeps them.
            code = compile(program, "<candidate>", "exec", dont_inherit=True, optimize=0)
        # Version 2 writes no back-references, whose use depends on reference counts.
        return b"c" + marshal.dumps(_without_positions(code), 2)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        text = "\n".join(line.rstrip() for line in program.strip().splitlines())
        return b"t" + text.encode("utf-8", "surrogatepass")


def _without_positions(code: types.CodeType) -> types.CodeType:
    consts = tuple(
        _without_positions(c) if isinstance(c, types.CodeType) else c for c in code.co_consts
    )
    return code.replace(co_linetable=b"", co_firstlineno=1, co_consts=consts)


@dataclass(frozen=True, slots=True)
class Plan:
    """How a task's samples become jobs: each sample's extraction (its program, and how it was
    obtained), the distinct jobs, and which job judges each sample (``None``: the sample holds no
    code, and its ``error`` verdict needs no sandbox run).
    """

    extractions: tuple[Extraction, ...]
    jobs: tuple[Job, ...]
    job_of_sample: tuple[int | None, ...]

    @property
    def programs(self) -> tuple[str | None, ...]:
        """Each sample's program."""
        return tuple(extraction.program for extraction in self.extractions)


def plan(
    task: Task,
    completions: Sequence[Completion],
    timeout: float,
    mode: ExtractMode = ExtractMode.AUTO,
) -> Plan:
    """Extract the programs of ``completions`` and de-duplicate them into jobs.

    Made once per item: the runner hands the jobs to the pool ahead of time and passes the same
    plan to :func:`evaluate`, so programs are neither rebuilt nor re-parsed. Verbatim repeats of
    a text (frequent at low temperature) are extracted once.
    """
    extracted: dict[tuple[str, object], Extraction] = {}
    extractions: list[Extraction] = []
    for completion in completions:
        text = (completion.text, completion.form)
        if text not in extracted:
            extracted[text] = extract_for_task(task, completion.text, completion.form, mode)
        extractions.append(extracted[text])
    first_of: dict[bytes, int] = {}
    key_of: dict[str, bytes] = {}  # samples are often verbatim repeats: parse each text once
    reference_key: bytes | None = None
    jobs: list[Job] = []
    job_of_sample: list[int | None] = []
    for extraction in extractions:
        program = extraction.program
        if program is None:
            job_of_sample.append(None)
            continue
        key = key_of.get(program)
        if key is None:
            key = key_of[program] = program_key(program, extraction.code)
        if key not in first_of:
            first_of[key] = len(jobs)
            if reference_key is None and task.reference is not None:
                reference_key = program_key(task.reference)
            # The reference itself, up to layout and comments: judged as the reference's text,
            # which the pool has already run to time the task.
            job_program = task.reference if task.reference and key == reference_key else program
            jobs.append(Job(job_program, task.test, task.entry_point, timeout, task.reference))
        job_of_sample.append(first_of[key])
    return Plan(tuple(extractions), tuple(jobs), tuple(job_of_sample))


def evaluate(
    task: Task,
    completions: Sequence[Completion],
    executor: Executor,
    *,
    timeout: float,
    ks: Sequence[int],
    identity: ItemIdentity,
    n_requested: int,
    on_progress: Callable[[int, int], None] | None = None,
    planned: Plan | None = None,
    mode: ExtractMode = ExtractMode.AUTO,
) -> TaskResult:
    """Run every distinct program of ``completions`` and summarise the task.

    ``planned`` is :func:`plan`'s result for the same arguments, when the caller made it already.
    """
    started = time.perf_counter()
    planned = planned or plan(task, completions, timeout, mode)
    extractions, jobs, job_of_sample = planned.extractions, planned.jobs, planned.job_of_sample
    verdicts = executor.run(jobs, progress=on_progress)
    samples: list[CandidateResult] = []
    for index, (completion, extraction, job) in enumerate(
        zip(completions, extractions, job_of_sample, strict=False)
    ):
        program = extraction.program
        if job is not None:
            verdict = verdicts[job]
        else:
            verdict = Verdict(Outcome.ERROR, extraction.reason, "", 0.0)
        samples.append(
            CandidateResult(
                index=index,
                outcome=verdict.outcome,
                message=verdict.message,
                completion=completion.text,
                program=program or "",
                duration=verdict.duration,
                prompt_tokens=completion.prompt_tokens,
                completion_tokens=completion.completion_tokens,
                extraction=extraction.kind.value,
                task_error=verdict.task_error,
                usage_undercounted=bool(completion.metadata.get(USAGE_UNDERCOUNTED, False)),
            )
        )
    details = {i: verdicts[j].detail for i, j in enumerate(job_of_sample) if j is not None}
    return summarise(
        task, samples, ks, identity, n_requested, len(jobs), time.perf_counter() - started, details
    )


def summarise(
    task: Task,
    samples: Sequence[CandidateResult],
    ks: Sequence[int],
    identity: ItemIdentity,
    n_requested: int,
    distinct: int,
    duration: float,
    details: dict[int, str] | None = None,
) -> TaskResult:
    """Count outcomes and compute pass@k for every k the task has enough samples for."""
    counts = empty_counts()
    extraction: dict[str, int] = {}
    for sample in samples:
        counts[sample.outcome.value] += 1
        extraction[sample.extraction] = extraction.get(sample.extraction, 0) + 1
    n = len(samples)
    c = counts[Outcome.PASSED.value]
    return TaskResult(
        task_id=task.task_id,
        model=identity.model,
        spec=identity.spec,
        nodeid=identity.nodeid,
        n=n,
        n_requested=n_requested,
        c=c,
        outcomes=counts,
        pass_at_k={k: pass_at_k(n, c, k) for k in ks if n >= k},
        distinct=distinct,
        prompt_tokens=sum(s.prompt_tokens for s in samples),
        completion_tokens=sum(s.completion_tokens for s in samples),
        duration=duration,
        samples=tuple(samples),
        first_failure_detail=_first_failure_detail(samples, details or {}),
        extraction=dict(sorted(extraction.items())),
        undercounted=sum(s.usage_undercounted for s in samples),
    )


def _first_failure_detail(samples: Sequence[CandidateResult], details: dict[int, str]) -> str:
    for sample in samples:
        if sample.outcome is not Outcome.PASSED:
            return details.get(sample.index, "")
    return ""
