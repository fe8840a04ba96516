"""Prompt rendering for completion and chat models."""

from __future__ import annotations

from pytest_passk.prompts import (
    CHAT_SYSTEM,
    COMPLETION_STOP,
    PROMPT_TEMPLATE_VERSION,
    PromptStyle,
    render_prompt,
)
from pytest_passk.tasks import CheckTest, Task

CLOSE_PROMPT = (
    "from typing import List\n\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
    "    given threshold.\n"
    "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n"
    "    False\n"
    '    """\n'
)
CLOSE = Task("HumanEval/0", CLOSE_PROMPT, "has_close_elements", CheckTest("def check(c): pass\n"))


def test_completion_prompt_is_the_task_prompt_verbatim() -> None:
    rendered = render_prompt(CLOSE, PromptStyle.COMPLETION)
    assert rendered.text == CLOSE_PROMPT
    assert rendered.messages == ()
    assert rendered.stop == COMPLETION_STOP
    assert "\ndef " in rendered.stop and "\nif __name__" in rendered.stop
    assert rendered.template_version == PROMPT_TEMPLATE_VERSION


def test_chat_prompt_wraps_the_prompt_in_a_fence() -> None:
    rendered = render_prompt(CLOSE, PromptStyle.CHAT)
    assert rendered.stop == ()
    (system_role, system), (user_role, user) = rendered.messages
    assert (system_role, system) == ("system", CHAT_SYSTEM)
    assert user_role == "user"
    assert user == rendered.text
    assert f"```python\n{CLOSE_PROMPT.rstrip()}\n```" in user
