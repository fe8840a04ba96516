"""Sampling mode end to end on recorded samples: outcomes, failure text, counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.evaluation import NO_SAMPLES

from .conftest import write_jsonl


def test_item_passes_when_any_candidate_passes(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = pytester.runpytest("--passk=1,2", f"--model=replay:{samples.name}")
    result.assert_outcomes(passed=1, failed=1)


def test_failure_text_shows_counts_and_first_failing_candidate(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = pytester.runpytest("--passk=1", f"--model=replay:{samples.name}")
    result.stdout.fnmatch_lines(
        [
            "*passk: Demo/1 [[]replay:samples.jsonl[]]*",
            "0/4 candidates passed (failed 3, error 1)",
            "first failing candidate: sample 0 (failed)",
            "  AssertionError: assert candidate(3) == 6",
            "   1  def double(x):",
            '   2      """Return 2 * x."""',
            "   3      return x * 3",
        ]
    )


def test_summary_table_and_verbose_rows(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = pytester.runpytest("--passk=1,2", f"--model=replay:{samples.name}", "-v")
    result.stdout.fnmatch_lines(
        [
            "*= pass@k =*",
            "model*tasks*n*pass@1 [[]95% CI[]]*pass@2 [[]95% CI[]]*tokens*cost",
            "replay:samples.jsonl*2*4*0.250 [[]0.000, 0.500[]]*0.417 [[]0.000, 0.833[]]*",
            "*task*model*n*c*pass@1*pass@2*outcomes",
            "Demo/0*replay:samples.jsonl*4*2*0.5000*0.8333*error 1, failed 1*".replace(
                "error 1, failed 1", "failed 1, error 1"
            ),
            "Demo/1*replay:samples.jsonl*4*0*0.0000*0.0000*failed 3, error 1",
        ]
    )


def test_outcome_kinds(pytester: pytest.Pytester, dataset: Path) -> None:
    rows = [
        {"task_id": "Demo/0", "completion": "    return x + 1\n"},
        {"task_id": "Demo/0", "completion": "    return x\n"},
        {"task_id": "Demo/0", "completion": "    raise SystemExit(0)\n"},
        {"task_id": "Demo/0", "completion": "    while True:\n        pass\n"},
        {"task_id": "Demo/0", "solution": "this is not python"},
    ]
    recording = write_jsonl(pytester.path / "kinds.jsonl", rows)
    report = pytester.path / "r.json"
    pytester.runpytest(
        "--passk=1",
        f"--model=replay:{recording.name}",
        "--passk-timeout=1",
        f"--passk-report={report}",
        "passk_demo.jsonl::Demo/0",
    )
    import json

    task = json.loads(report.read_text())["tasks"][0]
    assert task["outcomes"] == {"passed": 1, "failed": 1, "error": 2, "timeout": 1}


def test_fewer_recorded_samples_than_n_runs_with_what_it_has(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = pytester.runpytest("--passk=1,5", "--passk-n=6", f"--model=replay:{samples.name}")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        ["*2 task(s) had fewer samples than requested*tasks left out for n < k (pass@5: 2)*"]
    )
    assert "pass@5" in result.stdout.str()
    result.stdout.fnmatch_lines(["replay:samples.jsonl*n/a*"])


def test_task_without_samples_is_skipped(pytester: pytest.Pytester, dataset: Path) -> None:
    recording = write_jsonl(
        pytester.path / "one.jsonl", [{"task_id": "Demo/0", "completion": "    return x + 1\n"}]
    )
    result = pytester.runpytest("--passk=1", f"--model=replay:{recording.name}", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(
        ["*" + NO_SAMPLES.format(task_id="Demo/1", model=f"replay:{recording.name}") + "*"]
    )


def test_min_pass_at_k(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        import pytest_passk as passk

        @passk.task(prompt="def f(x):\\n", entry_point="f", min_pass_at_k=0.9)
        def test_f(candidate):
            assert candidate(1) == 1
        """
    )
    rows = [
        {"task_id": "test_tasks.py::test_f", "completion": c}
        for c in ["    return x\n", "    return 0\n"]
    ]
    recording = write_jsonl(pytester.path / "s.jsonl", rows)
    result = pytester.runpytest("--passk=1", f"--model=replay:{recording.name}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*1/2 candidates passed*", "*pass@1 = 0.5000 is below the task's min_pass_at_k=0.9*"]
    )


def test_duplicates_run_once(pytester: pytest.Pytester, dataset: Path) -> None:
    rows = [
        {"task_id": "Demo/0", "completion": "    return x + 1\n"},
        {"task_id": "Demo/0", "completion": "    return x + 1  # same program\n"},
        {"task_id": "Demo/0", "completion": "    return (x + 1)\n"},
        {"task_id": "Demo/0", "completion": "    return x + 2\n"},
    ]
    recording = write_jsonl(pytester.path / "dup.jsonl", rows)
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", "passk_demo.jsonl::Demo/0"
    )
    result.stdout.fnmatch_lines(["*2 distinct programs run for 4 samples*"])


def test_solution_form_is_a_whole_program(pytester: pytest.Pytester, dataset: Path) -> None:
    rows = [{"task_id": "Demo/1", "solution": "def double(x):\n    return x * 2\n"}]
    recording = write_jsonl(pytester.path / "sol.jsonl", rows)
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", "passk_demo.jsonl::Demo/1"
    )
    result.assert_outcomes(passed=1)


def test_secrets_are_not_passed_to_candidates(
    pytester: pytest.Pytester, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    program = (
        "import os\ndef inc(x):\n    return x + 1 if 'OPENAI_API_KEY' not in os.environ else 0\n"
    )
    recording = write_jsonl(
        pytester.path / "env.jsonl", [{"task_id": "Demo/0", "solution": program}]
    )
    result = pytester.runpytest(
        "--passk=1", f"--model=replay:{recording.name}", "passk_demo.jsonl::Demo/0"
    )
    result.assert_outcomes(passed=1)


def test_a_non_plain_return_value_is_an_error_that_says_why(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        import pytest_passk as passk

        @passk.task(
            prompt="def evens(n):\\n",
            entry_point="evens",
            reference="def evens(n):\\n    return (i for i in range(n) if i % 2 == 0)\\n",
        )
        def test_evens(candidate):
            assert list(candidate(5)) == [0, 2, 4]
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "0/1 candidates passed (error 1)",
            "*reference solution does not pass the task's test in the sandbox (its error is below)",
            "*non-plain value of type generator*only plain data crosses*docs/security.md*",
        ]
    )
