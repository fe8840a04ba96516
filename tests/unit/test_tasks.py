"""The ``@passk.task`` decorator: prompts, references and validation errors."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable
from typing import Any

import pytest

import pytest_passk as passk
from pytest_passk.errors import TaskFormatError
from pytest_passk.tasks import TASK_ATTRIBUTE, TaskSpec, task_spec_of

ADD_PROMPT = 'def add(a: int, b: int) -> int:\n    """Return a + b."""\n'
HERE = __file__


def spec_error(decorated: object) -> TaskFormatError:
    """The error ``@passk.task`` recorded (it never raises: collection reports it)."""
    spec = task_spec_of(decorated)
    assert spec is not None and spec.error is not None
    return spec.error


def spec(fn: object) -> TaskSpec:
    found = task_spec_of(fn)
    assert found is not None
    return found


def first_line(fn: Callable[..., Any]) -> int:
    return fn.__code__.co_firstlineno


# -- prompts -------------------------------------------------------------------------------------


def test_prompt_argument_is_kept_verbatim() -> None:
    @passk.task(prompt=ADD_PROMPT, entry_point="add", timeout=2.5, min_pass_at_k=0.5)
    def check(candidate: Any) -> None:
        """This docstring is not the prompt."""

    recorded = spec(check)
    assert recorded == TaskSpec(ADD_PROMPT, "add", None, 2.5, 0.5)
    assert getattr(check, TASK_ATTRIBUTE) is recorded


def test_docstring_prompt_keeps_the_code_indentation() -> None:
    @passk.task(entry_point="fizzbuzz")
    def check(candidate: Any) -> None:
        '''
        def fizzbuzz(n: int) -> str:
            """Return "Fizz" for multiples of 3, "Buzz" for multiples of 5, "FizzBuzz" for
            multiples of both, and the number itself as a string otherwise.

            >>> fizzbuzz(15)
            'FizzBuzz'
            """
        '''

    assert spec(check).prompt == (
        "def fizzbuzz(n: int) -> str:\n"
        '    """Return "Fizz" for multiples of 3, "Buzz" for multiples of 5, "FizzBuzz" for\n'
        "    multiples of both, and the number itself as a string otherwise.\n"
        "\n"
        "    >>> fizzbuzz(15)\n"
        "    'FizzBuzz'\n"
        '    """\n'
    )
    compile(spec(check).prompt + "    pass\n", "<prompt>", "exec")


def test_docstring_starting_on_the_first_line() -> None:
    # ruff format (like black) re-indents a docstring that starts on its first line: keep it as is.
    # fmt: off
    @passk.task(entry_point="inc")
    def check(candidate: Any) -> None:
        """def inc(x: int) -> int:
            # add one
            return x + 1
        """
    # fmt: on

    assert spec(check).prompt == "def inc(x: int) -> int:\n    # add one\n    return x + 1\n"


def test_bare_decorator_uses_the_docstring() -> None:
    @passk.task
    def check(candidate: Any) -> None:
        """Write a module defining CONSTANT = 42."""

    assert spec(check).prompt == "Write a module defining CONSTANT = 42."
    assert spec(check).entry_point is None


class Holder:
    @passk.task(
        entry_point="f",
        reference="""def f():
    return 1
""",
    )
    def method(self, candidate: Any) -> None:
        """
        def f() -> int:
            \"\"\"Return one.\"\"\"
        """


def test_docstring_of_a_method_with_a_column_zero_string_in_its_decorator() -> None:
    recorded = spec(Holder.method)
    assert recorded.prompt == 'def f() -> int:\n    """Return one."""\n'
    assert recorded.reference == "def f():\n    return 1\n"


def test_tab_indented_docstring_lines() -> None:
    @passk.task
    def check(candidate: Any) -> None:
        """
        def f():
        \treturn 1
        """

    assert spec(check).prompt == "def f():\n\treturn 1\n"


def test_function_without_source_falls_back_to_the_cleaned_docstring() -> None:
    namespace: dict[str, Any] = {}
    exec('def check(candidate):\n    """\n    def f():\n        pass\n    """\n', namespace)
    decorated = passk.task(namespace["check"])
    assert spec(decorated).prompt == "def f():\n    pass"


def test_wrapped_function_reports_the_inner_origin() -> None:
    def inner(candidate: Any) -> None:
        pass

    @functools.wraps(inner)
    def wrapper(*args: Any) -> None:
        pass

    error = spec_error(passk.task(wrapper))
    assert error.where == f"{HERE}:{first_line(inner)}"


