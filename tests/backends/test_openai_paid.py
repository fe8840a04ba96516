"""Against the real OpenAI API: opt in with --run-paid and OPENAI_API_KEY (costs under a cent)."""

from __future__ import annotations

import os

import pytest

from pytest_passk.backends import GenerationRequest, SamplingParams
from pytest_passk.backends.openai import OpenAIBackend
from pytest_passk.backends.openai_client import KEY_REFUSED, OpenAIEndpoint, ServerTarget
from pytest_passk.errors import BackendUnavailable
from pytest_passk.pricing import cost_usd
from pytest_passk.prompts import CHAT_INSTRUCTION, CHAT_SYSTEM, PromptStyle, RenderedPrompt

pytestmark = [
    pytest.mark.paid,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="needs OPENAI_API_KEY"),
]


def _add_prompt() -> RenderedPrompt:
    """The chat prompt pytest-passk renders for an ``add`` task."""
    task = 'def add(a: int, b: int) -> int:\n    """Return a + b."""'
    user = CHAT_INSTRUCTION.format(prompt=task)
    return RenderedPrompt(PromptStyle.CHAT, user, (("system", CHAT_SYSTEM), ("user", user)), ())


def test_gpt_4o_mini_draws_samples_with_usage_and_cost() -> None:
    target = ServerTarget.from_environment("gpt-4o-mini", OpenAIEndpoint.CHAT, None)
    backend = OpenAIBackend(target, concurrency=2)
    prompt = _add_prompt()
    params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=128, seed=0)
    samples = backend.generate([GenerationRequest("paid/add", prompt, 3)], params)[0]
    assert len(samples) == 3
    assert all("def add" in sample.text for sample in samples)
    prompt_tokens = sum(s.prompt_tokens for s in samples)
    completion_tokens = sum(s.completion_tokens for s in samples)
    assert prompt_tokens == backend.stats.prompt_tokens > 0
    assert completion_tokens == backend.stats.completion_tokens > 0
    cost = cost_usd("gpt-4o-mini", prompt_tokens, completion_tokens)
    assert cost is not None and 0 < cost < 0.01


def test_a_bad_key_is_refused_by_the_probe() -> None:
    target = ServerTarget("gpt-4o-mini", OpenAIEndpoint.CHAT, None, "sk-not-a-real-key-000000")
    with pytest.raises(BackendUnavailable) as failure:
        OpenAIBackend(target).probe()
    assert str(failure.value) == KEY_REFUSED.format(server="the OpenAI API", status=401)
