"""A plugin can serve its own provider through the hooks."""

from __future__ import annotations

from pathlib import Path

import pytest

CONFTEST = """
from pytest_passk.backends import Completion
from pytest_passk.prompts import CompletionForm, PromptStyle


class EchoBackend:
    model = "echo-1"
    prompt_style = PromptStyle.COMPLETION

    def generate(self, requests, params, sink=None):
        return [
            [Completion("    return x + 1\\n", CompletionForm.CONTINUATION, 5, 2)] * r.n
            for r in requests
        ]

    def close(self):
        pass


def pytest_passk_providers(config):
    return ["echo", "broken"]


def pytest_passk_make_backend(config, model, context):
    return EchoBackend() if model.provider == "echo" else None
"""


def test_plugin_provider_serves_samples(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest(
        "--passk=1,3", "--model=echo:anything", f"--passk-store={tmp_path / 'store'}"
    )
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["echo:anything*2*3*30+12*"])


def test_declared_provider_without_backend_is_a_usage_error(
    pytester: pytest.Pytester, dataset: Path
) -> None:
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest("--passk=1", "--model=broken:x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no plugin built a backend for provider 'broken'*"])


def test_undeclared_provider_is_unknown(pytester: pytest.Pytester, dataset: Path) -> None:
    pytester.makeconftest(CONFTEST)
    result = pytester.runpytest("--passk=1", "--model=other:x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown provider 'other'*known providers: *echo, broken*"])


FAILING_CONFTEST = """
from pytest_passk.errors import BackendError
from pytest_passk.prompts import PromptStyle


class DownBackend:
    model = "down-1"
    prompt_style = PromptStyle.COMPLETION

    def generate(self, requests, params, sink=None):
        raise BackendError("the server answered 503")

    def close(self):
        pass


def pytest_passk_providers(config):
    return ["down"]


def pytest_passk_make_backend(config, model, context):
    return DownBackend()
"""


def test_generation_failure_is_a_usage_error(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    pytester.makeconftest(FAILING_CONFTEST)
    result = pytester.runpytest("--passk=1", "--model=down:x", f"--passk-store={tmp_path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model=down:x: generation failed: the server answered 503*"])


def test_generation_failure_on_xdist_workers_fails_the_items(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    pytester.makeconftest(FAILING_CONFTEST)
    result = pytester.runpytest(
        "--passk=1", "--model=down:x", f"--passk-store={tmp_path}", "-n", "2"
    )
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*--model=down:x: generation failed: the server answered 503*"])
    assert "Traceback" not in result.stdout.str()
