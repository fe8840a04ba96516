"""Ini keys in every configuration format: ini files, ``[tool.pytest.ini_options]`` and, on
pytest >= 9, native TOML (``[tool.pytest]``), where values keep their TOML types.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_passk.ini_types import INI_UNIONS

NATIVE_TOML = """
[tool.pytest]
passk = "1,2"
passk_n = 4
passk_timeout = 4
passk_temperature = 0
passk_seed = 7
passk_fail_under = 0.1
passk_openai_batch = false
passk_model = ["replay:samples.jsonl"]
passk_report = "report.json"
"""


def test_native_toml_takes_numbers_and_lists(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    if not INI_UNIONS:
        pytest.skip("typed ini keys need pytest >= 9.2 (before, TOML values are quoted strings)")
    pytester.makepyprojecttoml(NATIVE_TOML)
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["passk: k=1,2 n=4 models=replay:samples.jsonl"])
    result.stdout.fnmatch_lines(["passk: T=0 top_p=0.95 max_tokens=1024 seed=7 timeout=4s*"])
    settings = json.loads((pytester.path / "report.json").read_text())["settings"]
    assert settings["timeout"] == 4.0 and settings["temperature"] == 0.0 and settings["n"] == 4


def test_native_toml_strings_are_validated_as_in_ini_files(pytester: pytest.Pytester) -> None:
    if not INI_UNIONS:
        pytest.skip("typed ini keys need pytest >= 9.2")
    pytester.makepyprojecttoml('[tool.pytest]\npassk_timeout = "soon"\n')
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini passk_timeout='soon': not a number*"])


def test_ini_options_table_takes_a_list_of_models(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makepyprojecttoml(
        '[tool.pytest.ini_options]\npassk = "1"\npassk_model = ["replay:samples.jsonl", "b"]\n'
        'passk_models = ["b = replay:samples.jsonl"]\n'
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["passk: k=1 n=* models=replay:samples.jsonl, b=replay:*"])


def test_ini_files_separate_models_by_spaces_or_commas(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makeini(
        "[pytest]\npassk = 1\npassk_timeout = 4\npassk_model = replay:samples.jsonl, b\n"
        "passk_models =\n    b = replay:samples.jsonl\n"
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(["passk: T=* timeout=4s*"])
