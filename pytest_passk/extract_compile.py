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
import warnings

__all__ = [
    "MAX_ATTEMPTS",
    "TOO_NESTED",
    "Compiler",
    "Exhausted",
    "Hostile",
    "binds",
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
    """Counts compilations and turns CPython's resource errors into :class:`Hostile`."""

    def __init__(self) -> None:
        self.attempts = 0
        #: The last compilation: a repair often starts from the text just tried as is.
        self._last: tuple[str, types.CodeType | SyntaxError] | None = None

    def parse(self, source: str) -> ast.Module | SyntaxError:
        """The tree of ``source``, or its syntax error."""
        self.attempts += 1
        if self.attempts > MAX_ATTEMPTS:
            raise Exhausted
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a candidate's SyntaxWarning is not the user's
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
        if self._last is not None and self._last[0] == source:
            return self._last[1]
        result = self._compile(source)
        self._last = (source, result)
        return result

    def _compile(self, source: str) -> types.CodeType | SyntaxError:
        self.attempts += 1
        if self.attempts > MAX_ATTEMPTS:
            raise Exhausted
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return compile(source, "<candidate>", "exec", dont_inherit=True, optimize=0)
        except SyntaxError as exc:
            return exc
        except ValueError as exc:  # null bytes
            return SyntaxError(str(exc))
        except (RecursionError, MemoryError, OverflowError):
            raise Hostile(TOO_NESTED) from None


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
