"""Putting a restated body back under the prompt's signature, for :mod:`pytest_passk.extract`.

Instruct models often answer with the function's docstring and body but no ``def`` line, and
recorders often ``strip()`` the answer, so its first line loses its indentation; some answers are
indented with tabs, one level too deep, or not at all. :func:`body_program` rebuilds the program
the answer meant: the prompt, the body reindented to the prompt's level, then any top-level code
the answer put after the body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_passk.extract_shapes import body_indent, looks_like_prose

__all__ = ["BodyShape", "body_program", "indent_of"]


@dataclass(frozen=True, slots=True)
class BodyShape:
    """What :func:`body_program` built: the program, and whether the answer restated the body
    without its signature (a docstring first, or a first line that lost its indentation) rather
    than only indenting it wrongly.
    """

    program: str
    restated: bool


def body_program(prompt: str, text: str) -> BodyShape | None:
    """The prompt with ``text`` as its function's body, or ``None`` when ``text`` is a whole
    program (an echo, a function under another name) or the prompt ends in no function.
    """
    target = body_indent(prompt)
    if target is None:
        return None
    lines = text.split("\n")
    if "\t" in text:
        lines = [_detab(line) for line in lines]
    # Each line stripped once (blank, comment or code): every step below reads them, and
    # restated bodies run to dozens of lines.
    stripped = [line.lstrip() for line in lines]
    first, last = 0, len(lines)
    while first < last and not stripped[first]:
        first += 1
    while last > first and not stripped[last - 1]:
        last -= 1
    if first == last or _PROGRAM_START.match(lines[first]):
        return None
    lines, stripped = lines[first:last], stripped[first:last]
    code = [bool(s) and s[0] != "#" for s in stripped]
    head = lines[0]
    restated = stripped[0].startswith(('"""', "'''", 'r"""', "r'''")) or not head.startswith(" ")
    if not head.startswith(" "):
        lines[0] = " " * _lost_indent(lines, code) + head
    depth = _indent(lines[0])
    end, tail = _split_body(lines, code, depth)
    # A line indented at least ``depth`` starts with ``depth`` spaces (``_indent`` counts spaces).
    level = " " * depth
    body = "\n".join(
        (target + (lines[i][depth:] if lines[i].startswith(level) else stripped[i]))
        if stripped[i]
        else ""
        for i in range(end)
    )
    program = prompt.rstrip("\n") + "\n" + body + "\n"
    if tail:
        program += "\n\n" + "\n".join(tail) + "\n"
    return BodyShape(program, restated)


_PROGRAM_START = re.compile(r"(async\s+)?def\s|class\s|import\s|from\s+\S+\s+import\s|@")
_OPENER = re.compile(
    r"\s*(if|elif|else|for|while|try|except|finally|with|def|class|async|match|case)\b.*:\s*(#.*)?$"
)


def _lost_indent(lines: list[str], code: list[bool]) -> int:
    """The indentation a body's first line had before the recorder's ``strip()``: the least of
    the body's following lines (those before any top-level line); a block opener keeps column 0
    when everything after it is one level deeper (the model dropped every level).
    """
    following: list[int] = []
    for index in range(1, len(lines)):
        if code[index]:
            indent = _indent(lines[index])
            if not indent:
                break
            following.append(indent)
    if not following:
        return 0
    least = min(following)
    if _OPENER.match(lines[0]) and least == following[0]:
        return 0
    return least


def _split_body(lines: list[str], code: list[bool], depth: int) -> tuple[int, list[str]]:
    """Where a restated body ends (its line count), and the top-level code the answer put after
    it (helpers, demo, junk).

    An indented body ends at its first code line indented less; a body at column 0 (the model
    dropped every level) ends at the first line that starts top-level code or prose.
    """
    level = " " * depth
    for index in range(1, len(lines)):
        if not code[index]:
            continue
        line = lines[index]
        ends = (
            not line.startswith(level)
            if depth
            else looks_like_prose([line]) or bool(_TOP_LEVEL.match(line))
        )
        if ends:
            start = index
            while start > 1 and not code[start - 1]:
                start -= 1  # comments and blank lines just above belong to what follows
            return start, [] if looks_like_prose([line]) else lines[start:]
    return len(lines), []


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


_TOP_LEVEL = re.compile(
    r"(def |async def |class |import |from \S+ import |@|if __name__|print\(|assert )"
)


def _detab(line: str) -> str:
    """Leading tabs as four spaces each (models mix them with the prompt's spaces)."""
    stripped = line.lstrip("\t")
    return "    " * (len(line) - len(stripped)) + stripped if stripped != line else line


def indent_of(line: str) -> int:
    """A line's indentation in columns, leading tabs counted as four spaces."""
    return _indent(_detab(line))
