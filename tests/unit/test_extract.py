"""Answer extraction: every repair, clean continuations left alone, hostile input bounded."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pytest_passk.extract import (
    Extraction,
    ExtractionKind,
    build_program,
    extract_for_task,
)
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
