"""The ``fake:MODULE:FUNCTION`` backend, and the ``pytest_passk_update_report`` hook."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_passk.backends import GenerationRequest, PromptStyle, RenderedPrompt, SamplingParams
from pytest_passk.backends.fake import FakeBackend
from pytest_passk.errors import BackendError

FAKES = """
def half_right(task_id, prompt, index):
    if task_id == "Demo/0":
        return "    return x + 1\\n" if index % 2 == 0 else "    return x - 1\\n"
    return "    return 2 * x\\n"
"""


def test_fake_backend_hands_every_sample_to_the_sink_in_order() -> None:
    backend = FakeBackend(lambda task_id, prompt, index: f"# {task_id} {index}\n")
    prompt = RenderedPrompt(PromptStyle.COMPLETION, "def f():\n", (), ())
    seen: list[tuple[int, int, str]] = []
    batches = backend.generate(
        [GenerationRequest("a", prompt, 2, 3), GenerationRequest("b", prompt, 1)],
        SamplingParams(),
        lambda position, index, completion: seen.append((position, index, completion.text)),
    )
    assert [[c.text for c in batch] for batch in batches] == [["# a 3\n", "# a 4\n"], ["# b 0\n"]]
    assert seen == [(0, 3, "# a 3\n"), (0, 4, "# a 4\n"), (1, 0, "# b 0\n")]
    assert backend.calls == [[("a", 3, 2), ("b", 0, 1)]]


def test_a_failing_answer_function_is_a_backend_error() -> None:
    def broken(task_id: str, prompt: str, index: int) -> str:
        raise KeyError(task_id)

    prompt = RenderedPrompt(PromptStyle.COMPLETION, "def f():\n", (), ())
    with pytest.raises(BackendError, match="KeyError"):
        FakeBackend(broken).generate([GenerationRequest("a", prompt, 1)], SamplingParams())


def test_fake_provider_runs_through_the_store(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    pytester.makepyfile(fakes=FAKES)
    report = tmp_path / "report.json"
    args = ["--passk=1,2", "--passk-n=4", "--model=fake:fakes:half_right"]
    result = pytester.runpytest(*args, f"--passk-report={report}", "-p", "no:randomly")
    result.assert_outcomes(passed=2)
    document = json.loads(report.read_text())
    by_task = {t["task_id"]: (t["n"], t["c"]) for t in document["tasks"]}
    assert by_task == {"Demo/0": (4, 2), "Demo/1": (4, 4)}
    again = pytester.runpytest(*args, "-p", "no:randomly")
    again.stdout.fnmatch_lines(["passk store *: 0 samples drawn, 8 read from the store;*"])


def test_fake_spec_without_a_function_is_a_usage_error(
    pytester: pytest.Pytester, dataset: Path
) -> None:
    result = pytester.runpytest("--passk=1", "--model=fake:nomodule")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--model=fake:nomodule: 'nomodule' names no function*"])


def test_plugins_extend_the_json_report(
    pytester: pytest.Pytester, dataset: Path, samples: Path, tmp_path: Path
) -> None:
    pytester.makeconftest(
        """
def pytest_passk_update_report(config, report):
    report["my_lab"] = {"models": sorted(report["models"])}
"""
    )
    report = tmp_path / "report.json"
    pytester.runpytest("--passk=1", f"--model=replay:{samples}", f"--passk-report={report}")
    document = json.loads(report.read_text())
    assert document["my_lab"] == {"models": [f"replay:{samples}"]}
    assert document["schema"] == "pytest-passk/report/v1"


LOGGING_FAKES = """
import os

def logged(task_id, prompt, index):
    with open(os.environ["FAKE_LOG"], "a") as log:
        log.write(f"{os.getpid()} {task_id} {index}\\n")
    return "    return x + 1\\n" if task_id == "Demo/0" else "    return 2 * x\\n"
"""


def test_under_xdist_one_process_draws_every_sample_once(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both workers run the generation phase; the group lock makes the first draw everything and
    the second find it in the store: a model would load once per run.
    """
    pytester.makepyfile(fakes=LOGGING_FAKES)
    log = tmp_path / "drawn.log"
    monkeypatch.setenv("FAKE_LOG", str(log))
    result = pytester.runpytest(
        "--passk=1", "--passk-n=5", "--model=fake:fakes:logged", "-n", "2", "-p", "no:randomly"
    )
    result.assert_outcomes(passed=2)
    lines = [line.split() for line in log.read_text().splitlines()]
    assert len({pid for pid, _, _ in lines}) == 1, "samples were drawn by two processes"
    assert sorted((task, int(i)) for _, task, i in lines) == sorted(
        (task, i) for task in ("Demo/0", "Demo/1") for i in range(5)
    )
    result.stdout.fnmatch_lines(["passk store *: 10 samples drawn, 0 read from the store;*"])


def test_cost_comes_from_the_price_table_and_is_null_without_a_price(
    pytester: pytest.Pytester, dataset: Path, tmp_path: Path
) -> None:
    """The fake backend counts whitespace-separated words as tokens: each sample of Demo/0 costs
    its prompt once per request and 4 completion tokens (``return x + 1``).
    """
    pytester.makepyfile(fakes=FAKES)
    pytester.makeini(
        """
[pytest]
passk_prices =
    fake:fakes:half_right = 1000000 2000000
"""
    )
    priced, unpriced = tmp_path / "priced.json", tmp_path / "unpriced.json"
    args = ["--passk=1", "--passk-n=2", "-p", "no:randomly"]
    pytester.runpytest(*args, "--model=fake:fakes:half_right", f"--passk-report={priced}")
    model = json.loads(priced.read_text())["models"]["fake:fakes:half_right"]
    tokens = model["tokens"]
    assert model["cost_usd"] == pytest.approx(tokens["prompt"] * 1.0 + tokens["completion"] * 2.0)
    assert model["cost_per_solved_task_usd"] == pytest.approx(model["cost_usd"] / 2)
    result = pytester.runpytest(*args, "--model=fake:fakes:half_right")
    result.stdout.fnmatch_lines(
        [f"fake:fakes:half_right *${model['cost_usd']:.4f} (${model['cost_usd'] / 2:.4f}/solved)"]
    )
    pytester.makepyfile(other=FAKES)
    pytester.runpytest(*args, "--model=fake:other:half_right", f"--passk-report={unpriced}")
    model = json.loads(unpriced.read_text())["models"]["fake:other:half_right"]
    assert model["cost_usd"] is None and model["cost_per_solved_task_usd"] is None
