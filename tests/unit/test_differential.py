"""Differential tests in the core: the decorator's arguments, drawing inputs, the judge's
comparison rules, the augmentation of HumanEval tasks, EvalPlus lines and the report's figures.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import strategies as st

import pytest_passk as passk
from pytest_passk.augment import generate, mutants, seeds_of
from pytest_passk.datasets import iter_dataset
from pytest_passk.differential import ORIGINAL, STRONGER, Approx, DifferentialSpec
from pytest_passk.errors import TaskFormatError
from pytest_passk.inputs import AUTO_UNDERIVABLE, NOT_PLAIN_INPUT, auto_strategy, draw, seed_of
from pytest_passk.results import CandidateResult, Outcome, TaskResult
from pytest_passk.sandbox import plain
from pytest_passk.sandbox.inside.differ import NOT_PLAIN, _observation, agree, canonical, run, same
from pytest_passk.stronger import model_json, stronger_lines, summarise, task_json
from pytest_passk.tasks import task_spec_of

EXACT = {"kind": "exact"}
APPROX = {"kind": "approx", "rel": 1e-6, "abs": 0.0}


# -- the decorator -------------------------------------------------------------------------------


def _spec(**kwargs: object):  # type: ignore[no-untyped-def]
    def test_f(candidate):  # type: ignore[no-untyped-def]
        """def f(x: int) -> int:"""

    passk.task(**kwargs)(test_f)  # type: ignore[call-overload]
    return task_spec_of(test_f)


def test_a_differential_task_records_its_inputs_compare_and_examples() -> None:
    strategy = st.tuples(st.integers())
    spec = _spec(
        entry_point="f", reference="def f(x):\n    return x\n", inputs=strategy,
        compare=passk.approx(rel=1e-3), examples=7,
    )  # fmt: skip
    assert spec is not None and spec.error is None and spec.differential is not None
    assert spec.differential.inputs is strategy
    assert spec.differential.compare == Approx(1e-3, 1e-12)
    assert spec.differential.examples == 7


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"entry_point": "f", "inputs": "auto"}, "inputs= needs reference= and entry_point="),
        ({"reference": "def f(x): return x", "inputs": "auto"}, "needs reference= and entry_point"),
        (
            {"entry_point": "f", "reference": "def f(x): return x", "inputs": "magic"},
            "is not a strategy",
        ),
        (
            {"entry_point": "f", "reference": "def f(x): return x", "inputs": [(1,)]},
            "not a hypothesis strategy",
        ),
        (
            {
                "entry_point": "f",
                "reference": "def f(x): return x",
                "inputs": "auto",
                "compare": "fuzzy",
            },
            "is not supported",
        ),
        (
            {
                "entry_point": "f",
                "reference": "def f(x): return x",
                "inputs": "auto",
                "examples": 0,
            },
            "must be an int >= 1",
        ),
        (
            {"entry_point": "f", "reference": "def f(x): return x", "compare": "exact"},
            "need inputs=",
        ),
    ],
)
def test_bad_differential_arguments_are_errors_naming_the_task(
    kwargs: dict[str, object], problem: str
) -> None:
    spec = _spec(**kwargs)
    assert spec is not None and spec.error is not None
    assert problem in str(spec.error)
    assert "test_differential.py:" in str(spec.error)  # file:line


def test_approx_refuses_negative_or_infinite_tolerances() -> None:
    with pytest.raises(ValueError, match="tolerances"):
        passk.approx(rel=-1)
    with pytest.raises(ValueError, match="tolerances"):
        passk.approx(abs=math.inf)


# -- drawing inputs -------------------------------------------------------------------------------


def test_draws_are_the_same_for_the_same_task_and_differ_between_tasks() -> None:
    strategy = st.tuples(st.lists(st.integers()), st.text())
    first = draw(strategy, 30, seed_of("t::a"), "here")
    assert first == draw(strategy, 30, seed_of("t::a"), "here")
    assert first != draw(strategy, 30, seed_of("t::b"), "here")
    assert len({json.dumps(plain.encode(x)) for x in first}) == len(first) == 30


def test_draws_are_the_same_in_another_process() -> None:
    """What pytest-xdist workers see: a fresh interpreter draws the same inputs."""
    code = (
        "import json\nfrom hypothesis import strategies as st\n"
        "from pytest_passk.inputs import draw, seed_of\n"
        "print(json.dumps(draw(st.tuples(st.integers(), st.floats(allow_nan=False)), 20,"
        " seed_of('t::a'), '')))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    here = draw(st.tuples(st.integers(), st.floats(allow_nan=False)), 20, seed_of("t::a"), "")
    assert json.loads(runs[0].stdout) == json.loads(runs[1].stdout) == json.loads(json.dumps(here))


def test_a_strategy_that_does_not_draw_tuples_of_plain_data_is_an_error() -> None:
    with pytest.raises(TaskFormatError) as info:
        draw(st.integers(), 5, 0, "tests/test_x.py:3")
    assert "tests/test_x.py:3" in str(info.value)
    assert NOT_PLAIN_INPUT.split("{")[0] in str(info.value)
    with pytest.raises(TaskFormatError):
        draw(st.tuples(st.just(object())), 5, 0, "here")


def test_auto_derives_a_strategy_from_type_hints() -> None:
    def f(xs: list[int], name: str, flag: bool = False) -> int:
        return 0

    drawn = draw(auto_strategy(f, "here"), 20, 1, "here")
    assert all(
        isinstance(a, list) and isinstance(b, str) and isinstance(c, bool) for a, b, c in drawn
    )


def test_auto_names_the_parameter_it_cannot_derive() -> None:
    def g(x, y: int):  # type: ignore[no-untyped-def]
        return 0

    with pytest.raises(TaskFormatError) as info:
        auto_strategy(g, "tests/test_y.py:9")
    assert AUTO_UNDERIVABLE.format(name="x", function="g", why="it has no type hint") in str(
        info.value
    )
    assert "tests/test_y.py:9" in str(info.value)


# -- the judge's comparison ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("got", "expected", "compare", "agrees"),
    [
        ([1, 2], [1, 2], EXACT, True),
        ((1, 2), [1, 2], EXACT, False),  # a tuple is not a list
        (True, 1, EXACT, False),  # a bool is not an int
        (2, 2.0, EXACT, True),
        (math.nan, math.nan, EXACT, True),
        ([math.nan], [1.0], EXACT, False),
        (0.1 + 0.2, 0.3, EXACT, False),
        (0.1 + 0.2, 0.3, {"kind": "approx", "rel": 1e-9, "abs": 0.0}, True),
        (1.0, 1.1, {"kind": "approx", "rel": 1e-3, "abs": 0.0}, False),
        (math.inf, math.inf, {"kind": "approx", "rel": 1.0, "abs": 1.0}, True),
        # An infinite expectation makes rel * |e| infinite: infinities agree only with themselves.
        (1.0, math.inf, {"kind": "approx", "rel": 1e-6, "abs": 0.0}, False),
        (-math.inf, math.inf, {"kind": "approx", "rel": 1e-6, "abs": 0.0}, False),
        ([2.0], [-math.inf], {"kind": "evalplus", "atol": 0.0}, False),
        (1e300, math.inf, {"kind": "evalplus", "atol": 1.0}, False),
        (math.inf, 1e300, {"kind": "approx", "rel": 1.0, "abs": 0.0}, False),
        # An int beyond a float's range equals no float (float() of it raised in the judge).
        pytest.param(10**400, 1.5, EXACT, False, id="huge-int-vs-float"),
        pytest.param([10**400], [math.inf], APPROX, False, id="huge-int-vs-inf"),
        pytest.param(10**400, 1.5, {"kind": "evalplus", "atol": 0.0}, False, id="huge-evalplus"),
        ([1.0000001], [1.0], {"kind": "evalplus", "atol": 0.0}, True),  # EvalPlus: atol 1e-6
        ([1.001], [1.0], {"kind": "evalplus", "atol": 0.0}, False),
        ([1.001], [1.0], {"kind": "evalplus", "atol": 0.01}, True),
        ({"a": [1.0]}, {"a": [1.0]}, EXACT, True),
        ({"a": 1}, {"b": 1}, EXACT, False),
        ({1, 2}, {2, 1}, EXACT, True),
        # True is not 1 inside dict keys and set elements either (Python's == says it is).
        pytest.param({True: "x"}, {1: "x"}, EXACT, False, id="bool-key-vs-int-key"),
        pytest.param({1: "x"}, {True: "x"}, EXACT, False, id="int-key-vs-bool-key"),
        pytest.param({True}, {1}, EXACT, False, id="bool-in-set"),
        pytest.param(frozenset({(1, True)}), frozenset({(1, 1)}), EXACT, False, id="deep-bool"),
        pytest.param({(True,): [1.0]}, {(1,): [1.0]}, APPROX, False, id="tuple-key-approx"),
        pytest.param({False: 0, 2: 1}, {0: 0, 2: 1}, EXACT, False, id="false-key"),
        # As everywhere else, 2 == 2.0 and NaN equals NaN.
        pytest.param({1: "x"}, {1.0: "x"}, EXACT, True, id="int-key-vs-float-key"),
        pytest.param({1.0, 2}, {1, 2}, EXACT, True, id="float-in-set"),
        pytest.param({float("nan")}, {float("nan")}, EXACT, True, id="nan-in-set"),
        pytest.param({(1, True): "x"}, {(1, True): "x"}, EXACT, True, id="same-tuple-key"),
    ],
)
def test_same(got: object, expected: object, compare: dict[str, object], agrees: bool) -> None:
    assert same(got, expected, compare) is agrees


EVALPLUS = {"kind": "evalplus", "atol": 0.0}


@pytest.mark.parametrize(
    ("got", "expected", "agrees"),
    [
        # EvalPlus widens atol 0 to 1e-6 only where the expected output "is_floats": a float, or
        # a list or tuple of floats. Everywhere else it compares with ==.
        (1.0000001, 1.0, True),
        ((1.0000001, 2.0), (1.0, 2.0), True),
        (3.0000001, 3, False),  # the reference's int: exact
        ([1, 1.0000001], [1, 1.0], False),  # not all floats: exact
        ([[1.0000001]], [[1.0]], False),  # nested: exact
        ({"a": 1.0000001}, {"a": 1.0}, False),
        ([2.0, 1.0], [2.0, 1.0], True),
        ([[1.0]], [[1.0]], True),
    ],
)
def test_evalplus_tolerance_only_where_evalplus_allows_it(
    got: object, expected: object, agrees: bool
) -> None:
    assert same(got, expected, EVALPLUS) is agrees


def test_an_evalplus_atol_applies_to_every_float() -> None:
    assert same([[1.001]], [[1.0]], {"kind": "evalplus", "atol": 0.01}) is True
    assert same(3.001, 3, {"kind": "evalplus", "atol": 0.01}) is True


def test_agree_on_exceptions_mutation_and_non_plain_values() -> None:
    ok = {"ok": plain.encode([1])}
    assert agree({"raise": "ValueError"}, {"raise": "ValueError"}, EXACT) is None
    assert "raises ValueError, got raises IndexError" in str(
        agree({"raise": "IndexError"}, {"raise": "ValueError"}, EXACT)
    )
    assert "got raises own:ValueError" in str(
        agree({"raise": "own:ValueError"}, {"raise": "ValueError"}, EXACT)
    )
    assert agree({**ok, "w": [[3]]}, ok, EXACT) == "mutated"
    assert "non-plain" in str(agree({"nonplain": "Eq"}, ok, EXACT))


class _Answers:
    """A candidate's channel that answers every batched input with ``value``."""

    def __init__(self, value: object) -> None:
        self.value = value

    def batch(self, name: str, arguments: list[object]) -> list[dict[str, object]]:
        return [{"ok": plain.encode(self.value)} for _ in arguments]


