"""The options this backend reads: validated by Settings, handed over in the BackendContext."""

from __future__ import annotations

from pathlib import Path

import pytest

from pytest_passk.backends.openai import OpenAIBackend
from pytest_passk.backends.openai_batch import BatchBackend
from pytest_passk.backends.openai_client import KEY_MISSING
from pytest_passk.backends.registry import (
    BackendContext,
    build_backend,
    check_backend,
    resolve_model,
)
from pytest_passk.errors import BackendUnavailable
from pytest_passk.prompts import PromptStyle


def test_bad_option_values_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest("--passk-concurrency=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --passk-concurrency='0': must be at least 1*"])
    result = pytester.runpytest("--passk-request-timeout=soon")
    result.stderr.fnmatch_lines(["ERROR: --passk-request-timeout='soon': not a number*"])


def test_a_bad_price_line_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\npassk_prices =\n    gpt-4o = 2.5 10\n    mine = 1\n")
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: ini passk_prices line 2: expected two prices in 'mine = 1'; write*"]
    )


def test_the_context_selects_the_backend(tmp_path: Path) -> None:
    base = tmp_path
    url = "http://127.0.0.1:9/v1"
    chat = resolve_model("gpt-4o-mini", {})
    context = BackendContext(base, base_url=url, concurrency=3, request_timeout=7.0)
    backend = build_backend(chat, context)
    assert isinstance(backend, OpenAIBackend)
    assert backend.prompt_style is PromptStyle.CHAT and backend.model == "gpt-4o-mini"
    completions = resolve_model("openai-completions:base", {})
    assert build_backend(completions, context).prompt_style is PromptStyle.COMPLETION
    batch = BackendContext(base, base_url=url, openai_batch=True, store_dir=base)
    assert isinstance(build_backend(chat, batch), BatchBackend)


def test_no_key_and_no_server_is_refused_before_anything_loads(tmp_path: Path) -> None:
    model = resolve_model("gpt-4o", {})
    with pytest.raises(BackendUnavailable) as failure:
        check_backend(model, BackendContext(tmp_path))
    assert str(failure.value) == KEY_MISSING
    # A local server needs no key.
    assert check_backend(model, BackendContext(tmp_path, base_url="http://x/v1")) is None
