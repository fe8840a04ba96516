"""--passk-html and --passk-plot: written by the controller from the JSON report, the same with
and without pytest-xdist, and the same as ``pytest-passk report`` on the saved file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pytest_passk.cli import main
from pytest_passk.plots import PLOT_EXTRA
from pytest_passk.render_options import HTML_PATH, PLOT_DIR

from .conftest import write_jsonl

FIGURES = ["pass_at_k.png", "pass_at_k.svg", "pass_at_k_cost.png", "pass_at_k_cost.svg"]


@pytest.fixture
def second_model(pytester: pytest.Pytester) -> Path:
    """A second recording: Demo/0 passes 1 of 4, Demo/1 passes 3 of 4."""
    rows = [
        {"task_id": "Demo/0", "completion": "    return x + 1\n"},
        {"task_id": "Demo/0", "completion": "    return x - 1\n"},
        {"task_id": "Demo/0", "completion": "    return x - 1\n"},
        {"task_id": "Demo/0", "completion": "    return 0\n"},
        {"task_id": "Demo/1", "completion": "    return x * 2\n"},
        {"task_id": "Demo/1", "completion": "    return x + x\n"},
        {"task_id": "Demo/1", "completion": "    return 2 * x\n"},
        {"task_id": "Demo/1", "completion": "    return x\n"},
    ]
    return write_jsonl(pytester.path / "second.jsonl", rows)


@pytest.fixture(autouse=True)
def _matplotlib_loaded_once() -> None:
    """Import matplotlib before pytester's in-process runs: pytester drops the modules a run
    imported, and a second import of matplotlib in one process mixes its classes.
    """
    try:
        import matplotlib.backends.backend_agg
        import matplotlib.backends.backend_svg
        import matplotlib.figure  # noqa: F401
    except ImportError:
        pass


def _run(pytester: pytest.Pytester, out: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        "--passk=1,2",
        "--model=replay:samples.jsonl",
        "--model=replay:second.jsonl",
        f"--passk-report={out}/report.json",
        f"--passk-html={out}/report.html",
        f"--passk-plot={out}/plots",
        "-p",
        "no:randomly",
        *extra,
    )


def _stable(page: str) -> str:
    return re.sub(r"created: [^ <]*", "created: -", page)


def test_html_and_plots_from_a_run_with_and_without_xdist(
    pytester: pytest.Pytester, dataset: Path, samples: Path, second_model: Path
) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("xdist")
    (pytester.path / "solo").mkdir()
    result = _run(pytester, "solo")
    result.assert_outcomes(passed=3, failed=1)
    page = (pytester.path / "solo" / "report.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (pytester.path / "solo" / "plots").iterdir()) == FIGURES
    # Both models, the tasks and their distinct programs with the failure text.
    assert "replay:second.jsonl" in page and "Demo/1" in page
    assert page.count("<svg") == 1  # replays have no price: no cost figure, a note instead
    assert "return x - 1" in page and "AssertionError" in page
    assert page.count('class="only-one"') == 1  # Demo/1: only the second model solved it
    document = json.loads((pytester.path / "solo" / "report.json").read_text())
    demo0 = next(
        t for t in document["tasks"] if t["task_id"] == "Demo/0" and "second" in t["model"]
    )
    assert [(p["program"].strip()[-12:], p["count"]) for p in demo0["programs"]][:1] == [
        ("return x - 1", 2)
    ]

    # pytest-xdist: the controller writes the same page and the same figures.
    (pytester.path / "xdist").mkdir()
    result = _run(pytester, "xdist", "-n", "2")
    result.assert_outcomes(passed=3, failed=1)
    xdist_page = (pytester.path / "xdist" / "report.html").read_text(encoding="utf-8")
    assert _stable(xdist_page) == _stable(page)
    for name in FIGURES:
        if name.endswith(".svg"):
            solo = (pytester.path / "solo" / "plots" / name).read_bytes()
            assert (pytester.path / "xdist" / "plots" / name).read_bytes() == solo

    # The saved report renders the same page.
    again = pytester.path / "again.html"
    saved = str(pytester.path / "solo" / "report.json")
    assert main(["report", saved, "--html", str(again)]) == 0
    assert again.read_text(encoding="utf-8") == page


def test_html_alone_needs_no_report_file(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    result = pytester.runpytest(
        "--passk=1", "--model=replay:samples.jsonl", "--passk-html=page.html"
    )
    result.assert_outcomes(passed=1, failed=1)
    assert "<h2>Summary</h2>" in (pytester.path / "page.html").read_text(encoding="utf-8")
    assert not (pytester.path / "report.json").exists()


def test_plot_without_matplotlib_is_a_usage_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("pytest_passk.plots.matplotlib_available", lambda: False)
    result = pytester.runpytest("--passk=1", "--passk-plot=plots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert PLOT_EXTRA.format(option="--passk-plot") in result.stderr.str()
    assert "Traceback" not in result.stderr.str()


def test_bad_plot_dir_and_html_path_are_usage_errors(pytester: pytest.Pytester) -> None:
    pytest.importorskip("matplotlib")
    (pytester.path / "afile").write_text("x")
    result = pytester.runpytest("--passk=1", "--passk-plot=afile/plots")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    expected = PLOT_DIR.format(
        source="--passk-plot", value="afile/plots", problem="*afile is a file, not a directory"
    )
    result.stderr.fnmatch_lines([f"*{expected.split(': ', 1)[0]}*is a file, not a directory*"])
    result = pytester.runpytest("--passk=1", "--passk-html=afile/r.html")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    problem = f"{pytester.path / 'afile'} is a file, not a directory"
    expected = HTML_PATH.format(source="--passk-html", value="afile/r.html", problem=problem)
    result.stderr.fnmatch_lines([f"*{expected}*"])
    result = pytester.runpytest("--passk=1", "--passk-html=.")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--passk-html='.': is a directory*"])


def test_outputs_go_into_new_directories(
    pytester: pytest.Pytester, dataset: Path, samples: Path
) -> None:
    """docs/comparing.md's command: the report, the page and the curves in a new ``runs/``
    (``--passk-report`` and ``--passk-plot`` made it; ``--passk-html`` refused it).
    """
    pytest.importorskip("matplotlib")
    result = pytester.runpytest(
        "--passk=1",
        "--model=replay:samples.jsonl",
        "--passk-report=runs/report.json",
        "--passk-html=runs/html/report.html",
        "--passk-plot=runs/plots",
    )
    result.assert_outcomes(passed=1, failed=1)
    runs = pytester.path / "runs"
    assert json.loads((runs / "report.json").read_text(encoding="utf-8"))["tasks"]
    assert "<h2>Summary</h2>" in (runs / "html" / "report.html").read_text(encoding="utf-8")
    assert sorted(p.name for p in (runs / "plots").iterdir()) == FIGURES