def test_no_cases_is_no_behaviour_fingerprint() -> None:
    """Without a single input (all dropped by the reference, or none derivable) there is no
    behaviour to tell candidates apart: a fingerprint of nothing would put every candidate of
    the task in one cluster, and selected@1 would pick the first sample, not the commonest one.
    """
    spec = {"cases": [], "compare": EXACT}
    assert run(_Answers(1), "f", spec).behaviour is None
    case = [plain.encode([2]), {"ok": plain.encode(1)}, STRONGER]
    one, other = (run(_Answers(v), "f", {"cases": [case], "compare": EXACT}) for v in (1, 2))
    assert one.behaviour is not None and other.behaviour is not None
    assert one.behaviour != other.behaviour
    assert one.stronger is None and other.stronger is not None


@pytest.mark.parametrize(
    "claim",
    [
        {"ok": {"#": "dict", "v": [[[1], 2]]}},  # a list for a key
        {"ok": {"#": "set", "v": [[1]]}},
        {"ok": {"#": "int", "v": "zz"}},
        {"ok": {"#": "float", "v": "abc"}},
    ],
)
def test_an_undecodable_answer_is_malformed_and_never_agrees(claim: dict[str, object]) -> None:
    seen = _observation(claim)
    assert seen == {"nonplain": "malformed"}
    assert agree(seen, {"ok": plain.encode(1)}, EXACT) == NOT_PLAIN.format(type="malformed")


