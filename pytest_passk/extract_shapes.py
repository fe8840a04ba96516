"""The pieces :mod:`pytest_passk.extract` assembles programs from: markdown fences, the prompt's
imports and helpers, demo code, and where a prompt's function body is indented.

Pure functions over text and syntax trees; nothing here compiles untrusted text except through
the ``parse`` callable the caller hands in (which bounds and counts it).
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "Block",
    "body_indent",
    "fenced_blocks",
    "first_fence",
    "first_line",
    "has_fence",
    "looks_like_prose",
    "needed_from",
    "prompt_complete",
    "prompt_context",
    "prompt_names",
    "used_but_unbound",
    "with_prompt_context",
    "without_demo",
]

_FENCE_OPEN = re.compile(r"^([ \t]*)(`{3,}|~{3,})[ \t]*([^`\s]*)[^`\n]*$")
#: The same over a whole text, line by line (no part of it matches across a newline).
_FENCE_LINE = re.compile(_FENCE_OPEN.pattern, re.M)
_PYTHON_TAGS = {"", "python", "python3", "py", "py3", "python3.10", "python3.11", "python3.12"}
#: Calls to these at the top level of an answer run a demo or a test suite, never the solution.
_TEST_RUNNERS = {("unittest", "main"), ("doctest", "testmod"), ("pytest", "main")}
_DEFINITION = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
_BUILTINS = frozenset(dir(builtins))
Parse = Callable[[str], "ast.Module | SyntaxError"]


@dataclass(frozen=True, slots=True)
class Block:
    """One fenced block of Python: its code (the fence's own indentation removed) and whether
    its closing fence was missing (an answer cut off inside the block).
    """

    code: str
    closed: bool


def has_fence(text: str) -> bool:
    """Whether ``text`` has a line opening or closing a markdown fence."""
    if "```" not in text and "~~~" not in text:
        return False
    return _FENCE_LINE.search(text) is not None


def first_fence(text: str) -> int:
    """Where the first fence line of ``text`` starts (``len(text)`` when there is none)."""
    if "```" not in text and "~~~" not in text:
        return len(text)
    found = _FENCE_LINE.search(text)
    return len(text) if found is None else found.start()


def fenced_blocks(text: str) -> list[Block]:
    """The non-empty Python blocks of ``text``, in order; one pass over its lines (no regular
    expression spans lines, so no input makes this slower than linear).
    """
    blocks: list[Block] = []
    lines = text.split("\n")
    # Only a line holding three backticks or tildes can open or close a fence.
    marked = [i for i, line in enumerate(lines) if "```" in line or "~~~" in line]
    at = 0  # the next marked line to read
    while at < len(marked):
        opening_line = marked[at]
        at += 1
        opening = _FENCE_OPEN.match(lines[opening_line])
        if opening is None:
            continue
        indent, fence, label = len(opening.group(1)), opening.group(2), opening.group(3)
        end, closed = len(lines), False
        while at < len(marked):
            stripped = lines[marked[at]].strip()
            at += 1
            if stripped.startswith(fence[0] * len(fence)) and not stripped.strip(fence[0]):
                end, closed = marked[at - 1], True
                break
        if label.lower() not in _PYTHON_TAGS:
            continue
        body = lines[opening_line + 1 : end]
        code = "\n".join(_dedent_by(line, indent) for line in body) if indent else "\n".join(body)
        if code.strip() and not _is_console(code):
            blocks.append(Block(code, closed))
    return blocks


def _is_console(code: str) -> bool:
    """An interactive session (``>>> f(1)`` and its output) shows usage, not the solution."""
    return code.lstrip().startswith(">>>")  # the first non-blank line


def _dedent_by(line: str, indent: int) -> str:
    """Remove the fence's own indentation (a fence inside a list item) from a line."""
    if not indent:
        return line
    return line[min(indent, len(line) - len(line.lstrip(" \t"))) :]


def needed_from(main: str, others: Iterable[str], parse: Parse) -> list[str]:
    """Top-level imports and definitions of ``others`` that ``main`` uses and does not define.

    Followed transitively (a helper's own imports come along); a block of tests or examples
    contributes nothing ``main`` does not use, so its imports (``pytest``) stay out.
    """
    others = list(others)
    if not others:
        return []
    tree = parse(main)
    if not isinstance(tree, ast.Module):
        return [
            line
            for block in others
            for line in block.split("\n")
            if line.startswith(("import ", "from "))
        ]
    bound = bound_names(tree.body)
    wanted = used_names(tree) - bound
    offers: list[tuple[str, set[str], ast.stmt]] = []
    for block in others:
        other = parse(block)
        if not isinstance(other, ast.Module):
            continue
        for node in other.body:
            names = bound_names([node])
            if names and not names & bound:
                offers.append((segment(block, node), names, node))
    chosen: set[int] = set()
    progress = True
    while progress:
        progress = False
        for index, (_, names, node) in enumerate(offers):
            if index not in chosen and names & wanted:
                chosen.add(index)
                wanted |= used_names(node) - bound
                progress = True
    pieces = [offers[index][0] for index in sorted(chosen)]
    unresolved = wanted - bound - _BUILTINS - {n for i in chosen for n in offers[i][1]}
    if unresolved:
        # ``from x import *`` may supply them; it binds nothing we can see.
        pieces.extend(text for text, names, _ in offers if names == {"*"} and text not in pieces)
    return pieces


def segment(source: str, node: ast.stmt) -> str:
    """The source of a top-level statement, decorators included."""
    first = node.lineno
    if isinstance(node, _DEFINITION) and node.decorator_list:
        first = node.decorator_list[0].lineno
    return "\n".join(source.split("\n")[first - 1 : node.end_lineno])


def bound_names(body: Iterable[ast.stmt]) -> set[str]:
    """Names the statements bind at their own level."""
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
        elif isinstance(node, ast.If | ast.Try | ast.With):
            names |= bound_names(node.body)
            names |= bound_names(getattr(node, "orelse", []))
    return names


def used_names(node: ast.AST) -> set[str]:
    """Names read anywhere under ``node``."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def used_but_unbound(tree: ast.Module) -> set[str]:
    """Names a program reads that it never binds at the top level and are not builtins."""
    return used_names(tree) - bound_names(tree.body) - _BUILTINS


def without_demo(code: str, tree: ast.Module, entry_point: str | None = None) -> str:
    """``code`` without its top-level demo statements (``tree`` is its syntax tree), and, when
    it defines ``entry_point`` more than once, without the definitions after the first that has
    a body: base models repeat the function and end on a stub or a cut-off copy.
    """
    own = {node.name for node in tree.body if isinstance(node, _DEFINITION)}
    keep = _first_real_definition(tree, entry_point)
    kept_lines: set[int] = set()
    dropped_lines: set[int] = set()
    for node in tree.body:
        first = node.lineno
        if isinstance(node, _DEFINITION) and node.decorator_list:
            first = node.decorator_list[0].lineno
        span = range(first, (node.end_lineno or node.lineno) + 1)
        repeated = keep is not None and node is not keep and _defines(node, entry_point)
        (dropped_lines if repeated or _is_demo(node, own) else kept_lines).update(span)
    dropped_lines -= kept_lines  # never cut a line a kept statement shares (``x = 1; print(x)``)
    if not dropped_lines:
        return code
    lines = code.split("\n")
    kept = [line for number, line in enumerate(lines, start=1) if number not in dropped_lines]
    return "\n".join(kept).rstrip() + "\n"


def _defines(node: ast.stmt, name: str | None) -> bool:
    return isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name


def _first_real_definition(tree: ast.Module, entry_point: str | None) -> ast.stmt | None:
    """The first top-level definition of ``entry_point`` with a body, when there are several."""
    definitions = [node for node in tree.body if _defines(node, entry_point)]
    if len(definitions) < 2:
        return None
    return next(
        (
            node
            for node in definitions
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and not all(_is_placeholder(statement) for statement in node.body)
        ),
        None,
    )


def _is_placeholder(node: ast.stmt) -> bool:
    if isinstance(node, ast.Pass):
        return True
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)


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


@functools.lru_cache(maxsize=256)
def prompt_context(prompt: str) -> tuple[tuple[str, frozenset[str]], ...]:
    """The prompt's top-level imports and definitions: ``(source, names bound)`` in order.

    Cached: every sample of a task has the same prompt, and prompts are trusted task text.
    """
    try:
        tree = ast.parse(prompt)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ()
    pieces: list[tuple[str, frozenset[str]]] = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom, *_DEFINITION)):
            pieces.append((segment(prompt, node), frozenset(bound_names([node]))))
    return tuple(pieces)


def with_prompt_context(code: str, tree: ast.Module, prompt: str, entry_point: str | None) -> str:
    """Prepend the prompt's imports and helpers that ``code`` does not define itself."""
    defined = bound_names(tree.body)
    pieces = [
        text
        for text, names in prompt_context(prompt)
        if text not in code and not (names & defined) and entry_point not in names
    ]
    if not pieces:
        return code
    # ``from __future__`` imports must stay first in the program.
    head, rest = _split_future_imports(code, tree)
    return head + "\n".join(pieces) + "\n\n" + rest


def _split_future_imports(code: str, tree: ast.Module) -> tuple[str, str]:
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
    lines = code.split("\n")
    return "\n".join(lines[:end]) + "\n", "\n".join(lines[end:])


@functools.lru_cache(maxsize=256)
def body_indent(prompt: str) -> str | None:
    """The indentation of the body of the function the prompt ends in, or ``None`` when the
    prompt does not end inside a function (nothing to put a restated body back into).
    """
    lines = [line for line in prompt.split("\n") if line.strip()]
    if not lines:
        return None
    last = lines[-1]
    indent = last[: len(last) - len(last.lstrip(" \t"))].replace("\t", "    ")
    if last.rstrip().endswith(":") and last.lstrip().startswith(("def ", "async def ")):
        return indent + "    "
    if not indent:
        return None
    return indent


# Word characters and separators are disjoint classes, so matching never backtracks badly.
_PROSE = re.compile(r"[A-Za-z][\w'\u2019-]*(?:[ ,]+[\w'\u2019`().:;!?-]+){2,}[ ,]*")
_KEYWORD_START = re.compile(
    r"(return|if|for|while|def|class|import|from|print|assert|raise|try|with|elif|else|"
    r"except|finally|lambda|yield|pass|break|continue|global|nonlocal|del)\b"
)


def looks_like_prose(lines: Sequence[str]) -> bool:
    """Whether the first non-blank line of ``lines`` reads as an English sentence."""
    first = next((line.strip() for line in lines if line.strip()), "")[:300]
    return bool(_PROSE.fullmatch(first)) and not _KEYWORD_START.match(first)


@functools.lru_cache(maxsize=256)
def prompt_complete(prompt: str) -> bool:
    """Whether the prompt compiles on its own (then it ends outside any string or bracket, and a
    line after it that starts with a backtick is a syntax error).
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(prompt, "<prompt>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


@functools.lru_cache(maxsize=256)
def prompt_names(prompt: str) -> frozenset[str]:
    """Every name the prompt's top-level imports and definitions bind."""
    return frozenset(name for _, names in prompt_context(prompt) for name in names)


def first_line(text: str) -> str:
    """The first line of ``text`` that is not blank (``""`` when there is none), unsplit."""
    stripped = text.lstrip()
    if not stripped:
        return ""
    start = len(text) - len(stripped)
    end = text.find("\n", start)
    return text[text.rfind("\n", 0, start) + 1 : len(text) if end < 0 else end]
