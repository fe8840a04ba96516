"""``pytest-passk report`` and ``pytest-passk compare`` on saved reports."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.cli import main
from pytest_passk.cli_reports import BAD_INPUT_STATUS
from pytest_passk.compare_runs import (
    DUPLICATE_TASK,
    LEFT_OUT,
    NO_COMMON_MODEL,
    NO_SHARED_TASKS,
    compare_reports,
    paired_difference,
)
from pytest_passk.comparison import BOOTSTRAP_RESAMPLES
from pytest_passk.estimate import BOOTSTRAP_SEED, pass_at_k
from pytest_passk.html_report import render_html
from pytest_passk.report_data import TaskCount

from .reports import report


def _save(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_report_renders_the_same_html_as_the_run_would(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = report()
    saved = _save(tmp_path / "r.json", document)
    page = tmp_path / "r.html"
    assert main(["report", str(saved), "--html", str(page), "--plot", str(tmp_path / "p")]) == 0
    assert page.read_text(encoding="utf-8") == render_html(json.loads(json.dumps(document)))
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [
        "pass_at_k.png",
        "pass_at_k.svg",
        "pass_at_k_cost.png",
        "pass_at_k_cost.svg",
    ]
    out = capsys.readouterr().out
    assert "small: 6 tasks; pass@1 0.267 [0.050, 0.533]" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        ("not json", "not JSON"),
        ("[1, 2]", "not a pytest-passk report (the top level is a list"),
        ('{"models": {}}', "no 'schema' field"),
        ('{"schema": "pytest-passk/report/v0"}', "is not 'pytest-passk/report/v1'"),
        ('{"schema": "pytest-passk/report/v1", "models": {}, "tasks": [{}]}', "task record 0"),
    ],
)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_bad_input_is_one_line_and_status_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str | None,
    expected: str,
    command: str,
) -> None:
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    good = _save(tmp_path / "good.json", report())
    argv = ["report", str(bad)] if command == "report" else ["compare", str(good), str(bad)]
    assert main(argv) == BAD_INPUT_STATUS
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and expected in captured.err
    assert "Traceback" not in captured.err
    assert captured.err.startswith("pytest-passk: error: ")


def _broken(change: str) -> dict[str, Any]:
    document = report()
    if change == "c > n":
        document["tasks"][0]["c"] = document["tasks"][0]["n"] + 1
    elif change == "n < 0":
        document["tasks"][0]["n"] = -1
    elif change == "n is a bool":
        document["tasks"][0]["n"] = True
    elif change == "k not an int":
        document["k"] = ["x"]
    elif change == "k < 1":
        document["k"] = [0, 1]
    elif change == "model not an object":
        document["models"]["small"] = [1]
    elif change == "ci95 a list":
        document["models"]["small"]["ci95"] = [0.1, 0.5]
    elif change == "ci95 one bound":
        document["models"]["small"]["ci95"]["1"] = [0.1]
    elif change == "ci95 a number":
        document["models"]["small"]["ci95"]["5"] = 0.5
    elif change == "ci95 a string bound":
        document["models"]["small"]["ci95"]["5"] = ["0.1", 0.9]
    elif change == "pass_at_k a list":
        document["models"]["small"]["pass_at_k"] = [0.1]
    return document


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ("c > n", "need 0 <= c <= n"),
        ("n < 0", "task record 0 has n=-1"),
        ("n is a bool", "task record 0 lacks task_id, model, n or c"),
        ("k not an int", "'k' must be a list of integers >= 1"),
        ("k < 1", "'k' must be a list of integers >= 1"),
        ("model not an object", "models['small'] is not an object"),
        ("ci95 a list", "models['small'].ci95"),
        ("ci95 one bound", "models['small'].ci95['1'] is [0.1]"),
        ("ci95 a number", "models['small'].ci95['5']"),
        ("ci95 a string bound", "models['small'].ci95['5'] is ['0.1', 0.9]"),
        ("pass_at_k a list", "models['small'].pass_at_k"),
    ],
)
@pytest.mark.parametrize("command", ["report", "compare"])
def test_impossible_counts_and_values_are_one_line_and_status_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
    expected: str,
    command: str,
) -> None:
    """A hand-edited or merged report with counts no run can produce is refused by name, not
    with the estimator's traceback halfway through the rendering.
    """
    bad = _save(tmp_path / "bad.json", _broken(change))
    good = _save(tmp_path / "good.json", report())
    argv = ["report", str(bad), "--html", str(tmp_path / "r.html")]
    if command == "compare":
        argv = ["compare", str(good), str(bad)]
    assert main(argv) == BAD_INPUT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and expected in err, err
    assert err.startswith("pytest-passk: error: ")


def test_report_html_under_a_file_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = _save(tmp_path / "r.json", report())
    assert main(["report", str(saved), "--html", str(saved / "r.html")]) == 2
    assert "is a file, not a directory" in capsys.readouterr().err


def test_report_html_into_a_new_directory(tmp_path: Path) -> None:
    saved = _save(tmp_path / "r.json", report())
    page = tmp_path / "new" / "dir" / "r.html"
    assert main(["report", str(saved), "--html", str(page)]) == 0
    assert "<h2>Summary</h2>" in page.read_text(encoding="utf-8")


def test_report_plot_without_matplotlib_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_passk.plots.matplotlib_available", lambda: False)
    saved = _save(tmp_path / "r.json", report())
    assert main(["report", str(saved), "--plot", str(tmp_path / "p")]) == 2
    assert "pip install 'pytest-passk[plot]'" in capsys.readouterr().err


def _direct_paired_interval(diffs: list[float]) -> tuple[float, float]:
    """The paired percentile bootstrap written out: resample task indices, mean the pairs'
    differences, take the 2.5th and 97.5th percentile (the report's seed and count).
    """
    rng = random.Random(BOOTSTRAP_SEED)
    size = len(diffs)
    means = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        picks = [math.floor(rng.random() * size) for _ in range(size)]
        means.append(math.fsum(diffs[i] for i in picks) / size)
    means.sort()
    return (
        means[math.floor(0.025 * (BOOTSTRAP_RESAMPLES - 1))],
        means[math.ceil(0.975 * (BOOTSTRAP_RESAMPLES - 1))],
    )


def test_paired_difference_against_a_direct_computation() -> None:
    a = [TaskCount(f"t{i}", 10, c) for i, c in enumerate([0, 3, 10, 5, 1, 0, 7, 2])]
    b = [TaskCount(f"t{i}", 10, c) for i, c in enumerate([1, 3, 10, 9, 0, 4, 7, 6])]
    for k in (1, 5):
        result = paired_difference(list(zip(a, b, strict=True)), k)
        diffs = [pass_at_k(y.n, y.c, k) - pass_at_k(x.n, x.c, k) for x, y in zip(a, b, strict=True)]
        assert result.diff == pytest.approx(sum(diffs) / len(diffs), abs=1e-12)
        low, high = _direct_paired_interval(diffs)
        assert result.low == pytest.approx(low)
        assert result.high == pytest.approx(high)
        assert result.low <= result.diff <= result.high
        assert result.tasks == 8


def test_paired_difference_leaves_out_tasks_with_n_below_k() -> None:
    pairs = [
        (TaskCount("a", 10, 5), TaskCount("a", 3, 3)),
        (TaskCount("b", 10, 0), TaskCount("b", 10, 10)),
    ]
    result = paired_difference(pairs, 5)
    assert result.tasks == 1 and result.diff == 1.0
    assert math.isnan(paired_difference(pairs, 11).diff)


def test_compare_pairs_one_model_each_and_counts_one_sided_solves(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    small, large = report(("small",)), report(("large",))
    comparison = compare_reports(small, large).models
    assert len(comparison) == 1
    assert (comparison[0].model_a, comparison[0].model_b) == ("small", "large")
    assert comparison[0].shared_tasks == 6
    assert (comparison[0].solved_only_by_a, comparison[0].solved_only_by_b) == (1, 1)
    a, b = _save(tmp_path / "a.json", small), _save(tmp_path / "b.json", large)
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "small (A) vs large (B): 6 shared tasks" in out
    assert "+0.200 [" in out  # pass@1: 0.467 - 0.267
    assert "solved in one run only: 1 by A, 1 by B" in out


def test_compare_refuses_reports_without_common_ground(tmp_path: Path) -> None:
    both = report()
    other = json.loads(json.dumps(report(("small",))))
    other["models"] = {"x": {}, "y": {}}
    for task in other["tasks"]:
        task["model"] = "x"
    with pytest.raises(Exception, match=NO_COMMON_MODEL.split("(")[0].strip()):
        compare_reports(both, other)
    renamed = json.loads(json.dumps(report(("small",))))
    for task in renamed["tasks"]:
        task["task_id"] = "Other/" + task["task_id"]
    with pytest.raises(Exception, match=NO_SHARED_TASKS):
        compare_reports(report(("small",)), renamed)


def _without_shared_tasks(document: dict[str, Any], model: str) -> dict[str, Any]:
    document = json.loads(json.dumps(document))
    for task in document["tasks"]:
        if task["model"] == model:
            task["task_id"] = "Other/" + task["task_id"]
    return document


def test_compare_leaves_out_a_model_without_shared_tasks_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One matched model with no task in common must not sink the comparison of the others."""
    first = _save(tmp_path / "a.json", report())
    second = _save(tmp_path / "b.json", _without_shared_tasks(report(), "large"))
    assert main(["compare", str(first), str(second)]) == 0
    captured = capsys.readouterr()
    assert "small: 6 shared tasks" in captured.out
    assert "large:" not in captured.out.replace(LEFT_OUT.format(model="large", a=6, b=6), "")
    assert captured.out.count(LEFT_OUT.format(model="large", a=6, b=6)) == 1
    assert "Traceback" not in captured.err and captured.err == ""
    comparison = compare_reports(json.loads(first.read_text()), json.loads(second.read_text()))
    assert [c.model_a for c in comparison.models] == ["small"]
    assert comparison.left_out == (LEFT_OUT.format(model="large", a=6, b=6),)


def test_compare_with_no_model_sharing_a_task_is_still_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = _save(tmp_path / "a.json", report())
    both = _without_shared_tasks(_without_shared_tasks(report(), "large"), "small")
    second = _save(tmp_path / "b.json", both)
    assert main(["compare", str(first), str(second)]) == BAD_INPUT_STATUS
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and NO_SHARED_TASKS in err


def _duplicated(document: dict[str, Any], *, same_item: bool) -> dict[str, Any]:
    """``small``'s HumanEval/1 recorded a second time: from another dataset file with the same
    task ids (a legitimate run), or the same record twice (a merged or hand-edited file).
    """
    document = json.loads(json.dumps(document))
    record = next(
        t for t in document["tasks"] if (t["model"], t["task_id"]) == ("small", "HumanEval/1")
    )
    twin = json.loads(json.dumps(record)) | {"c": 10}
    if not same_item:
        twin["nodeid"] = "other/passk_x.jsonl::HumanEval/1[small]"
    document["tasks"].append(twin)
    return document


def test_compare_refuses_a_report_with_one_record_twice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = _save(tmp_path / "good.json", report(("small",)))
    bad = _save(tmp_path / "dup.json", _duplicated(report(("small",)), same_item=True))
    assert main(["compare", str(good), str(bad)]) == BAD_INPUT_STATUS
    err = capsys.readouterr().err
    expected = DUPLICATE_TASK.format(
        path=bad, model="small", task="HumanEval/1", item="passk_x.jsonl::HumanEval/1"
    )
    assert err == f"pytest-passk: error: {expected}\n"


def test_compare_pairs_tasks_with_one_id_in_two_files_by_item(tmp_path: Path) -> None:
    """Two dataset files with the same task ids are two tasks in the run (and in its report):
    both are compared, neither overwrites the other.
    """
    first = _duplicated(report(("small",)), same_item=False)
    second = _duplicated(report(("small",)), same_item=False)
    for task in second["tasks"]:
        task["c"] = 0
    comparison = compare_reports(first, second).models[0]
    assert comparison.shared_tasks == 7
    assert (comparison.only_in_a, comparison.only_in_b) == (0, 0)
    # Every task small solved in A, the twin (c = 10) among them, and none in B.
    assert comparison.solved_only_by_a == 5
    # Against a report with the id once, the twins cannot be told apart: neither is paired.
    single = compare_reports(first, report(("small",))).models[0]
    assert (single.shared_tasks, single.only_in_a, single.only_in_b) == (5, 2, 1)