def _mutated(seen_after: object, expected_after: object, before: object = None) -> str | None:
    """``agree`` on a case whose arguments the reference changed (``expected_after``) and the
    candidate left as ``seen_after`` (``None``: unchanged, so no ``"w"``).
    """
    arguments = plain.encode([before])
    ok = {"ok": plain.encode(None)}
    seen = ok if seen_after is None else ok | {"w": plain.encode([seen_after])}
    expected = ok if expected_after is None else ok | {"w": plain.encode([expected_after])}
    return agree(seen, expected, EXACT, arguments)


def test_arguments_changed_in_place_compare_as_outputs_do() -> None:
    """The arguments after the call compare as values: True is not 1 (the encoded data's ==
    said it was), and a set or dict built in another order is the same value.
    """
    assert _mutated([True], [1], before=[0]) == "mutated"
    assert _mutated({"a": True}, {"a": 1}, before={}) == "mutated"
    assert _mutated([1, 2], [1, 2], before=[2, 1]) is None
    assert _mutated([2, 1], [1, 2], before=[2, 1]) == "mutated"
    in_order = plain.encode([{"a": 1, "b": 2}])
    reordered = plain.encode([{"b": 2, "a": 1}])
    ok = {"ok": plain.encode(None)}
    assert agree(ok | {"w": in_order}, ok | {"w": reordered}, EXACT, plain.encode([{}])) is None
    by_hand = {"#": "set", "v": [1, 2, 3]}
    other_order = {"#": "set", "v": [3, 1, 2]}
    before = plain.encode([set()])
    assert agree(ok | {"w": [by_hand]}, ok | {"w": [other_order]}, EXACT, before) is None
    # A change reported by one side only is compared with the arguments as they were.
    assert _mutated(None, {"b": 2, "a": 1}, before={"a": 1, "b": 2}) is None
    assert _mutated({"a": 1}, None, before={"a": 1}) is None
    assert _mutated(None, [1, 2, 3], before=[3, 2, 1]) == "mutated"


