"""How much of HumanEval's pass@k is real: ``--passk-augment`` against single-point mutants.

1. Every single-point mutant of HumanEval's canonical solutions (a flipped comparison, an
   off-by-one constant, ``+``/``-`` swapped: :func:`benchmarks.humaneval_samples.mutants`) and
   the canonical solutions themselves are written as a recorded-samples file.
2. One run of ``pytest HumanEval.jsonl --passk=1 --model=replay:... --passk-augment`` judges each
   on HumanEval's own tests and on the augmented ones: the *survivors* are the mutants that pass
   the original tests; *caught* are the survivors that fail the augmented tests.
3. Ground truth, independent of the plugin's run: a survivor is *provably wrong* when some
   concrete input shows it differ from the canonical solution, among a large pool per task (the
   task's own ``check`` inputs, 1,000 inputs of the augmentation's generator drawn with another
   seed, and 300 drawn by hypothesis from the entry point's type hints where it can derive
   them), keeping only inputs on which the canonical solution returns without raising. Both run
   in the reference runner (:func:`pytest_passk.references.observations`, 0.1 s of CPU per
   input, 5 s per program) and are compared
   with the judge's own rule (:func:`pytest_passk.sandbox.inside.differ.agree`).
4. Time: a synthetic 164 x 20 sample set (:mod:`benchmarks.humaneval_samples`) run plain and with
   ``--passk-augment``, each with a fresh store, 2 workers.

    python benchmarks/augment.py [--tasks 164] [--pool 1000] [--skip-timing]

Writes ``benchmarks/out/augment/``: ``mutants.jsonl`` (the recorded samples),
``survivors.jsonl`` (with each one's verdicts and a witness input), ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.humaneval_samples import (  # noqa: E402
    build_samples,
    load_problems,
    mutants,
    write_jsonl,
)

KINDS = ("flip-comparison", "off-by-one", "swap-add-sub")
UNNEEDED_PLUGINS = ("cacheprovider", "randomly", "hypothesispytest")
TIMEOUT = 3.0
#: CPU seconds per ground-truth input and per program (ten times the augmentation's caps).
CAPS = (0.1, 5.0)


def run_plugin(work: Path, dataset: Path, samples: Path, augment: bool) -> tuple[float, list[Any]]:
    """One pytest run in a fresh store; its wall seconds and samples-out rows."""
    out = work / ("augmented.jsonl" if augment else "plain.jsonl")
    store = Path(tempfile.mkdtemp(prefix="store-", dir=work))
    disabled = [arg for name in UNNEEDED_PLUGINS for arg in ("-p", f"no:{name}")]
    command = [
        sys.executable, "-m", "pytest", str(dataset), "-q", *disabled,
        "--passk=1", f"--model=replay:{samples}", f"--passk-timeout={TIMEOUT:g}",
        "--passk-workers=2", f"--passk-samples-out={out}", f"--passk-store={store}",
        f"--rootdir={work}", "--passk-extract=none",
        *(["--passk-augment"] if augment else []),
    ]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, cwd=work, check=False, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    shutil.rmtree(store, ignore_errors=True)
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    return seconds, rows


def ground_truth(problem: dict[str, Any], completions: list[str], pool: int) -> list[Any]:
    """For each completion: a witness (arguments, expected, got) where it differs from the
    canonical solution on an input the canonical answers, or ``None``.
    """
    from hypothesis.errors import HypothesisException

    from pytest_passk.augment import generate, seeds_of
    from pytest_passk.errors import TaskFormatError
    from pytest_passk.inputs import auto_strategy, dedupe, draw, seed_of, signature_function
    from pytest_passk.references import Batch, observations
    from pytest_passk.sandbox import plain
    from pytest_passk.sandbox.inside.differ import agree

    entry = problem["entry_point"]
    reference = problem["prompt"] + problem["canonical_solution"]
    seeds = seeds_of(problem["test"], entry)
    function = signature_function(reference, entry)
    inputs = list(seeds) + generate(seeds, function, pool, seed_of("ground:" + problem["task_id"]))
    if function is not None:
        try:
            strategy = auto_strategy(function, problem["task_id"])
            inputs += draw(strategy, 300, seed_of("typed:" + problem["task_id"]), "")
        except (TaskFormatError, HypothesisException, TypeError, ValueError):
            pass
    encoded = []
    for args in dedupe(inputs):
        try:
            encoded.append(plain.encode(list(args), strict=True))
        except plain.EncodeError:
            continue
    (expected,) = observations([Batch(reference, entry, encoded, *CAPS)], 2.0)
    if isinstance(expected, RuntimeError):
        return [None] * len(completions)
    kept = [
        (args, want)
        for args, want in zip(encoded, expected, strict=True)
        if want is not None and "raise" not in want and "drop" not in want
    ]
    compare = {"kind": "exact"}
    witnesses: list[Any] = []
    for completion in completions:
        program = problem["prompt"] + completion
        (got,) = observations([Batch(program, entry, [a for a, _ in kept], *CAPS)], 2.0)
        if isinstance(got, RuntimeError):
            witnesses.append(("does not load", None, None))
            continue
        witness = None
        for (args, want), seen in zip(kept, got, strict=True):
            if seen is None or "drop" in seen:
                continue  # no answer within the caps: no evidence either way
            if agree(seen, want, compare) is not None:
                witness = (args, want, seen)
                break
        witnesses.append(witness)
    return witnesses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=164, help="first N HumanEval tasks (164)")
    parser.add_argument("--pool", type=int, default=1000, help="ground-truth inputs per task")
    parser.add_argument("--skip-timing", action="store_true", help="skip the 164 x 20 timing")
    args = parser.parse_args(argv)
    work = HERE / "out" / "augment"
    work.mkdir(parents=True, exist_ok=True)
    problems = dict(list(load_problems().items())[: args.tasks])
    dataset = work / "HumanEval.jsonl"
    write_jsonl(dataset, problems.values())
    rows = []
    for task_id, problem in problems.items():
        rows.append({"task_id": task_id, "completion": problem["canonical_solution"],
                     "kind": "canonical"})  # fmt: skip
        rows += [
            {"task_id": task_id, "completion": completion, "kind": kind}
            for kind, completion in mutants(problem)
            if kind in KINDS
        ]
    samples = work / "mutants.jsonl"
    write_jsonl(samples, rows)
    seconds, judged = run_plugin(work, dataset, samples, augment=True)
    position: dict[str, int] = {}
    verdicts = []
    for row in rows:
        index = position[row["task_id"]] = position.get(row["task_id"], -1) + 1
        verdicts.append((row, index))
    by_key = {(r["task_id"], r["sample_index"]): r for r in judged}
    canonical_flagged = []
    survivors: list[dict[str, Any]] = []
    for row, index in verdicts:
        result = by_key.get((row["task_id"], index))
        if result is None:
            continue
        if row["kind"] == "canonical":
            if result["outcome"] != "passed":
                canonical_flagged.append((row["task_id"], result["result"]))
            continue
        if result.get("original_outcome", result["outcome"]) == "passed":
            survivors.append({**row, "outcome": result["outcome"], "result": result["result"]})
    print(f"augmented run: {seconds:.1f} s, {len(rows)} samples; {len(survivors)} mutants pass "
          f"the original tests; canonical solutions flagged: {len(canonical_flagged)}")  # fmt: skip
    started = time.perf_counter()
    by_task: dict[str, list[dict[str, Any]]] = {}
    for survivor in survivors:
        by_task.setdefault(survivor["task_id"], []).append(survivor)
    for task_id, group in by_task.items():
        witnesses = ground_truth(problems[task_id], [s["completion"] for s in group], args.pool)
        for survivor, witness in zip(group, witnesses, strict=True):
            survivor["witness"] = witness
    provable = [s for s in survivors if s["witness"] is not None]
    caught = [s for s in provable if s["outcome"] != "passed"]
    flagged_equivalent = [s for s in survivors if s["witness"] is None and s["outcome"] != "passed"]
    rate = len(caught) / len(provable) if provable else float("nan")
    print(f"ground truth ({time.perf_counter() - started:.0f} s): {len(provable)} survivors "
          f"provably wrong; --passk-augment caught {len(caught)} ({rate:.1%}); "
          f"{len(flagged_equivalent)} flagged with no witness in the pool")  # fmt: skip
    by_kind: dict[str, list[int]] = {}
    for s in provable:
        counts = by_kind.setdefault(s["kind"], [0, 0])
        counts[0] += 1
        counts[1] += s["outcome"] != "passed"
    summary: dict[str, Any] = {
        "tasks": len(problems),
        "mutants": len(rows) - len(problems),
        "survivors": len(survivors),
        "provably_wrong": len(provable),
        "caught": len(caught),
        "catch_rate": rate,
        "by_kind": {k: {"provable": v[0], "caught": v[1]} for k, v in sorted(by_kind.items())},
        "canonical_flagged": canonical_flagged,
        "flagged_without_witness": len(flagged_equivalent),
        "missed": [
            {"task_id": s["task_id"], "kind": s["kind"], "witness": s["witness"]}
            for s in provable
            if s["outcome"] == "passed"
        ],
    }
    write_jsonl(work / "survivors.jsonl", survivors)
    if not args.skip_timing:
        synthetic = work / "synthetic.jsonl"
        write_jsonl(synthetic, build_samples(problems, per_task=20, seed=0))
        plain_s, _ = run_plugin(work, dataset, synthetic, augment=False)
        augmented_s, _ = run_plugin(work, dataset, synthetic, augment=True)
        summary["timing"] = {"plain_s": plain_s, "augmented_s": augmented_s,
                             "ratio": augmented_s / plain_s}  # fmt: skip
        print(f"164 x 20 synthetic samples: plain {plain_s:.1f} s, augmented {augmented_s:.1f} s "
              f"({augmented_s / plain_s:.2f}x)")  # fmt: skip
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
