from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

ADD_TASK = '''
import pytest_passk as passk

@passk.task(
    prompt='def add(a, b):\\n    """Return a + b."""\\n',
    entry_point="add",
    reference="def add(a, b):\\n    return a + b\\n",
)
def test_add(candidate):
    assert candidate(2, 3) == 5
'''

DATASET_ROWS: list[dict[str, Any]] = [
    {
        "task_id": "Demo/0",
        "prompt": 'def inc(x):\n    """Return x + 1."""\n',
        "entry_point": "inc",
        "canonical_solution": "    return x + 1\n",
        "test": (
            "def check(candidate):\n    assert candidate(1) == 2\n    assert candidate(-1) == 0\n"
        ),
    },
    {
        "task_id": "Demo/1",
        "prompt": 'def double(x):\n    """Return 2 * x."""\n',
        "entry_point": "double",
        "canonical_solution": "    return 2 * x\n",
        "test": "def check(candidate):\n    assert candidate(3) == 6\n",
    },
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def dataset(pytester: pytest.Pytester) -> Path:
    """A two-task HumanEval-format dataset named passk_demo.jsonl."""
    return write_jsonl(pytester.path / "passk_demo.jsonl", DATASET_ROWS)


@pytest.fixture
def samples(pytester: pytest.Pytester) -> Path:
    """Recorded samples: Demo/0 passes 2 of 4, Demo/1 passes 0 of 4."""
    rows = [
        {"task_id": "Demo/0", "completion": "    return x + 1\n"},
        {"task_id": "Demo/0", "completion": "    return x + 2\n"},
        {"task_id": "Demo/0", "completion": "    return 1 + x\n"},
        {"task_id": "Demo/0", "completion": "    raise ValueError('no')\n"},
        {"task_id": "Demo/1", "completion": "    return x * 3\n"},
        {"task_id": "Demo/1", "completion": "    return x + x + 1\n"},
        {"task_id": "Demo/1", "completion": "    return (\n"},
        {"task_id": "Demo/1", "completion": "    return x\n"},
    ]
    return write_jsonl(pytester.path / "samples.jsonl", rows)
