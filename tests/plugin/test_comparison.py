"""Two models on recorded samples: the comparison section, its JSON and JUnit numbers, xdist too.

Hand-computed from the recordings (2 tasks, 4 samples each, k = 1, 2):

- ``big`` (the baseline, first --model): Demo/0 c=2, Demo/1 c=0. ``small``: Demo/0 c=3, Demo/1 c=1.
- pass@1: big 0.25, small 0.5, paired difference 0.25 on both tasks: interval [0.25, 0.25].
- pass@2: big (5/6 + 0) / 2, small (1 + 1/2) / 2: difference 1/3; per task 1/6 and 1/2.
- Only small solved Demo/1; nothing only big solved.
- Every sample: 100 prompt + 50 completion tokens; big at $1/$2 per 1M, small at $0.1/$0.2:
  $0.0002 and $0.00002 per sample.
- selected@1: big picks its first sample on both tasks (all programs distinct): 1, 0 -> 0.5;
  small picks ``x + 1`` (3 of 4, layout aside) on Demo/0 and ``x * 3`` (3 of 4, wrong) on Demo/1
  -> 0.5, though its pass@4 is 1.0.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.cli_reports import summary_lines, target_summary
from pytest_passk.compare_settings import BAD_BASELINE
from pytest_passk.comparison import ModelRun, compare
from pytest_passk.comparison_report import NOT_REACHED, TARGET_LINE, diff_property

from .conftest import write_jsonl

TOKENS = {"prompt_tokens": 100, "completion_tokens": 50}
BIG = [
    ("Demo/0", "    return x + 1\n"),
    ("Demo/0", "    return x + 2\n"),
    ("Demo/0", "    return 1 + x\n"),
    ("Demo/0", "    raise ValueError('no')\n"),
    ("Demo/1", "    return x * 3\n"),
    ("Demo/1", "    return x + x + 1\n"),
    ("Demo/1", "    return 0\n"),
    ("Demo/1", "    return x\n"),
]
SMALL = [
    ("Demo/0", "    return x - 1\n"),
    ("Demo/0", "    return x + 1\n"),
    ("Demo/0", "    return x + 1  # plus one\n"),
    ("Demo/0", "    return x+1\n"),
    ("Demo/1", "    return x + x\n"),
    ("Demo/1", "    return x * 3\n"),
    ("Demo/1", "    return x*3\n"),
    ("Demo/1", "    return x * 3\n"),
]
INI = """[pytest]
passk_models =
    big = replay:big.jsonl
    small = replay:small.jsonl
passk_prices =
    big = 1.0 2.0
    small = 0.1 0.2
