"""pytest's own habits in sampling mode: --tb styles, the short summary, -ra skip locations,
failures that count as failures, and Ctrl-C during the generation phase.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_passk.collect import TaskFailed
from pytest_passk.session import INTERRUPTED_SAMPLING

PYTEST_8 = pytest.version_tuple >= (8,)
HEADLINE = (
    "*0/4 candidates passed (failed 3, error 1); sample 0: AssertionError: assert candidate(3) == 6"
)


def run(pytester: pytest.Pytester, samples: Path, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--passk=1", f"--model=replay:{samples}", "-p", "no:randomly", *args)


def test_tb_line_prints_one_line_per_failure(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = run(pytester, samples, "--tb=line")
    result.stdout.fnmatch_lines(
        ["*= FAILURES =*", "passk_demo.jsonl:2: " + HEADLINE[1:], "*= pass@k =*"]
    )
    result.stdout.no_fnmatch_line("*first failing candidate*")


def test_tb_short_leaves_out_the_program(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    short = run(pytester, samples, "--tb=short")
    short.stdout.fnmatch_lines(["*first failing candidate: sample 0 (failed)*"])
    short.stdout.no_fnmatch_line("*return x [*] 3*")
    long = run(pytester, samples, "--tb=long")
    long.stdout.fnmatch_lines(["*return x [*] 3*"])


@pytest.mark.parametrize("on_ci", [False, True], ids=["local", "CI"])
def test_the_short_summary_is_one_line_per_failure_even_with_vv(
    pytester: pytest.Pytester,
    dataset: Path,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
    on_ci: bool,
) -> None:
    # With CI (or BUILD_NUMBER) set, pytest prints each failure's whole message in the summary;
    # elsewhere pytest < 8 trims it to the terminal's width (none of it fits under -vv) and
    # pytest >= 8 prints it whole under -vv. Whole, it must still be one line.
    monkeypatch.delenv("BUILD_NUMBER", raising=False)
    if on_ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
    result = run(pytester, samples, "-vv", "-rf")
    summary = result.stdout.str().split("short test summary info")[1].splitlines()
    failed = [line for line in summary if line.startswith("FAILED")]
    message = "assert candidate(3) == 6" if PYTEST_8 or on_ci else "samples.jsonl]"
    assert len(failed) == 1 and failed[0].endswith(message)
    assert summary.index(failed[0]) == len(summary) - 2  # the next line is pytest's own total


def test_the_summary_is_one_line_under_xdist_too(
    pytester: pytest.Pytester, dataset: Path, samples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On CI pytest prints the whole message (pytest < 8 prints none under -vv, so -v there).
    monkeypatch.setenv("CI", "true")
    result = run(pytester, samples, "-vv" if PYTEST_8 else "-v", "-rf", "-n", "2")
    result.stdout.fnmatch_lines(["FAILED passk_demo.jsonl::Demo/1* - " + HEADLINE[1:]])


def test_skips_point_at_the_task(pytester: pytest.Pytester, samples: Path) -> None:
    pytester.makepyfile(
        test_tasks="""
import pytest_passk as passk

@passk.task(prompt="def f():\\n", entry_point="f")
def test_unrecorded(candidate):
    assert candidate() is None
"""
    )
    result = run(pytester, samples, "-ra")
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_tasks.py:3: no samples for task*"])


def test_a_missed_criterion_is_an_assertion_failure() -> None:
    """allure and other reporters tell failures (assertions) from errors (anything else)."""
    assert issubclass(TaskFailed, AssertionError)


INTERRUPTING_FAKES = """
def interrupted(task_id, prompt, index):
    if index == 3:
        raise KeyboardInterrupt
    return "    return x + 1\\n"
"""


def test_ctrl_c_while_sampling_keeps_samples_and_writes_a_partial_report(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    pytester.makepyfile(fakes=INTERRUPTING_FAKES)
    report = tmp_path / "report.json"
    store = tmp_path / "store"
    result = pytester.runpytest_subprocess(
        "--passk=1",
        "--passk-n=5",
        "--model=fake:fakes:interrupted",
        f"--passk-store={store}",
        f"--passk-report={report}",
    )
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*" + INTERRUPTED_SAMPLING.format(store=store) + "*"])
    document = json.loads(report.read_text())
    assert document["complete"] is False and document["tasks"] == []
    kept = [p for p in store.rglob("*.jsonl")]
    assert kept and sum(p.read_text().count('"kind":"sample"') for p in kept) == 3


def test_last_failed_reruns_only_the_failed_task(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    """pytest >= 9 compares parsed node ids: the model must be the item's parameter id."""
    run(pytester, samples).assert_outcomes(passed=1, failed=1)
    result = run(pytester, samples, "--lf")
    result.stdout.fnmatch_lines(["run-last-failure: rerun previous 1 failure*"])
    result.assert_outcomes(failed=1)  # Demo/0 is left out while its file is collected


def test_failed_first_runs_the_failed_task_first(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    run(pytester, samples)
    result = run(pytester, samples, "--ff", "-v")
    result.stdout.fnmatch_lines(["*run-last-failure: rerun previous 1 failure first*"])
    result.stdout.fnmatch_lines(["*Demo/1[[]replay:*] FAILED*", "*Demo/0[[]replay:*] PASSED*"])


def test_stepwise_resumes_at_the_failed_task(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    run(pytester, samples, "--sw").assert_outcomes(passed=1, failed=1)
    result = run(pytester, samples, "--sw")
    result.stdout.fnmatch_lines(["*stepwise: skipping 1 already passed items*"])
    result.assert_outcomes(failed=1, deselected=1)


def test_new_first_knows_the_tasks_it_has_seen(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makepyfile(test_old="def test_old():\n    pass\n")
    run(pytester, samples, "test_old.py", "passk_demo.jsonl")
    pytester.makepyfile(test_new="def test_new():\n    pass\n")
    result = run(pytester, samples, "--nf", "-v", "test_old.py", "passk_demo.jsonl", "test_new.py")
    # Only test_new is new: the tasks, seen last time, keep their place after test_old.
    result.stdout.fnmatch_lines(
        ["*test_new.py::test_new PASSED*", "*test_old.py::test_old PASSED*", "*Demo/0[[]replay:*"]
    )


def test_node_ids_parse_into_task_and_model(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    """The structured id (pytest >= 9) holds the task as its name and the model as its params."""
    pytester.makeconftest(
        """
def pytest_collection_modifyitems(items):
    for item in items:
        node_id = getattr(item, "id", None)
        if node_id is not None:
            print("ID", node_id.names, node_id.params)
"""
    )
    if not hasattr(pytest.Item, "id"):
        pytest.skip("pytest < 9 has string node ids only")
    result = run(pytester, samples, "--co", "-s")
    result.stdout.fnmatch_lines(
        [f"ID ('Demo/0',) replay:{samples}", f"ID ('Demo/1',) replay:{samples}"]
    )