def test_canonical_orders_sets_and_dicts() -> None:
    a = canonical(plain.encode({"x": {3, 1, 2}, "y": (1, {"b": 2, "a": 1})}))
    b = canonical(plain.encode({"y": (1, {"a": 1, "b": 2}), "x": {2, 3, 1}}))
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# -- augmenting HumanEval tasks --------------------------------------------------------------------

CHECK = """
METADATA = {}

def check(candidate):
    assert candidate([1.0, 2.0, 3.9], 0.3) == True
    assert abs(candidate([], 0.5) - 0) < 1e-6
    assert candidate(x, 1) == 2  # not a literal: left out
    assert candidate([1.0, 2.0, 3.9], 0.3) == True  # a repeat
"""


def test_seeds_are_the_literal_calls_of_the_check_source() -> None:
    assert seeds_of(CHECK, "has_close") == [([1.0, 2.0, 3.9], 0.3), ([], 0.5)]
    assert seeds_of("def check(:", "f") == []


def test_mutants_simplify_then_change_one_argument_at_a_time() -> None:
    found = mutants((3, "ab"))
    assert found[:4] == [(0, ""), (1, "a"), (-1, "aa"), (2, "ab")]  # the simplest inputs first
    assert found[4:6] == [(1, "z"), (2, "Z")]  # ramps
    assert (2, "ab") in found and (4, "ab") in found and (-3, "ab") in found
    assert (3, "") in found and (3, "ba") in found and (3, "abab") in found
    assert all(a == 3 or b == "ab" for a, b in found[6:])
    # ties between arguments: a repeated element and a zero threshold
    assert mutants(([1.5, 2.0], 0.3))[0] == ([0.0, 0.0], 0.0)


def test_generated_inputs_are_deterministic_and_shaped_like_the_seeds() -> None:
    seeds = [([1, 2, 3], "abc")]
    first = generate(seeds, None, 50, 7)
    assert first == generate(seeds, None, 50, 7) and first != generate(seeds, None, 50, 8)
    assert len(first) == 50
    assert all(isinstance(xs, list) and isinstance(s, str) for xs, s in first)
    assert any(len(xs) > 3 for xs, _ in first)  # longer collections than the test's own


def test_the_references_constants_are_drawn() -> None:
    reference = "def grade(g):\n    return 'A' if g >= 3.7 else 'B'\n"
    found = generate([(1.0,)], None, 60, 3, reference)
    assert (3.7,) in found


def test_type_hints_add_inputs_where_there_are_no_seeds() -> None:
    def f(numbers: list[float], k: int) -> float:
        return 0.0

    found = generate([], f, 30, 1)
    assert len(found) == 30
    assert all(isinstance(a, list) and isinstance(b, int) for a, b in found)


