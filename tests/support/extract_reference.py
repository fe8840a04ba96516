"""The slow, plainly written versions of extraction's text steps, as they were before their fast
paths: tests compare each fast path with its reference on generated text (a fast path must never
change a result). Not used by the plugin.
"""

from __future__ import annotations

import re

from pytest_passk.extract_body import BodyShape
from pytest_passk.extract_shapes import Block, body_indent, looks_like_prose

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^`\s]*)[^`\n]*$")
_PYTHON_TAGS = {"", "python", "python3", "py", "py3", "python3.10", "python3.11", "python3.12"}


def has_fence(text: str) -> bool:
    """Whether ``text`` has a line opening or closing a markdown fence."""
    if "```" not in text and "~~~" not in text:
        return False
    return any(_FENCE_OPEN.match(line) for line in text.split("\n"))


def first_fence(text: str) -> int:
    """Where the first fence line of ``text`` starts (``len(text)`` when there is none)."""
    offset = 0
    for line in text.split("\n"):
        if _FENCE_OPEN.match(line):
            return offset
        offset += len(line) + 1
    return len(text)


def fenced_blocks(text: str) -> list[Block]:
    """The non-empty Python blocks of ``text``, in order; one pass over its lines (no regular
    expression spans lines, so no input makes this slower than linear).
    """
    blocks: list[Block] = []
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, fence, label = len(opening.group(1)), opening.group(2), opening.group(3)
        body: list[str] = []
        closed = False
        while index < len(lines):
            line = lines[index]
            index += 1
            stripped = line.strip()
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                closed = True
                break
            body.append(_dedent_by(line, indent))
        code = "\n".join(body)
        if label.lower() in _PYTHON_TAGS and code.strip() and not _is_console(code):
            blocks.append(Block(code, closed))
    return blocks


def _is_console(code: str) -> bool:
    """An interactive session (``>>> f(1)`` and its output) shows usage, not the solution."""
    first = next((line for line in code.split("\n") if line.strip()), "")
    return first.lstrip().startswith(">>>")


def _dedent_by(line: str, indent: int) -> str:
    """Remove the fence's own indentation (a fence inside a list item) from a line."""
    if not indent:
        return line
    return line[min(indent, len(line) - len(line.lstrip(" \t"))) :]


def body_program(prompt: str, text: str) -> BodyShape | None:
    """The prompt with ``text`` as its function's body, or ``None`` when ``text`` is a whole
    program (an echo, a function under another name) or the prompt ends in no function.
    """
    target = body_indent(prompt)
    if target is None:
        return None
    lines = [_detab(line) for line in text.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or _PROGRAM_START.match(lines[0]):
        return None
    first = lines[0]
    restated = first.lstrip().startswith(('"""', "'''", 'r"""', "r'''")) or not first.startswith(
        " "
    )
    if not first.startswith(" "):
        lines[0] = " " * _lost_indent(lines) + first
    depth = _indent(lines[0])
    head, tail = _split_body(lines, depth)
    body = "\n".join(_reindent(line, depth, target) for line in head)
    program = prompt.rstrip("\n") + "\n" + body + "\n"
    if tail:
        program += "\n\n" + "\n".join(tail) + "\n"
    return BodyShape(program, restated)


_PROGRAM_START = re.compile(r"(async\s+)?def\s|class\s|import\s|from\s+\S+\s+import\s|@")
_OPENER = re.compile(
    r"\s*(if|elif|else|for|while|try|except|finally|with|def|class|async|match|case)\b.*:\s*(#.*)?$"
)


def _lost_indent(lines: list[str]) -> int:
    """The indentation a body's first line had before the recorder's ``strip()``: the least of
    the body's following lines (those before any top-level line); a block opener keeps column 0
    when everything after it is one level deeper (the model dropped every level).
    """
    following: list[int] = []
    for line in lines[1:]:
        if _is_code(line):
            if not _indent(line):
                break
            following.append(_indent(line))
    if not following:
        return 0
    least = min(following)
    if _OPENER.match(lines[0]) and least == following[0]:
        return 0
    return least


def _split_body(lines: list[str], depth: int) -> tuple[list[str], list[str]]:
    """A restated body and the top-level code the answer put after it (helpers, demo, junk).

    An indented body ends at its first code line indented less; a body at column 0 (the model
    dropped every level) ends at the first line that starts top-level code or prose.
    """
    for index in range(1, len(lines)):
        line = lines[index]
        if not _is_code(line):
            continue
        ends = (
            _indent(line) < depth
            if depth
            else looks_like_prose([line]) or bool(_TOP_LEVEL.match(line))
        )
        if ends:
            start = index
            while start > 1 and (not lines[start - 1].strip() or not _is_code(lines[start - 1])):
                start -= 1  # comments and blank lines just above belong to what follows
            return lines[:start], [] if looks_like_prose([line]) else lines[start:]
    return lines, []


def _is_code(line: str) -> bool:
    """A non-blank line that is not a comment (comments may sit at any indentation)."""
    stripped = line.lstrip()
    return bool(stripped) and not stripped.startswith("#")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _reindent(line: str, depth: int, target: str) -> str:
    if not line.strip():
        return ""
    if _indent(line) < depth:  # a comment left of the body
        return target + line.lstrip()
    return target + line[depth:]


_TOP_LEVEL = re.compile(
    r"(def |async def |class |import |from \S+ import |@|if __name__|print\(|assert )"
)


def _detab(line: str) -> str:
    """Leading tabs as four spaces each (models mix them with the prompt's spaces)."""
    stripped = line.lstrip("\t")
    return "    " * (len(line) - len(stripped)) + stripped if stripped != line else line
