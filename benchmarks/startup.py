"""The fixed cost of a one-task pytest-passk run, against plain pytest.

Times, each in a fresh process and each ``--repeat`` times (medians printed), in wall seconds
and in CPU seconds (the process and its children: the figure that load does not distort):

- ``plain``: pytest on one trivial test with pytest-passk disabled (``-p no:passk``): pytest's
  own start-up with the same other plugins;
- ``loaded``: the same with pytest-passk loaded (check mode, no task): the plugin's import cost;
- ``one task``: ``pytest --passk=1 --model=replay:samples.jsonl`` on one task with one recorded
  sample, with a store of its own each time (so the candidate really runs);
- ``no code``: the same with a recorded answer that holds no code (prose): nothing is to run,
  so no sandbox starts.

The one-task run is split by :mod:`benchmarks.startup_probe` into pytest start-up (until
``pytest_sessionstart``), the plugin's session start (the model check), collection, sampling,
planning and the sandbox pool's start and calibration (until the item's call: the pool starts
with the first program to run), the item (the candidate's run and the verdict) and the end of
the run (summary, outputs, pool shutdown). The split's CPU column counts the pytest process
only (the sandbox's workers are its children and are counted once reaped, at the end). It
prints the ratio of the one-task run to plain pytest.
Usage::

    python benchmarks/startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

TASK = """
import pytest_passk as passk

@passk.task(prompt="def add(a, b):\\n", entry_point="add")
def test_add(candidate):
    assert candidate(2, 3) == 5
"""
SAMPLE = '{"task_id": "test_task.py::test_add", "completion": "    return a + b\\n"}\n'
NO_CODE = '{"task_id": "test_task.py::test_add", "completion": "I cannot write that."}\n'
PHASES = (
    ("pytest start-up", "start", "sessionstart"),
    ("plugin session start (model check)", "sessionstart", "collection"),
    ("collection", "collection", "collected"),
    ("sampling, pool start and calibration", "runtestloop", "call"),
    ("the item (candidate run, verdict)", "call", "ran"),
    ("end of run (summary, pool shutdown)", "ran", "exit"),
)
Marks = dict[str, tuple[float, float]]
#: With it set, pytest rewrites every plugin module's asserts in every run (hypothesis alone is
#: 73 modules, about 2 s of CPU): the children run as a user's pytest does, with bytecode caches.
BYTECODE_OFF = "PYTHONDONTWRITEBYTECODE"


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args: Sequence[str], cwd: Path, *, failing: bool = False) -> Marks:
    """One pytest process: (wall, CPU) seconds at each probed phase, ``exit`` the whole run.
    ``failing``: the run's one test must fail (exit status 1), as a task without code does.
    """
    marks_file = cwd / "marks.txt"
    marks_file.unlink(missing_ok=True)
    started, cpu = time.time(), children_cpu()
    env = {
        **{key: value for key, value in os.environ.items() if key != BYTECODE_OFF},
        "PASSK_BENCH_T0": repr(started),
        "PASSK_BENCH_MARKS": str(marks_file),
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    marks: Marks = {"start": (0.0, 0.0), "exit": (time.time() - started, children_cpu() - cpu)}
    if done.returncode != (1 if failing else 0):
        raise SystemExit(f"pytest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    if marks_file.exists():
        for line in marks_file.read_text().splitlines():
            phase, wall, used = line.split()
            marks.setdefault(phase, (float(wall), float(used)))
    return marks


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args(argv)
    totals: dict[str, list[tuple[float, float]]] = {
        "plain": [],
        "loaded": [],
        "one task": [],
        "no code": [],
    }
    split: dict[str, list[tuple[float, float]]] = {name: [] for name, _, _ in PHASES}
    with tempfile.TemporaryDirectory() as directory:
        cwd = Path(directory)
        (cwd / "test_trivial.py").write_text("def test_trivial():\n    pass\n")
        (cwd / "test_task.py").write_text(TASK)
        (cwd / "samples.jsonl").write_text(SAMPLE)
        (cwd / "no_code.jsonl").write_text(NO_CODE)
        run(["test_trivial.py"], cwd)  # warm-up: fills the bytecode and assertion caches
        for index in range(options.repeat):
            totals["plain"].append(run(["-p", "no:passk", "test_trivial.py"], cwd)["exit"])
            totals["loaded"].append(run(["test_trivial.py"], cwd)["exit"])
            store = f"--passk-store={cwd / f'store-{index}'}"
            args = ["--passk=1", "--model=replay:samples.jsonl", store, "test_task.py"]
            marks = run([*args, "-p", "benchmarks.startup_probe"], cwd)
            totals["one task"].append(marks["exit"])
            no_code = ["--passk=1", "--model=replay:no_code.jsonl", store, "test_task.py"]
            totals["no code"].append(run(no_code, cwd, failing=True)["exit"])
            for name, begin, end in PHASES:
                split[name].append(
                    (marks[end][0] - marks[begin][0], marks[end][1] - marks[begin][1])
                )
    print(f"medians of {options.repeat} runs each, seconds: {'wall':>7} {'CPU':>7}")
    for name, values in totals.items():
        print(f"  {name:<42} {_median(values, 0):7.3f} {_median(values, 1):7.3f}")
    print("one task, by phase:")
    for name, values in split.items():
        print(f"  {name:<42} {_median(values, 0):7.3f} {_median(values, 1):7.3f}")
    for column, label in ((0, "wall"), (1, "CPU")):
        ratio = _median(totals["one task"], column) / _median(totals["plain"], column)
        print(f"ratio one task / plain pytest ({label}): {ratio:.2f}")


def _median(values: Sequence[tuple[float, float]], column: int) -> float:
    return statistics.median(value[column] for value in values)


if __name__ == "__main__":
    main()