# -- references ----------------------------------------------------------------------------------


def add(a: int, b: int) -> int:
    return a + b


def plus(a: int, b: int) -> int:
    return a + b


def test_reference_function_becomes_its_source() -> None:
    @passk.task(prompt=ADD_PROMPT, entry_point="add", reference=add)
    def check(candidate: Any) -> None:
        pass

    assert spec(check).reference == inspect.getsource(add)


def test_reference_under_another_name_answers_to_the_entry_point() -> None:
    @passk.task(prompt=ADD_PROMPT, entry_point="add", reference=plus)
    def check(candidate: Any) -> None:
        pass

    source = spec(check).reference
    assert source is not None and source.endswith("\nadd = plus\n")
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    assert namespace["add"](2, 3) == 5


def test_nested_reference_is_dedented() -> None:
    def double(x: int) -> int:
        return 2 * x

    @passk.task(prompt="def double(x): ...", entry_point="double", reference=double)
    def check(candidate: Any) -> None:
        pass

    source = spec(check).reference
    assert source is not None and source.startswith("def double(x: int) -> int:\n")
    namespace: dict[str, Any] = {}
    exec(source, namespace)
    assert namespace["double"](4) == 8


def test_reference_source_string_is_kept() -> None:
    source = "def add(a, b):\n    return a + b\n"

    @passk.task(prompt=ADD_PROMPT, entry_point="add", reference=source)
    def check(candidate: Any) -> None:
        pass

    assert spec(check).reference == source


# -- validation ----------------------------------------------------------------------------------


def no_prompt(candidate: Any) -> None:
    pass


def test_missing_prompt_names_the_function_and_its_line() -> None:
    error = spec_error(passk.task(entry_point="f")(no_prompt))
    assert error.where == f"{HERE}:{first_line(no_prompt)}"
    assert error.what == "task 'no_prompt' has no prompt"
    assert "pass prompt=... to @passk.task or give the test function a docstring" in error.fix
    assert str(error) == f"{error.where}: {error.what}; {error.fix}"


@pytest.mark.parametrize("prompt", ["", "   \n\t"])
def test_blank_prompt_is_an_error(prompt: str) -> None:
    error = spec_error(passk.task(prompt=prompt)(no_prompt))
    assert re.search("has no prompt", str(error))


@pytest.mark.parametrize("entry_point", ["", "my-func", "1abc", "a.b", "def", "class", "None"])
def test_entry_point_must_be_an_identifier(entry_point: str) -> None:
    error = spec_error(passk.task(prompt=ADD_PROMPT, entry_point=entry_point)(no_prompt))
    assert error.what == f"entry_point {entry_point!r} is not a Python identifier"
    assert error.where.endswith(f":{first_line(no_prompt)}")


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan")])
def test_timeout_must_be_positive(timeout: float) -> None:
    error = spec_error(passk.task(prompt=ADD_PROMPT, timeout=timeout)(no_prompt))
    assert re.search(r"timeout=.* must be > 0; give seconds", str(error))


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_min_pass_at_k_must_be_a_fraction(value: float) -> None:
    error = spec_error(passk.task(prompt=ADD_PROMPT, min_pass_at_k=value)(no_prompt))
    assert re.search(r"min_pass_at_k=.* is outside 0\.\.1", str(error))


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_min_pass_at_k_bounds_are_allowed(value: float) -> None:
    assert (
        spec(passk.task(prompt=ADD_PROMPT, min_pass_at_k=value)(no_prompt)).min_pass_at_k == value
    )


def test_reference_of_the_wrong_type() -> None:
    decorator = passk.task(prompt=ADD_PROMPT, reference=42)  # type: ignore[call-overload]
    error = spec_error(decorator(no_prompt))
    assert re.search("reference=42 is neither a function nor source", str(error))


def test_reference_without_readable_source() -> None:
    error = spec_error(passk.task(prompt=ADD_PROMPT, entry_point="add", reference=len)(no_prompt))
    assert "cannot read the source of reference" in error.what
    assert error.fix == "pass the source as a str"


def test_task_spec_of_ignores_foreign_attributes() -> None:
    def fn() -> None:
        pass

    setattr(fn, TASK_ATTRIBUTE, "not a spec")
    assert task_spec_of(fn) is None
    assert task_spec_of(object()) is None
