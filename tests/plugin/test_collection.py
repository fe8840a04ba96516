"""Collecting tasks: decorated tests, datasets (plain, gzip, ini globs), bad lines, subsets."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from .conftest import ADD_TASK, DATASET_ROWS, write_jsonl


def test_decorated_task_runs_its_reference_in_check_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=ADD_TASK)
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*test_tasks.py::test_add PASSED*", "*references: 1 passed*"])


def test_task_without_reference_is_skipped_with_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        import pytest_passk as passk

        @passk.task(prompt="def f():\\n    pass\\n", entry_point="f")
        def test_f(candidate):
            assert candidate() is None
        """
    )
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*has no reference solution*reference=*"])


def test_wrong_reference_fails_check_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        import pytest_passk as passk

        @passk.task(prompt="def f():\\n", entry_point="f", reference="def f():\\n    return 1\\n")
        def test_f(candidate):
            assert candidate() == 2
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*0/1 candidates passed (failed 1)*",
            "*reference solution does not pass*",
            "*assert candidate() == 2*",
        ]
    )


def test_dataset_matching_passk_files_is_collected(
    pytester: pytest.Pytester, dataset: Path
) -> None:
    write_jsonl(pytester.path / "other.jsonl", DATASET_ROWS)  # not matching passk_*.jsonl
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["passk_demo.jsonl::Demo/0", "passk_demo.jsonl::Demo/1", "*2 tests collected*"]
    )


def test_dataset_named_on_command_line_is_collected(pytester: pytest.Pytester) -> None:
    path = write_jsonl(pytester.path / "HumanEvalish.jsonl", DATASET_ROWS)
    result = pytester.runpytest(str(path))
    result.assert_outcomes(passed=2)


def test_gzip_dataset(pytester: pytest.Pytester) -> None:
    path = pytester.path / "tasks.jsonl.gz"
    with gzip.open(path, "wt") as stream:
        stream.write("".join(json.dumps(row) + "\n" for row in DATASET_ROWS))
    result = pytester.runpytest(str(path))
    result.assert_outcomes(passed=2)


def test_custom_passk_files_glob(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "bench.jsonl", DATASET_ROWS)
    pytester.makeini("[pytest]\npassk_files = bench*.jsonl\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_bad_line_is_an_error_naming_file_and_line_while_others_run(
    pytester: pytest.Pytester,
) -> None:
    path = pytester.path / "passk_bad.jsonl"
    lines = [
        json.dumps(DATASET_ROWS[0]),
        "{not json",
        json.dumps({"task_id": "x"}),
        json.dumps(DATASET_ROWS[1]),
    ]
    path.write_text("\n".join(lines) + "\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, errors=2)
    result.stdout.fnmatch_lines(
        [
            f"*{path}:2: invalid JSON*HumanEval format*",
            f"*{path}:3: missing or non-string field(s) prompt, entry_point, test*",
        ]
    )
    assert "Traceback" not in result.stdout.str()
    assert "CallInfo" not in result.stdout.str()


def test_duplicate_task_id_is_an_error(pytester: pytest.Pytester) -> None:
    write_jsonl(pytester.path / "passk_dup.jsonl", [DATASET_ROWS[0], DATASET_ROWS[0]])
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*passk_dup.jsonl:2: duplicate task_id 'Demo/0' (first on line 1)*"]
    )


def test_unreadable_gzip_is_a_collection_error(pytester: pytest.Pytester) -> None:
    (pytester.path / "passk_broken.jsonl.gz").write_bytes(b"\x1f\x8b\x08garbage")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*passk_broken.jsonl.gz: cannot read the dataset*"])


