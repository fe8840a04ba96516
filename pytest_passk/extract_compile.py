"""Compiling untrusted answers in the pytest process, bounded, for :mod:`pytest_passk.extract`.

Compiling runs nothing, but CPython's parser and compiler recurse: deeply nested input raises
``RecursionError`` or ``MemoryError`` (and takes long to do so). :class:`Compiler` turns those
into :class:`Hostile` and counts compilations, so one sample can never cost more than
:data:`MAX_ATTEMPTS` of them. The bytecode helpers read compiled programs without a syntax tree.
"""

from __future__ import annotations

import ast
import re
import types

from pytest_passk.extract_shapes import prompt_complete

__all__ = [
    "MAX_ATTEMPTS",
    "TOO_NESTED",
    "Compiler",
    "Exhausted",
    "Hostile",
    "binds",
    "certainly_fails",
    "cut_line",
    "is_stub",
    "read_names",
]

#: Compilations per sample, all repairs together.
MAX_ATTEMPTS = 24
TOO_NESTED = "the sample is nested too deeply to compile"


class Hostile(Exception):
    """The text cannot be compiled safely in this process: stop repairing."""


class Exhausted(Exception):
    """The sample used up its compilations: stop repairing, keep what was found."""


class Compiler:
    """Counts compilations and turns CPython's resource errors into :class:`Hostile`.

    It does not silence warnings itself: the caller compiles inside one
    ``warnings.catch_warnings()`` per sample (entering it costs as much as a tenth of a
    compilation, and a sample may need several).
    """

    def __init__(self) -> None:
        self.attempts = 0
        #: The last compilation, keyed by :func:`_same_program`'s form of its source (a repair
        #: often starts from the text just tried as is); ``None``: deferred, not yet compiled.
        self._last: tuple[str, types.CodeType | SyntaxError | None] | None = None

    def parse(self, source: str) -> ast.Module | SyntaxError:
        """The tree of ``source``, or its syntax error."""
        self._count()
        try:
            return ast.parse(source)
        except SyntaxError as exc:
            return exc
        except ValueError as exc:  # null bytes
            return SyntaxError(str(exc))
        except (RecursionError, MemoryError, OverflowError):
            raise Hostile(TOO_NESTED) from None

    def code(self, source: str) -> types.CodeType | SyntaxError:
        """``source`` compiled, or its syntax error (the compiler's checks included: ``return``
        outside a function, ``nonlocal`` at module level).
        """
        key = _same_program(source)
        if self._last is not None and self._last[0] == key:
            result = self._last[1]
            if result is None:  # deferred: its compilation was counted then
                result = self._compile(source)
                self._last = (key, result)
            return result
        self._count()
        result = self._compile(source)
        self._last = (key, result)
        return result

    def defer(self, source: str) -> None:
        """Count a compilation of ``source`` known to fail (:func:`certainly_fails`) without
        making it; :meth:`code` or :meth:`error` makes it, uncounted, when the error is needed.
        """
        self._count()
        self._last = (_same_program(source), None)

    def error(self, source: str) -> types.CodeType | SyntaxError:
        """``source`` compiled without counting: the error of a deferred compilation."""
        return self._compile(source)

    def _count(self) -> None:
        self.attempts += 1
        if self.attempts > MAX_ATTEMPTS:
            raise Exhausted

    @staticmethod
    def _compile(source: str) -> types.CodeType | SyntaxError:
        try:
            return compile(source, "<candidate>", "exec", dont_inherit=True, optimize=0)
        except SyntaxError as exc:
            return exc
        except ValueError as exc:  # null bytes
            return SyntaxError(str(exc))
        except (RecursionError, MemoryError, OverflowError):
            raise Hostile(TOO_NESTED) from None


def _same_program(source: str) -> str:
    """``source`` as CPython's tokenizer reads it when it has no carriage return: with a final
    newline (it adds a missing one), so a text and the same text ending in a newline share one
    compilation.
    """
    if source.endswith("\n") or "\r" in source:
        return source
    return source + "\n"


