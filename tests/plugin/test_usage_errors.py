"""Every bad option or ini value is a usage error naming the option and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.backends import vllm_checks
from pytest_passk.settings import BAD_ALIAS, N_BELOW_K


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--passk=abc"], "--passk='abc': not a comma-separated list of integers; write e.g."),
        (["--passk=0,5"], "--passk='0,5': every k must be an integer >= 1"),
        (["--passk=1", "--passk-n=x"], "--passk-n='x': not an integer"),
        (["--passk=1", "--passk-n=0"], "--passk-n='0': must be at least 1"),
        (["--passk=1", "--passk-temperature=hot"], "--passk-temperature='hot': not a number"),
        (["--passk=1", "--passk-temperature=3"], "temperature must be within 0..2"),
        (["--passk=1", "--passk-top-p=0"], "--passk-top-p='0': top_p must be within (0, 1]"),
        (["--passk=1", "--passk-max-tokens=-5"], "--passk-max-tokens='-5': must be at least 1"),
        (["--passk=1", "--passk-seed=1.5"], "--passk-seed='1.5': not an integer"),
        (["--passk=1", "--passk-timeout=0"], "--passk-timeout='0': must be greater than 0"),
        (["--passk=1", "--passk-timeout=nan"], "--passk-timeout='nan': must be finite"),
        (["--passk=1", "--passk-workers=0"], "--passk-workers='0': must be at least 1"),
        (["--passk=1", "--passk-fail-under=150%"], "--passk-fail-under='150%': outside 0..1"),
        (["--passk=1", "--model=nonsense"], "--model=nonsense: unknown model 'nonsense'"),
        (["--passk=1", "--model=bogus:thing"], "unknown provider 'bogus'"),
        (["--passk=1", "--model=openai:"], "names no model after 'openai:'"),
    ],
)
def test_bad_option_is_a_usage_error(
    pytester: pytest.Pytester, args: list[str], expected: str
) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])
    assert "Traceback" not in result.stderr.str()


def test_n_below_max_k(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--passk=1,10", "--passk-n=5")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    message = N_BELOW_K.format(source="--passk-n", n=5, k=10)
    assert message in result.stderr.str()


def test_ini_value_names_the_ini_key(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npassk_timeout = soon\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini passk_timeout='soon': not a number*"])


def test_command_line_wins_over_ini(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makeini("[pytest]\npassk_timeout = soon\n")
    result = pytester.runpytest("--passk-timeout=7", str(dataset))
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*timeout=7s*"])


def test_bad_alias_line(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npassk_models =\n    mine openai:gpt-4o\n")
    result = pytester.runpytest("--passk=1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert BAD_ALIAS.format(line="mine openai:gpt-4o") in result.stderr.str()


def test_ini_alias_resolves(pytester: pytest.Pytester, dataset: Path, samples: Path) -> None:
    pytester.makeini(f"[pytest]\npassk_models =\n    recorded = replay:{samples}\n")
    result = pytester.runpytest("--passk=1", "--model=recorded", str(dataset))
    result.stdout.fnmatch_lines(["*models=recorded=replay:*samples.jsonl*"])


def test_missing_replay_file(pytester: pytest.Pytester, dataset: Path) -> None:
    result = pytester.runpytest("--passk=1", "--model=replay:nowhere.jsonl", str(dataset))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model=replay:nowhere.jsonl*does not exist*"])


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_malformed_replay_line_names_file_and_line(
    pytester: pytest.Pytester, dataset: Path, xdist: list[str]
) -> None:
    bad = pytester.path / "bad.jsonl"
    bad.write_text('{"task_id": "Demo/0", "completion": "    return x + 1\\n"}\n{"task_id": 3}\n')
    result = pytester.runpytest("--passk=1", f"--model=replay:{bad}", str(dataset), *xdist)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{bad}:2: no string task_id*"])


def test_default_model_without_extra_names_the_fix(
    pytester: pytest.Pytester, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As on a machine without the cpu extra, even where this venv has it.
    monkeypatch.setattr(vllm_checks, "_cpu_build", lambda: False)
    result = pytester.runpytest("--passk=1", str(dataset))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert "--model=smollm2" in stderr
    assert "pip install 'pytest-passk[cpu]'" in stderr


def test_openai_without_key_names_the_fix(
    pytester: pytest.Pytester, dataset: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    result = pytester.runpytest("--passk=1", "--model=gpt-4o", str(dataset))
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    stderr = result.stderr.str()
    assert "--model=gpt-4o" in stderr
    assert ("pytest-passk[openai]" in stderr) or ("OPENAI_API_KEY" in stderr)


def test_ini_keys_configure_a_sampling_run(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makeini(
        f"[pytest]\npassk = 1,2\npassk_n = 3\npassk_model = replay:{samples.name}\n"
        "passk_timeout = 2\npassk_workers = 1\npassk_temperature = 0\n"
    )
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        [
            "passk: k=1,2 n=3 models=replay:samples.jsonl",
            "passk: T=0 top_p=0.95 max_tokens=1024 seed=0 timeout=2s workers=1*",
            "*passk: sampling 6 samples for 2 tasks from replay:samples.jsonl*",
        ]
    )
    result.assert_outcomes(passed=1, failed=1)


def test_ini_paths_are_relative_to_the_ini_file(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    pytester.makeini(
        f"[pytest]\npassk = 1\npassk_model = replay:{samples.name}\npassk_report = out/r.json\n"
    )
    sub = pytester.mkdir("sub")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(sub)
        result = pytester.runpytest(str(dataset))
    result.assert_outcomes(passed=1, failed=1)
    assert (pytester.path / "out" / "r.json").is_file()


@pytest.mark.parametrize(
    ("args", "ini", "expected"),
    [
        (["--passk-report=afile/r.json"], "", "--passk-report='afile/r.json': *afile is a file"),
        (["--passk-report=."], "", "--passk-report='.': is a directory"),
        (["--passk-samples-out=afile/s.jsonl"], "", "--passk-samples-out='afile/s.jsonl': *afile"),
        ([], "passk_report = afile/r.json", "ini passk_report='afile/r.json': *afile is a file"),
    ],
)
def test_an_output_file_that_cannot_be_written_is_a_usage_error(
    pytester: pytest.Pytester,
    dataset: Path,
    samples: Path,
    args: list[str],
    ini: str,
    expected: str,
) -> None:
    """Said before anything is sampled, not as an INTERNALERROR after the whole run."""
    (pytester.path / "afile").write_text("x")
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    result = pytester.runpytest("--passk=1", "--model=replay:samples.jsonl", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{expected}*"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