"""


#: The terminal summary, pass@k table and comparison (fnmatch patterns).
TERMINAL = [
    "*= pass@k =*",
    "model*pass@1 [95% CI]*pass@2 [95% CI]*selected@1*",
    "big *0.250 [*0.500*",
    "*- comparison -*",
    "against big: pass@k on the tasks both ran (n >= k), 95% CI by paired bootstrap (10000*",
    "model  k  tasks  pass@k  big    difference [95% CI]      only it  only big",
    "small  1  2      0.500   0.250  +0.250 [+0.250, +0.250]  1        0",
    "small  2  2      0.750   0.417  +0.333 [+0.167, +0.500]",
    "cost per sample: big $0.0002, small $0.00002",
    "equal cost per task (2 tasks every model ran; * = all n drawn)",
    "budget/task  from                 big          small",
    "$0.0002      one sample of big    k=1 0.250    k=4* 1.000",
    "$0.00002     one sample of small  over budget  k=1 0.500",
    "$0.00004     --passk-budget       over budget  k=2 0.750",
    "to reach pass@k >= 0.8: big not reached within n=4; small k=3 ($0.00006/task)",
]


@pytest.fixture
def recordings(pytester: pytest.Pytester, dataset: Path) -> list[str]:
    for name, rows in (("big.jsonl", BIG), ("small.jsonl", SMALL)):
        records = [{"task_id": t, "completion": c} | TOKENS for t, c in rows]
        write_jsonl(pytester.path / name, records)
    pytester.makeini(INI)
    return ["--model=big", "--model=small"]


def _run(pytester: pytest.Pytester, models: list[str], *extra: str) -> tuple[Any, dict[str, Any]]:
    report = pytester.path / "report.json"
    result = pytester.runpytest(
        "--passk=1,2",
        *models,
        "--passk-budget=0.00004",
        "--passk-target=0.8",
        f"--passk-report={report}",
        f"--junitxml={pytester.path / 'junit.xml'}",
        "-p",
        "no:randomly",
        *extra,
    )
    return result, json.loads(report.read_text())


def _suite_properties(pytester: pytest.Pytester) -> dict[str, str]:
    suite = ET.parse(pytester.path / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    return {p.get("name", ""): p.get("value", "") for p in suite.findall("properties/property")}


@pytest.mark.parametrize("xdist", [False, True], ids=["solo", "xdist"])
def test_two_models_on_recorded_samples(
    pytester: pytest.Pytester, recordings: list[str], xdist: bool
) -> None:
    extra = ["-n", "2"] if xdist else []
    if xdist:
        pytest.importorskip("xdist")
    result, document = _run(pytester, recordings, *extra)
    result.assert_outcomes(passed=3, failed=1)  # big fails Demo/1 (c = 0)

    big, small = document["models"]["big"], document["models"]["small"]
    assert big["selected_at_1"] == 0.5 and small["selected_at_1"] == 0.5
    assert big["cost_per_sample_usd"] == pytest.approx(2e-4)
    assert small["cost_per_sample_usd"] == pytest.approx(2e-5)
    assert document["assumptions"] == {"gpu_hour_usd": 2.5, "cpu_hour_usd": 0.05}

    comparison = document["comparison"]
    assert comparison["baseline"] == "big"
    assert comparison["shared_tasks"] == 2
    assert comparison["bootstrap_resamples"] == 10_000
    versus = comparison["models"]["small"]
    assert (versus["only_model_solved"], versus["only_baseline_solved"]) == (1, 0)
    one, two = versus["pass_at_k_diff"]["1"], versus["pass_at_k_diff"]["2"]
    assert one["diff"] == pytest.approx(0.25)
    assert one["ci95"] == pytest.approx([0.25, 0.25])
    assert two["diff"] == pytest.approx(1 / 3)
    assert two["ci95"] == pytest.approx([1 / 6, 1 / 2])

    rows = [(row["source"], row["budget_usd"], row["models"]) for row in comparison["equal_cost"]]
    assert [(source, budget) for source, budget, _ in rows] == [
        ("one sample of big", pytest.approx(2e-4)),
        ("one sample of small", pytest.approx(2e-5)),
        ("--passk-budget", 4e-5),
    ]
    # One sample of big buys 10 of small: capped at the 4 drawn, pass@4 = 1.0.
    assert rows[0][2]["big"] | {"pass_at_k": pytest.approx(0.25)} == {
        "k": 1,
        "pass_at_k": 0.25,
        "status": "ok",
        "affordable_k": 1,
    }
    assert rows[0][2]["small"] == {"k": 4, "pass_at_k": 1.0, "status": "capped", "affordable_k": 10}
    assert rows[1][2]["big"] == {
        "k": None,
        "pass_at_k": None,
        "status": "over-budget",
        "affordable_k": 0,
    }
    assert rows[2][2]["small"]["k"] == 2
    assert rows[2][2]["small"]["pass_at_k"] == pytest.approx(0.75)

    target = comparison["target"]
    assert target["pass_at_k"] == 0.8
    assert target["models"]["big"]["k"] is None  # pass@4 of big is 0.5
    assert target["models"]["small"]["k"] == 3
    assert target["models"]["small"]["cost_per_task_usd"] == pytest.approx(6e-5)

    props = _suite_properties(pytester)
    name = diff_property(2, "small", "big")
    assert name == "pass@2[small]-pass@2[big]"
    assert float(props[name]) == pytest.approx(two["diff"], abs=1e-6)
    assert float(props[f"{name}:ci95_low"]) == pytest.approx(1 / 6, abs=1e-6)
    assert float(props[f"{name}:ci95_high"]) == pytest.approx(1 / 2, abs=1e-6)
    assert props["selected@1[small]"] == "0.5000"
    assert props["only_solved[small]-vs-[big]"] == "1"
    assert props["target[pass@k>=0.8][small]:k"] == "3"

    # fnmatch reads "[" as a character class: match it literally.
    literal = [pattern.replace("[", "[[]") for pattern in TERMINAL]
    result.stdout.fnmatch_lines(literal)
    lines = result.stdout.lines
    start = next(i for i, line in enumerate(lines) if " comparison " in line)
    end = next(i for i, line in enumerate(lines) if line.startswith("to reach pass@k"))
    assert max(len(line) for line in lines[start : end + 1]) <= 100


def test_the_report_numbers_are_the_comparison_of_the_reported_counts(
    pytester: pytest.Pytester, recordings: list[str]
) -> None:
    _, document = _run(pytester, recordings)
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for task in document["tasks"]:
        counts.setdefault(task["model"], {})[task["task_id"]] = (task["n"], task["c"])
    costs = {label: m["cost_per_sample_usd"] for label, m in document["models"].items()}
    runs = [ModelRun(label, counts[label], costs[label]) for label in ("big", "small")]
    again = compare(runs, "big", (1, 2), budgets=(4e-5,), target=0.8)
    assert again is not None
    diff = again.versus[0].diffs[2]
    reported = document["comparison"]["models"]["small"]["pass_at_k_diff"]["2"]
    assert reported == {
        "diff": diff.diff,
        "ci95": [diff.low, diff.high],
        "tasks": 2,
        "model_pass_at_k": 0.75,
        "baseline_pass_at_k": diff.baseline_value,
    }
    assert diff.baseline_value == pytest.approx(5 / 12)


def test_two_dataset_files_with_the_same_task_ids_are_all_compared(
    pytester: pytest.Pytester, recordings: list[str], dataset: Path
) -> None:
    """A copy of the dataset in another directory: each id is two items per model, two tasks in
    the pass@k table, and two tasks in the comparison too (the copy overwrote the original).
    """
    (pytester.path / "copy").mkdir()
    (pytester.path / "copy" / dataset.name).write_text(dataset.read_text())
    _, document = _run(pytester, recordings, str(dataset), str(pytester.path / "copy"))
    assert document["models"]["small"]["tasks"] == 4
    assert document["comparison"]["shared_tasks"] == 4
    assert document["comparison"]["models"]["small"]["only_model_solved"] == 2


def test_the_baseline_option(pytester: pytest.Pytester, recordings: list[str]) -> None:
    _, document = _run(pytester, recordings, "--passk-baseline=small")
    comparison = document["comparison"]
    assert comparison["baseline"] == "small"
    versus = comparison["models"]["big"]
    assert versus["pass_at_k_diff"]["1"]["diff"] == pytest.approx(-0.25)
    assert (versus["only_model_solved"], versus["only_baseline_solved"]) == (0, 1)


def test_one_model_has_no_comparison(pytester: pytest.Pytester, recordings: list[str]) -> None:
    result, document = _run(pytester, recordings[:1])
    assert document["comparison"] is None
    assert document["models"]["big"]["selected_at_1"] == 0.5
    assert " comparison " not in result.stdout.str()


def test_one_model_still_reports_its_reach_of_the_target(
    pytester: pytest.Pytester, recordings: list[str]
) -> None:
    """--passk-target with one model: no comparison, but the model's own smallest k and cost
    reaching the target (big: pass@3 = (1 + 0) / 2 = 0.5 at $0.0002 a sample), never silence.
    """
    result, document = _run(pytester, recordings[:1], "--passk-target=0.5")
    result.stdout.fnmatch_lines([TARGET_LINE.format(target=0.5, reaches="big k=3 ($0.0006/task)")])
    assert document["models"]["big"]["target"] == {
        "pass_at_k": 0.5,
        "k": 3,
        "cost_per_task_usd": pytest.approx(0.0006),
        "pass_at_k_at_k": 0.5,
        "n": 4,
    }
    properties = _suite_properties(pytester)
    assert properties["target[pass@k>=0.5][big]:k"] == "3"
    assert properties["target[pass@k>=0.5][big]:cost_per_task_usd"] == "0.0006"
    result, document = _run(pytester, recordings[:1])  # --passk-target=0.8: out of reach
    not_reached = "big " + NOT_REACHED.format(n=4)
    result.stdout.fnmatch_lines([TARGET_LINE.format(target=0.8, reaches=not_reached)])
    assert document["models"]["big"]["target"]["k"] is None


def test_each_model_reports_its_own_reach_beside_the_comparisons(
    pytester: pytest.Pytester, recordings: list[str]
) -> None:
    """With a comparison the terminal shows its target line once (on the shared tasks); the
    report has each model's reach on its own tasks too.
    """
    result, document = _run(pytester, recordings)
    assert result.stdout.str().count("to reach pass@k >= 0.8") == 1
    assert document["models"]["small"]["target"]["k"] == 3
    assert document["comparison"]["target"]["models"]["small"]["k"] == 3


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (
            "--passk-baseline=gpt-4o",
            BAD_BASELINE.format(source="--passk-baseline", value="gpt-4o", models="big, small"),
        ),
        ("--passk-budget=0", "--passk-budget='0': must be greater than 0; give USD per task*"),
        ("--passk-budget=cheap", "--passk-budget='cheap': not a number*"),
        ("--passk-target=0", "--passk-target='0': must be above 0 and at most 1*"),
        ("--passk-target=1.5", "--passk-target='1.5': must be above 0 and at most 1*"),
    ],
)
def test_comparison_options_are_validated(
    pytester: pytest.Pytester, recordings: list[str], option: str, message: str
) -> None:
    result = pytester.runpytest("--passk=1", *recordings, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])


def test_hour_prices_come_from_ini(pytester: pytest.Pytester, recordings: list[str]) -> None:
    pytester.makeini(INI + "passk_gpu_hour_usd = 3.0\npassk_cpu_hour_usd = $0.04\n")
    _, document = _run(pytester, recordings)
    assert document["assumptions"] == {"gpu_hour_usd": 3.0, "cpu_hour_usd": 0.04}
    pytester.makeini(INI + "passk_gpu_hour_usd = -1\n")
    result = pytester.runpytest("--passk=1", *recordings)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini passk_gpu_hour_usd='-1': must be 0 or more*"])


def test_budgets_given_as_one_comma_separated_option(
    pytester: pytest.Pytester, recordings: list[str]
) -> None:
    _, document = _run(pytester, recordings, "--passk-budget=0.0001,0.00002")
    budgets = [
        row["budget_usd"]
        for row in document["comparison"]["equal_cost"]
        if row["source"] == "--passk-budget"
    ]
    assert budgets == [2e-5, 4e-5, 1e-4]


@pytest.mark.parametrize("models", [1, 2], ids=["one model", "compared"])
def test_the_saved_report_summary_repeats_the_runs_target_line(
    pytester: pytest.Pytester, recordings: list[str], models: int
) -> None:
    """``pytest-passk report`` prints the target line the run's terminal printed; a cell that
    is not in a run's shape (hand-edited) is left out, not a traceback.
    """
    result, document = _run(pytester, recordings[:models])
    line = target_summary(document)
    assert line is not None and line.startswith("to reach pass@k >= 0.8: big ")
    result.stdout.fnmatch_lines([line])
    assert summary_lines(document)[-1] == line
    cells = document["comparison"]["target"]["models"] if models == 2 else document["models"]
    if models == 2:
        cells["big"] = {"k": "three"}
        assert target_summary(document) == TARGET_LINE.format(
            target=0.8, reaches="small k=3 ($0.00006/task)"
        )
    else:
        cells["big"]["target"]["n"] = None
        assert target_summary(document) is None
        assert summary_lines(document)[-1].startswith("big: 2 tasks; pass@1 0.250")