def test_keyword_and_node_id_subsets(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makepyfile(test_tasks=ADD_TASK)
    result = pytester.runpytest("-k", "Demo and 1")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest(f"{dataset.name}::Demo/0")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("test_tasks.py::test_add")
    result.assert_outcomes(passed=1)


def test_one_item_per_model(pytester: pytest.Pytester, dataset: Path, samples: Path) -> None:
    other = write_jsonl(
        pytester.path / "other_samples.jsonl",
        [{"task_id": "Demo/0", "completion": "    return x + 1\n"}],
    )
    result = pytester.runpytest(
        "--passk=1",
        f"--model=replay:{samples.name}",
        f"--model=replay:{other.name}",
        "--collect-only",
        "-q",
    )
    result.stdout.fnmatch_lines(
        [
            "passk_demo.jsonl::Demo/0[[]replay:samples.jsonl[]]",
            "passk_demo.jsonl::Demo/0[[]replay:other_samples.jsonl[]]",
            "*4 tests collected*",
        ]
    )


def test_imported_task_is_not_collected_twice(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(tasklib=ADD_TASK.replace("def test_add", "def add_task"))
    pytester.makepyfile(test_a="from tasklib import add_task\n", test_b="from tasklib import *\n")
    pytester.makepyfile(test_tasks=ADD_TASK)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["test_tasks.py::test_add", "*1 test collected*"])


DOCSTRING_TASK = """
import pytest_passk as passk

EXPECTED = {1: "1", 3: "Fizz"}

def expected(n):
    return EXPECTED[n]

@passk.task(entry_point="fizz")
def test_fizz(candidate):
    '''
    def fizz(n: int) -> str:
        \"\"\"Fizz for multiples of 3.\"\"\"
    '''
    for n in (1, 3):
        assert candidate(n) == expected(n)
"""


def test_prompt_from_docstring_and_module_helpers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_tasks=DOCSTRING_TASK)
    samples = write_jsonl(
        pytester.path / "s.jsonl",
        [
            {
                "task_id": "test_tasks.py::test_fizz",
                "completion": "    return 'Fizz' if n % 3 == 0 else str(n)\n",
            }
        ],
    )
    result = pytester.runpytest("--passk=1", f"--model=replay:{samples.name}")
    result.assert_outcomes(passed=1)


def test_hypothesis_given_under_task(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        from hypothesis import given, settings, strategies as st
        import pytest_passk as passk

        @passk.task(
            prompt="def neg(x):\\n", entry_point="neg", reference="def neg(x):\\n    return -x\\n"
        )
        # No deadline: each example calls the candidate across the sandbox, which a loaded
        # machine can slow past hypothesis's 200 ms (an error, not a verdict on the program).
        @settings(max_examples=20, database=None, deadline=None)
        @given(st.integers())
        def test_neg(candidate, x):
            assert candidate(candidate(x)) == x
            assert candidate(x) + x == 0
        """
    )
    samples = write_jsonl(
        pytester.path / "s.jsonl",
        [
            {"task_id": "test_tasks.py::test_neg", "completion": "    return -x\n"},
            {
                "task_id": "test_tasks.py::test_neg",
                "completion": "    return x if x == 0 else -x\n",
            },
            {"task_id": "test_tasks.py::test_neg", "completion": "    return abs(x)\n"},
        ],
    )
    result = pytester.runpytest("--passk=1,3", f"--model=replay:{samples.name}", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*tasks*n*pass@1*", "*replay:s.jsonl*3*0.667*1.000*"])


def test_task_on_a_method_is_an_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks="""
        import pytest_passk as passk

        class TestGroup:
            @passk.task(prompt="def f():\\n", entry_point="f")
            def test_f(self, candidate):
                pass
        """
    )
    result = pytester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*@passk.task on a method is not supported*module level*"])


def test_decorator_errors_name_the_task_while_others_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_tasks=ADD_TASK
        + """

@passk.task(entry_point="f")
def test_f(candidate):
    pass


@passk.task(prompt="def g():\\n", timeout=-1)
def test_g(candidate):
    pass
"""
    )
    result = pytester.runpytest()
    result.assert_outcomes(passed=1, errors=2)
    # One at a time: the two errors come in the items' order, which pytest-randomly shuffles.
    result.stdout.fnmatch_lines(
        ["*test_tasks.py:*: task 'test_f' has no prompt; pass prompt=... *docstring*"]
    )
    result.stdout.fnmatch_lines(["*test_tasks.py:*: timeout=-1 must be > 0; give seconds*"])
    output = result.stdout.str()
    assert "Traceback" not in output and "CallInfo" not in output and "raise " not in output