def stub_codes() -> frozenset[bytes]:
    """Bytecode of functions that do nothing: a docstring, ``pass`` or ``...`` (the prompt's own
    stub), as this Python compiles them.
    """
    codes = set()
    for body in ('"""doc"""', "pass", "...", '"""doc"""\n    pass'):
        module = compile(f"def f():\n    {body}\n", "<stub>", "exec", dont_inherit=True)
        function = next(c for c in module.co_consts if isinstance(c, types.CodeType))
        codes.add(function.co_code)
    return frozenset(codes)


STUB_CODES = stub_codes()


def is_stub(function: types.CodeType) -> bool:
    """Whether a function does nothing but return ``None`` (its docstring aside)."""
    first, *rest = function.co_consts or (None,)
    return (
        function.co_code in STUB_CODES
        and (first is None or isinstance(first, str))
        and all(const is None for const in rest)
    )


def read_names(code: types.CodeType) -> set[str]:
    """Global and attribute names the code (and every function in it) refers to."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= read_names(const)
    return names


def binds(source: str, name: str) -> bool:
    """Whether a line of ``source`` plainly binds ``name`` at the top level (a cheap test; the
    syntax tree decides when it says no).
    """
    word = re.escape(name)
    pattern = (
        rf"^(?:(?:from\s+\S+\s+)?import\b[^\n]*\b{word}\b|(?:async\s+)?def\s+{word}\b"
        rf"|class\s+{word}\b|{word}\s*[:=])"
    )
    return re.search(pattern, source, re.M) is not None


def certainly_fails(prompt: str, text: str) -> bool:
    """Whether ``prompt + text`` cannot compile when the prompt is complete (it compiles, and
    ends with a newline), read from the text alone: its first code line is a complete statement at
    column 0 (a docstring, or a line starting with a name and holding no string, bracket,
    continuation or closing colon) and the next code line is indented, which CPython rejects
    as an unexpected indent before reading further. Instruct models restate bodies this way
    (the recorder stripped the first line); proving the failure saves compiling the whole
    prompt to learn it.

    ``False`` means only "not proved": the text is then compiled.
    """
    if "\r" in text or "\f" in text or "\0" in text or not prompt.endswith("\n"):
        return False
    if not prompt_complete(prompt):
        return False
    start = _code_line(text, 0)
    if start is None:
        return False
    if text.startswith(('"""', "'''"), start):
        close = _string_close(text, start + 3, text[start : start + 3])
        if close is None:
            return False
        end = _line_end(text, close)
        if text[close:end].lstrip(" \t")[:1] not in ("", "#"):
            return False
    else:
        end = _line_end(text, start)
        code = text[start:end].split("#", 1)[0]
        if not _NAME_START.match(text, start) or code.rstrip(" \t").endswith(":"):
            return False
        if any(c in code for c in _OPENS):
            return False
    following = _code_line(text, end + 1)
    return following is not None and text[following] in " \t"


_NAME_START = re.compile(r"[A-Za-z_]")
#: Characters that may carry a statement past its line: strings, brackets, a continuation.
_OPENS = "'\"\\([{"


def _line_end(text: str, position: int) -> int:
    end = text.find("\n", position)
    return len(text) if end < 0 else end


def _code_line(text: str, position: int) -> int | None:
    """Where the first line from ``position`` that CPython's tokenizer does not skip starts
    (blank lines and lines holding only a comment, after spaces and tabs, are skipped).
    """
    while position <= len(text):
        end = _line_end(text, position)
        if text[position:end].lstrip(" \t")[:1] not in ("", "#"):
            return position
        position = end + 1
    return None


def _string_close(text: str, position: int, quote: str) -> int | None:
    """Where a triple-quoted string whose body starts at ``position`` ends (just after its
    closing quotes), or ``None`` when it never closes. A backslash escapes the next character.
    """
    while True:
        close = text.find(quote, position)
        if close < 0:
            return None
        escape = text.find("\\", position, close)
        if escape < 0:
            return close + 3
        position = escape + 2


def cut_line(error: SyntaxError, lines: list[str]) -> int:
    """Where to cut a program with a syntax error: from the error's line (an unclosed bracket
    or string reports where it opened), or its last non-blank line when the error is at the end.
    """
    last = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].strip()), 0)
    line = (error.lineno or 0) - 1
    if line < 0 or line >= last:
        return last
    return line
