"""examples/test_shapes.py: every shape's reference passes in check mode, and every recorded
wrong candidate fails with a failure text that says what differed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
#: task: what the failure text of its recorded wrong candidate shows.
DIFFERED = {
    "test_lru_cache": "assert 'two' == -1",
    "test_chained_methods": "== 'SELECT * FROM users WHERE age > 18 AND active LIMIT 10'",
    "test_iterator_class": "assert [3, 2, 1, 0] == [3, 2, 1]",
    "test_generator": "assert [1, 1, 2, 3, 5, 8, ...] == [0, 1, 1, 2, 3, 5, ...]",
    "test_in_place_list": "assert [1, 2, 3] is None",
    "test_in_place_dict": "assert {'a': 1} == {'a': 3, 'b': 1}",
    "test_dataclass": "the candidate's Point(x=-4, y=3) != Point(x=3, y=-4)",
    "test_named_tuple": "the candidate's (2, 3) != (3, 2)",
    "test_enum": "the candidate's Level.HOT != Level.WARM",
    "test_callbacks": "assert [-3, -3, -3] == [3, -6, 'recorded']",
    "test_closure": "assert 15 == 16",
    "test_raises": "ValueError: balance 100 is below 500",
    "test_parametrize": "[5-120] AssertionError: assert 24 == 120",
    "test_parametrize_below": "[text1] AssertionError: assert [0] == []",
}


@pytest.fixture
def shapes(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(test_shapes=(EXAMPLES / "test_shapes.py").read_text())
    lines = (EXAMPLES / "shapes_wrong_samples.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        row["task_id"] = row["task_id"].removeprefix("examples/")
    (pytester.path / "wrong.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return pytester


def test_every_shape_has_a_recorded_wrong_candidate() -> None:
    lines = (EXAMPLES / "shapes_wrong_samples.jsonl").read_text().splitlines()
    tasks = {json.loads(line)["task_id"].split("::")[1] for line in lines}
    source = (EXAMPLES / "test_shapes.py").read_text()
    defined = {
        line[4:].split("(")[0] for line in source.splitlines() if line.startswith("def test_")
    }
    assert tasks == defined == set(DIFFERED)


def test_every_shape_passes_in_check_mode(shapes: pytest.Pytester) -> None:
    result = shapes.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=len(DIFFERED))


def test_every_wrong_candidate_fails_saying_what_differed(shapes: pytest.Pytester) -> None:
    result = shapes.runpytest(
        "--passk=1", "--model=replay:wrong.jsonl", "-p", "no:cacheprovider", "-n", "0"
    )
    result.assert_outcomes(failed=len(DIFFERED))
    output = result.stdout.str()
    for task, differed in DIFFERED.items():
        section = output.split(f"passk: test_shapes.py::{task} [", 1)[1].split("\n_____", 1)[0]
        assert differed in section, (task, section[:600])
