"""``selected@1``: pick one candidate per task without the task's tests, then score the pick.

pass@k credits a task as soon as any of k samples passes, as if an oracle knew which one was
right. A user with n samples and no tests must pick one. The pick here follows AlphaCode and CodeT:
group the candidates by what they do and take the largest group, since independent samples that
agree are more likely right than a lone one.

- When candidates carry a **behaviour** fingerprint (a hash of their outputs on generated inputs),
  they are grouped by it; candidates without one (no code, or not run on generated inputs) are
  left out of the vote unless none has one.
- Otherwise they are grouped by **program**: the key under which the evaluation already
  de-duplicates programs (compiled code without positions, so layout and comments do not split a
  group), so the largest group is the most frequent distinct program.
- Candidates with no code are picked only when every candidate lacks code.
- Ties go to the group whose first member came first (lowest sample index), and the pick is that
  first member: nothing about outcomes enters.

:func:`pick` never sees an outcome (its records have none); :func:`selected_passed` scores the
pick afterwards. A model's selected@1 is the mean over its tasks of that 0 or 1. Since the pick is
one of the task's samples, selected@1 is 1 only where c >= 1: it never exceeds pass@n.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from pytest_passk.evaluation import program_key
from pytest_passk.results import CandidateResult, Outcome

__all__ = [
    "Basis",
    "Candidate",
    "Pick",
    "candidates_of",
    "pick",
    "pick_sample",
    "select_task",
    "selected_at_1",
    "selected_passed",
]


class Basis(enum.Enum):
    """What the candidates were grouped by."""

    BEHAVIOUR = "behaviour"
    PROGRAM = "program"
    NONE = "none"  # no candidate had code: the first sample is picked


@dataclass(frozen=True, slots=True)
class Candidate:
    """What selection may know of a sample: its program and behaviour, never its outcome."""

    #: The de-duplication key of its program; ``None`` when the sample holds no code.
    program: Hashable | None
    #: Fingerprint of its outputs on generated inputs, when it was run on them.
    behaviour: str | None = None


@dataclass(frozen=True, slots=True)
class Pick:
    """The chosen candidate (its position in the task's samples) and its group's size."""

    position: int
    group: int
    basis: Basis


def pick(candidates: Sequence[Candidate]) -> Pick | None:
    """The candidate a user without tests would submit; ``None`` when there are none."""
    if not candidates:
        return None
    with_code = [i for i, c in enumerate(candidates) if c.program is not None]
    if not with_code:
        return Pick(0, len(candidates), Basis.NONE)
    with_behaviour = [i for i in with_code if candidates[i].behaviour is not None]
    basis = Basis.BEHAVIOUR if with_behaviour else Basis.PROGRAM
    members: dict[Hashable, list[int]] = {}
    for position in with_behaviour or with_code:
        candidate = candidates[position]
        key = candidate.behaviour if basis is Basis.BEHAVIOUR else candidate.program
        members.setdefault(key, []).append(position)
    # Largest group first; among equals the one seen first (dicts keep insertion order, and
    # positions were visited in order, so min() on (-size, first) is deterministic).
    best = min(members.values(), key=lambda group: (-len(group), group[0]))
    return Pick(best[0], len(best), basis)


def selected_passed(candidates: Sequence[Candidate], passed: Sequence[bool]) -> bool | None:
    """Whether the pick passes; ``passed`` is read only after :func:`pick` has chosen."""
    if len(candidates) != len(passed):
        raise ValueError(f"{len(candidates)} candidates but {len(passed)} outcomes")
    chosen = pick(candidates)
    if chosen is None:
        return None
    return passed[chosen.position]


def selected_at_1(records: Sequence[tuple[Hashable | None, str | None, bool]]) -> bool | None:
    """The same from ``(program_key, behaviour, passed)`` records, in sample order."""
    candidates = [Candidate(program, behaviour) for program, behaviour, _ in records]
    return selected_passed(candidates, [passed for _, _, passed in records])


def candidates_of(samples: Sequence[CandidateResult]) -> list[Candidate]:
    """What selection may see of judged samples (in the given order): their programs, keyed as
    :func:`~pytest_passk.evaluation.plan` keys them for de-duplication (an empty program is a
    sample with no code), and their behaviour. Outcomes, messages and durations stay behind.
    """
    keys: dict[str, bytes] = {}
    candidates = []
    for sample in samples:
        key = None
        if sample.program.strip():
            key = keys.get(sample.program)
            if key is None:
                key = keys[sample.program] = program_key(sample.program)
        # ``behaviour`` arrives on CandidateResult with differential testing; until a sample
        # carries one, grouping is by program.
        behaviour: str | None = getattr(sample, "behaviour", None)
        candidates.append(Candidate(key, behaviour))
    return candidates


def pick_sample(samples: Sequence[CandidateResult]) -> int | None:
    """The index of the sample picked without tests; ``None`` without samples."""
    ordered = sorted(samples, key=lambda s: s.index)
    chosen = pick(candidates_of(ordered))
    return None if chosen is None else ordered[chosen.position].index


def select_task(samples: Sequence[CandidateResult]) -> bool | None:
    """selected@1 of one task's judged samples: whether the picked one passed (``None``
    without samples).
    """
    index = pick_sample(samples)
    if index is None:
        return None
    return next(s.outcome is Outcome.PASSED for s in samples if s.index == index)
