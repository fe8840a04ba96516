"""Result records of a run: candidate outcomes and per-task results as plain, portable data.

A :class:`TaskResult` travels from the process that ran the item to the controller attached to
the test report, so it converts to and from plain JSON (pytest-xdist serialises reports).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CandidateResult",
    "Outcome",
    "ProgramRecord",
    "RunCounters",
    "TaskResult",
    "program_records",
]


class Outcome(enum.Enum):
    """How one candidate ended."""

    PASSED = "passed"
    FAILED = "failed"  # an assertion failed: a wrong answer
    ERROR = "error"  # syntax error, crash, exception, no code found
    TIMEOUT = "timeout"


OUTCOME_ORDER = (Outcome.PASSED, Outcome.FAILED, Outcome.ERROR, Outcome.TIMEOUT)


def empty_counts() -> dict[str, int]:
    """Outcome counts with every outcome present, in report order."""
    return {outcome.value: 0 for outcome in OUTCOME_ORDER}


@dataclass(frozen=True, slots=True)
class CandidateResult:
    """One sample of one task with its verdict."""

    index: int
    outcome: Outcome
    message: str
    completion: str
    program: str
    duration: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: How the program was obtained from the text (:class:`~pytest_passk.extract.ExtractionKind`).
    extraction: str = "as-is"
    #: The task itself could not run (its test failed to load, asks for a fixture the sandbox
    #: lacks): the error says nothing of this program.
    task_error: bool = False
    #: With stronger tests (differential, ``--passk-augment``, EvalPlus): the outcome on the
    #: task's own tests alone (``outcome`` is on the stronger tests too). ``None`` without.
    original: Outcome | None = None
    #: With stronger tests: a stable hash of the program's outputs on the generated inputs,
    #: computed without any test's verdict (candidates that behave alike share it).
    behaviour: str | None = None
    #: The server reported fewer completion tokens than this sample must have used (some
    #: OpenAI-compatible servers count one choice when ``n > 1``): its tokens are a lower bound.
    usage_undercounted: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for reports and ``--passk-samples-out``."""
        extra: dict[str, Any] = {"task_error": True} if self.task_error else {}
        if self.original is not None:
            extra["original_outcome"] = self.original.value
        if self.behaviour is not None:
            extra["behaviour"] = self.behaviour
        if self.usage_undercounted:
            extra["usage_undercounted"] = True
        return extra | {
            "index": self.index,
            "outcome": self.outcome.value,
            "message": self.message,
            "completion": self.completion,
            "program": self.program,
            "duration": self.duration,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "extraction": self.extraction,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CandidateResult:
        """Inverse of :meth:`to_json`."""
        return cls(
            index=int(data["index"]),
            outcome=Outcome(data["outcome"]),
            message=str(data["message"]),
            completion=str(data["completion"]),
            program=str(data["program"]),
            duration=float(data["duration"]),
            prompt_tokens=int(data.get("prompt_tokens", 0)),
            completion_tokens=int(data.get("completion_tokens", 0)),
            extraction=str(data.get("extraction", "as-is")),
            task_error=bool(data.get("task_error", False)),
            original=Outcome(data["original_outcome"]) if data.get("original_outcome") else None,
            behaviour=str(data["behaviour"]) if data.get("behaviour") else None,
            usage_undercounted=bool(data.get("usage_undercounted", False)),
        )


#: A program's text in the report is cut here (characters), and a task lists at most this many.
PROGRAM_TEXT_LIMIT = 4096
PROGRAMS_LISTED = 20


@dataclass(frozen=True, slots=True)
class ProgramRecord:
    """One distinct program text of a task, as the report lists it: the text (cut at
    :data:`PROGRAM_TEXT_LIMIT`), how many samples gave it, its outcome, the first line of its
    failure message, and how it was obtained from the first such sample's answer.
    """

    program: str
    count: int
    outcome: str
    message: str
    extraction: str
    truncated: bool = False

    def to_json(self) -> dict[str, Any]:
        """Plain data for the report."""
        return {
            "program": self.program,
            "count": self.count,
            "outcome": self.outcome,
            "message": self.message,
            "extraction": self.extraction,
            "truncated": self.truncated,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProgramRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            program=str(data["program"]),
            count=int(data["count"]),
            outcome=str(data["outcome"]),
            message=str(data.get("message", "")),
            extraction=str(data.get("extraction", "as-is")),
            truncated=bool(data.get("truncated", False)),
        )


def program_records(
    samples: tuple[CandidateResult, ...], limit: int = PROGRAMS_LISTED
) -> tuple[ProgramRecord, ...]:
    """The distinct program texts of ``samples``, most frequent first (ties: first seen), at
    most ``limit``. A sample without code has the empty program. Samples with the same text share
    one verdict (the run de-duplicates them), so the first sample speaks for the rest.
    """
    first: dict[str, CandidateResult] = {}
    counts: dict[str, int] = {}
    for sample in samples:
        first.setdefault(sample.program, sample)
        counts[sample.program] = counts.get(sample.program, 0) + 1
    order = sorted(first, key=lambda text: -counts[text])  # stable: ties keep first-seen order
    records = []
    for text in order[:limit]:
        sample = first[text]
        lines = sample.message.strip().splitlines()
        records.append(
            ProgramRecord(
                program=text[:PROGRAM_TEXT_LIMIT],
                count=counts[text],
                outcome=sample.outcome.value,
                message=lines[0][:500] if lines else "",
                extraction=sample.extraction,
                truncated=len(text) > PROGRAM_TEXT_LIMIT,
            )
        )
    return tuple(records)


@dataclass(frozen=True, slots=True)
class TaskResult:
    """The outcome of one item: one task sampled from one model.

    ``n_requested`` is what the run asked for; ``n`` what was drawn and judged (a recording may
    hold fewer samples than asked). ``distinct`` counts the programs actually executed after
    removing duplicates.
    """

    task_id: str
    model: str
    spec: str
    nodeid: str
    n: int
    n_requested: int
    c: int
    outcomes: dict[str, int]
    #: pass@k by k, for every k the task has enough samples for (JSON keys are strings).
    pass_at_k: dict[int, float]
    distinct: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    duration: float = 0.0
    samples: tuple[CandidateResult, ...] = field(default=())
    first_failure_detail: str = ""
    #: Samples per extraction kind (travels without the samples, for the per-model counts).
    extraction: dict[str, int] = field(default_factory=dict)
    #: With stronger tests: how many samples passed the task's own tests alone (``c`` counts
    #: those that passed the stronger tests too); ``None`` without stronger tests.
    c_original: int | None = None

    @property
    def false_positives(self) -> int:
        """Samples that pass the task's own tests and fail the stronger ones."""
        return 0 if self.c_original is None else max(0, self.c_original - self.c)

    #: Whether the candidate picked without the task's tests passes (:mod:`~pytest_passk.
    #: selection`); ``None`` without samples.
    selected: bool | None = None
    #: Samples whose token usage the server undercounted (travels without the samples).
    undercounted: int = 0
    #: The distinct programs as the report lists them, when the samples did not travel;
    #: :attr:`programs_listed` prefers the samples.
    programs: tuple[ProgramRecord, ...] = ()
    #: Distinct program texts beyond those listed.
    programs_omitted: int = 0

    @property
    def programs_listed(self) -> tuple[tuple[ProgramRecord, ...], int]:
        """The distinct programs the report lists, and how many more there were."""
        if not self.samples:
            return self.programs, self.programs_omitted
        texts = len({sample.program for sample in self.samples})
        listed = program_records(self.samples)
        return listed, texts - len(listed)

    def to_json(self, *, with_samples: bool = True) -> dict[str, Any]:
        """Plain JSON data (what travels on the test report)."""
        data: dict[str, Any] = {
            "task_id": self.task_id,
            "model": self.model,
            "spec": self.spec,
            "nodeid": self.nodeid,
            "n": self.n,
            "n_requested": self.n_requested,
            "c": self.c,
            "outcomes": dict(self.outcomes),
            "pass_at_k": {str(k): v for k, v in self.pass_at_k.items()},
            "distinct": self.distinct,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost_usd": self.cost_usd,
            "duration": self.duration,
            "first_failure_detail": self.first_failure_detail,
            "extraction": dict(self.extraction),
            "selected": self.selected,
            "undercounted": self.undercounted,
        }
        if self.c_original is not None:
            data["c_original"] = self.c_original
        # The programs travel even without the samples: the HTML report lists them.
        programs, omitted = self.programs_listed
        data["programs"] = [record.to_json() for record in programs]
        data["programs_omitted"] = omitted
        if with_samples:
            data["samples"] = [sample.to_json() for sample in self.samples]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        """Inverse of :meth:`to_json`."""
        tokens = data.get("tokens", {})
        # With the samples at hand the programs are derived from them again.
        listed = () if data.get("samples") else data.get("programs", ())
        return cls(
            task_id=str(data["task_id"]),
            model=str(data["model"]),
            spec=str(data["spec"]),
            nodeid=str(data["nodeid"]),
            n=int(data["n"]),
            n_requested=int(data["n_requested"]),
            c=int(data["c"]),
            outcomes={str(k): int(v) for k, v in data["outcomes"].items()},
            pass_at_k={int(k): float(v) for k, v in data["pass_at_k"].items()},
            distinct=int(data.get("distinct", 0)),
            prompt_tokens=int(tokens.get("prompt", 0)),
            completion_tokens=int(tokens.get("completion", 0)),
            cost_usd=None if data.get("cost_usd") is None else float(data["cost_usd"]),
            duration=float(data.get("duration", 0.0)),
            samples=tuple(CandidateResult.from_json(s) for s in data.get("samples", ())),
            first_failure_detail=str(data.get("first_failure_detail", "")),
            extraction={str(k): int(v) for k, v in data.get("extraction", {}).items()},
            c_original=None if data.get("c_original") is None else int(data["c_original"]),
            selected=None if data.get("selected") is None else bool(data["selected"]),
            undercounted=int(data.get("undercounted", 0)),
            programs=tuple(ProgramRecord.from_json(p) for p in listed),
            programs_omitted=int(data.get("programs_omitted", 0)) if listed else 0,
        )


@dataclass(frozen=True, slots=True)
class RunCounters:
    """What one process did, added up over processes (xdist workers hand theirs over)."""

    #: Samples asked of a backend, read from the store, and replayed from a recording.
    drawn: int = 0
    reused: int = 0
    replayed: int = 0
    #: Distinct programs handed to the verdict cache that it did not have, and those it had.
    executed: int = 0
    cached: int = 0
    #: Programs the sandbox ran, of them timed out, runs retried after a harness failure, and
    #: candidates judged by their task's reference run.
    sandbox_executed: int = 0
    timeouts: int = 0
    retries: int = 0
    reference_reused: int = 0

    def __add__(self, other: RunCounters) -> RunCounters:
        return RunCounters(
            *(getattr(self, name) + getattr(other, name) for name in RunCounters.__slots__)
        )

    @property
    def judged(self) -> bool:
        """Whether any program went through the verdict cache (this run judged samples)."""
        return bool(self.executed or self.cached)

    def to_json(self) -> dict[str, int]:
        """Plain data (xdist's ``workeroutput``)."""
        return {name: getattr(self, name) for name in RunCounters.__slots__}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RunCounters:
        """The inverse of :meth:`to_json`; unknown keys are ignored."""
        return cls(**{name: int(data.get(name, 0)) for name in RunCounters.__slots__})