# -- EvalPlus lines --------------------------------------------------------------------------------

SLICE = Path(__file__).parents[1] / "data" / "evalplus" / "mbppplus_slice.jsonl"


def test_evalplus_lines_become_tasks_with_base_and_plus_inputs() -> None:
    tasks = [t for _, t in iter_dataset(SLICE)]
    assert [getattr(t, "task_id", None) for t in tasks] == ["Mbpp/4", "Mbpp/7"]
    first = tasks[0]
    assert not isinstance(first, TaskFormatError) and first.differential is not None
    tiers = [tier for _, tier in first.differential.fixed]
    assert tiers.count(ORIGINAL) == 3 and tiers.count(STRONGER) == 17
    assert first.differential.compare_plain() == {"kind": "evalplus", "atol": 0.0}
    assert first.reference is not None and first.reference.lstrip().startswith("import heapq")


def test_a_bad_evalplus_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    good = json.loads(SLICE.read_text().splitlines()[0])
    path.write_text(
        json.dumps({**good, "plus_input": [1, 2]}) + "\n" + json.dumps({**good, "atol": -1}) + "\n"
    )
    errors = [str(t) for _, t in iter_dataset(path)]
    assert f"{path}:1" in errors[0] and "plus_input" in errors[0]
    assert f"{path}:2" in errors[1] and "atol" in errors[1]


# -- the report's figures --------------------------------------------------------------------------


def _result(model: str, n: int, c: int, c_original: int | None) -> TaskResult:
    return TaskResult(
        "t", model, model, "x::t", n, n, c, {"passed": c}, {1: c / n}, c_original=c_original
    )


def test_pass_at_k_on_the_original_tests_and_the_false_positives() -> None:
    results = [_result("m", 10, 2, 6), _result("m", 10, 4, 4), _result("other", 10, 1, None)]
    s = summarise("m", results, [1])
    assert s.tasks == 2 and s.passed_original == 10 and s.false_positives == 4
    assert s.original[1] == pytest.approx(0.5) and s.stronger[1] == pytest.approx(0.3)
    assert s.false_positive_rate == pytest.approx(0.4)
    assert task_json(results[0], [1]) == {
        "c_original": 6, "pass_at_k_original": {"1": pytest.approx(0.6)},
        "pass_at_k_stronger": {"1": 0.2}, "false_positives": 4,
        "false_positive_rate": pytest.approx(4 / 6),
    }  # fmt: skip
    assert task_json(results[2], [1]) is None
    assert model_json("other", results, [1])["tasks"] == 0
    (line,) = stronger_lines(["m", "other"], results, [1])
    assert "pass@1 0.5000 -> 0.3000" in line and "false positives 4/10 (40.0%)" in line


def test_original_outcome_behaviour_and_c_original_survive_json() -> None:
    sample = CandidateResult(
        0, Outcome.FAILED, "m", "c", "p", 0.1, original=Outcome.PASSED, behaviour="ab12"
    )
    assert (
        sample.to_json()["original_outcome"] == "passed" and sample.to_json()["behaviour"] == "ab12"
    )
    assert CandidateResult.from_json(sample.to_json()) == sample
    result = _result("m", 1, 0, 1)
    assert TaskResult.from_json(result.to_json()).c_original == 1
    assert "c_original" not in _result("m", 1, 0, None).to_json()
    assert "original_outcome" not in CandidateResult(0, Outcome.PASSED, "", "", "", 0.0).to_json()


def test_differential_spec_compare() -> None:
    assert DifferentialSpec().compare_plain() == EXACT
    assert DifferentialSpec(compare=Approx(0.1, 0.2)).compare_plain() == {
        "kind": "approx",
        "rel": 0.1,
        "abs": 0.2,
    }


def test_the_reference_changing_an_argument_to_an_equal_value_of_another_type_is_a_change() -> None:
    """``[1]`` made ``[True]`` in place is a change (the encoded data's == missed it), so a
    candidate that leaves the 1 differs from the reference.
    """
    from pytest_passk.sandbox.reference import observe

    def flag(values: list[object]) -> None:
        values[0] = True

    def nothing(values: list[object]) -> None:
        pass

    arguments = plain.encode([[1]])
    assert observe(flag, arguments) == {"ok": None, "w": [[True]]}
    assert observe(nothing, arguments) == {"ok": None}
    ok = {"ok": plain.encode(None)}
    assert agree(ok, observe(flag, arguments), EXACT, arguments) == "mutated"
