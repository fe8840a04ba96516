"""Store overhead per sample (write and read) for 100,000 samples, against execution per sample.

    .venv/bin/python benchmarks/store.py [--tasks 1000] [--n 100] [--out benchmarks/out/store.json]

Writes go through the real path (Sampler -> backend sink -> one checksummed JSONL append each);
reads are a second draw served entirely from the store; the verdict cache is measured the same way
(put, then get from a fresh cache object). Execution per sample is measured with the process
executor on trivial HumanEval-like candidates (one worker), the cheapest real execution there is.
Exits 1 when the store's overhead per sample reaches 5% of the execution time per sample.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pytest_passk.backends import Completion, GenerationRequest, SampleSink, SamplingParams
from pytest_passk.prompts import COMPLETION_STOP, CompletionForm, PromptStyle, RenderedPrompt
from pytest_passk.results import Outcome
from pytest_passk.sandbox import ExecutorStats, Job, Verdict
from pytest_passk.sandbox.cache import CachingExecutor, VerdictCache
from pytest_passk.sandbox.pool import PoolExecutor
from pytest_passk.store import SampleStore
from pytest_passk.store.sampler import Sampler
from pytest_passk.tasks import CheckTest

BODY = "    result = []\n    for value in values:\n        if value % 2 == 0:\n" * 4
CHECK = CheckTest("def check(candidate):\n    assert candidate(2, 3) == 5\n")


class InstantBackend:
    """Hands over ~400-character samples as fast as Python can build them."""

    @property
    def model(self) -> str:
        return "bench"

    @property
    def prompt_style(self) -> PromptStyle:
        return PromptStyle.COMPLETION

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        batches = []
        for position, request in enumerate(requests):
            batch = []
            for index in range(request.start, request.start + request.n):
                completion = Completion(
                    f"{BODY}    return {index}\n", CompletionForm.CONTINUATION, 120, 90, "stop", 0.5
                )
                if sink is not None:
                    sink(position, index, completion)
                batch.append(completion)
            batches.append(batch)
        return batches

    def close(self) -> None:
        pass


class NullExecutor:
    @property
    def isolation(self) -> str:
        return "none"

    def run(self, jobs: Sequence[Job], progress: object = None) -> list[Verdict]:
        return [Verdict(Outcome.PASSED, "", "", 0.01) for _ in jobs]

    def prefetch(self, jobs: Sequence[Job]) -> None:
        pass

    @property
    def stats(self) -> ExecutorStats:
        return ExecutorStats()

    def close(self) -> None:
        pass


def measure_store(root: Path, tasks: int, n: int) -> dict[str, float]:
    requests = [
        GenerationRequest(
            f"Bench/{t}",
            RenderedPrompt(PromptStyle.COMPLETION, f"def f{t}(values):\n", (), COMPLETION_STOP),
            n,
        )
        for t in range(tasks)
    ]
    total = tasks * n
    store = SampleStore(root)
    writer = Sampler(InstantBackend(), SamplingParams(), "bench", store=store)
    started = time.perf_counter()
    writer.draw(requests, extract=lambda r, c: r.prompt.text + c.text)
    write = time.perf_counter() - started
    backend_only = time.perf_counter()
    InstantBackend().generate(requests, SamplingParams())
    backend_only = time.perf_counter() - backend_only
    reader = Sampler(InstantBackend(), SamplingParams(), "bench", store=store)
    started = time.perf_counter()
    reader.draw(requests)
    read = time.perf_counter() - started
    assert writer.drawn == total and reader.reused == total and reader.drawn == 0

    jobs = [
        Job(f"def add(a, b):\n    return a + b  # {i}\n", CHECK, "add", 5.0) for i in range(total)
    ]
    started = time.perf_counter()
    CachingExecutor(NullExecutor(), VerdictCache(root)).run(jobs)
    verdict_write = time.perf_counter() - started
    cached = CachingExecutor(NullExecutor(), VerdictCache(root))
    started = time.perf_counter()
    cached.run(jobs)
    verdict_read = time.perf_counter() - started
    assert cached.reused == total
    return {
        "samples": total,
        "write_us": (write - backend_only) / total * 1e6,
        "read_us": read / total * 1e6,
        "verdict_write_us": verdict_write / total * 1e6,
        "verdict_read_us": verdict_read / total * 1e6,
        "bytes_per_sample": sum(p.stat().st_size for p in (root / "samples").rglob("*.jsonl"))
        / total,
    }


def measure_execution(count: int) -> float:
    jobs = [
        Job(f"def add(a, b):\n    return a + b + {i} - {i}\n", CHECK, "add", 5.0)
        for i in range(count)
    ]
    executor = PoolExecutor(1)
    try:
        executor.run(jobs[:2])  # warm the page cache
        started = time.perf_counter()
        verdicts = executor.run(jobs)
        elapsed = time.perf_counter() - started
    finally:
        executor.close()
    assert all(v.outcome is Outcome.PASSED for v in verdicts), verdicts[:1]
    return elapsed / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--executions", type=int, default=60)
    parser.add_argument("--out", default="benchmarks/out/store.json")
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # The store on the same file system as the results, as a real .passk/ would be.
    root = Path(tempfile.mkdtemp(prefix="store-bench-", dir=out.parent))
    try:
        result = measure_store(root, args.tasks, args.n)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    result["execution_us"] = measure_execution(args.executions)
    overhead = result["write_us"] + result["read_us"] + result["verdict_write_us"]
    overhead += result["verdict_read_us"]
    result["overhead_fraction"] = overhead / result["execution_us"]
    out.write_text(json.dumps(result, indent=2) + "\n")
    for name, value in result.items():
        print(f"{name:>20}: {value:,.3f}")
    ok = result["overhead_fraction"] < 0.05
    print("store overhead per sample is", "below" if ok else "NOT below", "5% of execution")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
