"""End of run on the controller: JUnit suite properties, the JSON report, the HTML report and the
curves (both drawn from the JSON document), the samples file, and the ``--passk-fail-under`` gate.

Suite properties are added before pytest's own ``pytest_sessionfinish`` writes the JUnit file
(``record_testsuite_property`` does not work under pytest-xdist).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.comparison import Comparison
from pytest_passk.estimate import ModelSummary, below, shown
from pytest_passk.report import json_report, sample_records, suite_properties
from pytest_passk.results import TaskResult
from pytest_passk.settings import SETTINGS_KEY, Settings
from pytest_passk.stronger import suite_properties as stronger_properties
from pytest_passk.version import package_version

__all__ = ["FAIL_UNDER", "add_suite_properties", "fail_under", "write_report", "write_samples"]

FAIL_UNDER = "passk: pass@{k} of {model} is {value}, below --passk-fail-under={threshold:g}"


def add_suite_properties(
    config: pytest.Config,
    summaries: Sequence[ModelSummary],
    comparison: Comparison | None = None,
    results: Sequence[TaskResult] = (),
    ks: Sequence[int] = (1,),
) -> None:
    """``pass@K[model]`` (and the comparison's figures) on the JUnit test suite, if a JUnit file
    is being written; with stronger tests also ``pass@K[model][original]`` and
    ``false_positive_rate[model]``.
    """
    try:
        from _pytest.junitxml import xml_key  # private, as in hypothesis's plugin
    except ImportError:  # pragma: no cover - pytest moved it
        return
    xml = config.stash.get(xml_key, None)
    if xml is not None:
        labels = [summary.label for summary in summaries]
        settings = config.stash.get(SETTINGS_KEY, None)
        target = None if settings is None else settings.comparison.target
        for name, value in [
            *suite_properties(summaries, comparison, results=results, target=target),
            *stronger_properties(labels, results, ks),
        ]:
            xml.add_global_property(name, value)


def write_report(
    config: pytest.Config,
    settings: Settings,
    summaries: Sequence[ModelSummary],
    results: Sequence[TaskResult],
    sandbox: Mapping[str, Any],
    *,
    complete: bool = True,
    comparison: Comparison | None = None,
) -> None:
    """The ``pytest-passk/report/v1`` JSON document at ``--passk-report``, and the HTML report
    (``--passk-html``) and curves (``--passk-plot``) drawn from it; ``complete`` is
    false for a run that was interrupted (Ctrl-C, ``-x``, ``--maxfail``), whose figures cover only
    the items that ran. Plugins may add to it through ``pytest_passk_update_report``.
    """
    meta = {
        "complete": complete,
        "mode": "sampling" if settings.sampling_mode else "check",
        "settings": {
            "temperature": settings.sampling.temperature,
            "top_p": settings.sampling.top_p,
            "max_tokens": settings.sampling.max_tokens,
            "seed": settings.sampling.seed,
            "timeout": settings.timeout,
            "n": settings.n,
        },
        "isolation": sandbox.get("isolation"),
        "sandbox": dict(sandbox),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": package_version(),
    }
    document = json_report(
        summaries,
        results,
        settings.ks or (1,),
        meta,
        comparison=comparison,
        hours=settings.prices.hours,
        target=settings.comparison.target if settings.sampling_mode else None,
    )
    config.hook.pytest_passk_update_report(config=config, report=document)
    text = json.dumps(document, indent=2) + "\n"
    if settings.report is not None:
        _write_text(settings.report, text)
    # Rendered from the document as saved, so `pytest-passk report` on the file gives the same.
    saved = json.loads(text)
    if settings.html is not None:
        from pytest_passk.html_report import render_html

        _write_text(settings.html, render_html(saved))
    if settings.plot is not None and settings.sampling_mode:  # check mode has no curves
        from pytest_passk.plots import write_plots

        write_plots(saved, settings.plot)


def write_samples(path: Path, results: Sequence[TaskResult]) -> None:
    """``--passk-samples-out``: every sample with its outcome, JSONL."""
    _write_text(path, _jsonl(sample_records(results)))


def fail_under(settings: Settings, summaries: Sequence[ModelSummary]) -> list[str]:
    """A message for every model whose pass@max(K) is below ``--passk-fail-under``."""
    threshold = settings.fail_under
    if threshold is None or not settings.sampling_mode:
        return []
    k = settings.max_k
    failures = []
    for summary in summaries:
        value = summary.estimates[k].value
        if below(value, threshold):
            failures.append(
                FAIL_UNDER.format(k=k, model=summary.label, value=shown(value), threshold=threshold)
            )
    return failures


def _jsonl(records: Iterable[Mapping[str, Any]]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


def _write_text(path: Path, text: str) -> None:
    # Written aside and renamed, so a reader never sees half a report.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
