"""Raw vLLM against the plugin's generation phase: tokens/s on the same prompts, n and lengths.

    .venv/bin/python benchmarks/generation_vllm.py [--device cpu|cuda] [--shape tiny|8b]
        [--tasks 8] [--n 16] [--max-tokens 128] [--rounds 2] [--out benchmarks/out/gen.json]

One engine serves both sides, so they differ only in how they drive it:

- raw: ``LLM.generate(prompts, SamplingParams(n=N, ...))``, vLLM's own batch API;
- plugin: :class:`~pytest_passk.store.sampler.Sampler` over the vLLM backend and a fresh sample
  store, i.e. one seeded engine request per sample index, each sample written to the store as
  it finishes (what a run does when its samples are missing).

The model is built here, never downloaded: ``tiny`` is the test suite's random-weight
Llama-3.1-shaped model; ``8b`` has Llama-3.1-8B's layer shapes (random weights made by vLLM,
``load_format=dummy``; its vocabulary is the tiny tokenizer's) and is for GPUs. Rounds alternate
raw and plugin and keep each side's best. Exits 1 when the plugin reaches less than 90% of raw.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pytest_passk.backends import GenerationRequest, SamplingParams
from pytest_passk.backends.vllm import VllmBackend
from pytest_passk.backends.vllm_checks import ModelSource
from pytest_passk.prompts import PromptStyle, RenderedPrompt
from pytest_passk.store import SampleStore
from pytest_passk.store.sampler import Sampler

GOAL = 0.9
LLAMA_8B_SHAPE = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "max_position_embeddings": 8192,
}


def build_model(shape: str, root: Path) -> tuple[Path, dict[str, Any]]:
    """The model folder and the engine arguments it needs."""
    # The test suite's model builder, from the repository root (this script may run as a file).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.tiny_llama import build_tiny_llama

    folder = build_tiny_llama(root / "tiny-llama", chat_template=False)
    if shape == "tiny":
        return folder, {}
    big = root / "llama-8b-shaped"
    shutil.copytree(folder, big, dirs_exist_ok=True)
    (big / "model.safetensors").unlink()
    config = json.loads((big / "config.json").read_text())
    config.update(LLAMA_8B_SHAPE)
    (big / "config.json").write_text(json.dumps(config))
    return big, {"load_format": "dummy"}


def prompts(tasks: int) -> list[RenderedPrompt]:
    return [
        RenderedPrompt(
            PromptStyle.COMPLETION,
            f'def task_{i}(values):\n    """Return the {i}th running total of values."""\n',
            (),
            (),
        )
        for i in range(tasks)
    ]


def raw_round(backend: VllmBackend, texts: list[str], n: int, params: SamplingParams) -> float:
    from vllm import SamplingParams as VllmParams

    llm = backend._llm
    sampling = VllmParams(
        n=n, temperature=params.temperature, top_p=params.top_p, max_tokens=params.max_tokens
    )
    started = time.perf_counter()
    outputs = llm.generate(texts, sampling, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(c.token_ids) for output in outputs for c in output.outputs)
    assert sum(len(output.outputs) for output in outputs) == n * len(texts)
    return tokens / seconds


def plugin_round(
    backend: VllmBackend, rendered: list[RenderedPrompt], n: int, params: SamplingParams
) -> float:
    store_dir = Path(tempfile.mkdtemp(prefix="passk-bench-store-"))
    try:
        sampler = Sampler(backend, params, "bench", store=SampleStore(store_dir))
        requests = [GenerationRequest(f"t/{i}", p, n) for i, p in enumerate(rendered)]
        before = backend.stats
        started = time.perf_counter()
        batches = sampler.draw(requests)
        seconds = time.perf_counter() - started
        assert [len(b) for b in batches] == [n] * len(requests)
        return (backend.stats.completion_tokens - before.completion_tokens) / seconds
    finally:
        shutil.rmtree(store_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--shape", choices=("tiny", "8b"), default="tiny")
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)

    root = Path(tempfile.mkdtemp(prefix="passk-bench-model-"))
    try:
        folder, engine_args = build_model(args.shape, root)
        backend = VllmBackend(
            str(folder),
            ModelSource(str(folder), folder),
            device=args.device,
            engine_args=engine_args,
        )
        params = SamplingParams(temperature=0.8, top_p=0.95, max_tokens=args.max_tokens, seed=0)
        rendered = prompts(args.tasks)
        started = time.perf_counter()
        # Start the engine (and warm it up) outside the measured rounds.
        backend.generate([GenerationRequest("warm", rendered[0], 2)], params)
        load = time.perf_counter() - started
        raw: list[float] = []
        plugin: list[float] = []
        for round_ in range(args.rounds):
            # Each round draws new samples (a new seed), so the store never serves any.
            params = SamplingParams(0.8, 0.95, args.max_tokens, seed=round_ + 1)
            raw.append(raw_round(backend, [p.text for p in rendered], args.n, params))
            plugin.append(plugin_round(backend, rendered, args.n, params))
        backend.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    ratio = max(plugin) / max(raw)
    result = {
        "device": args.device,
        "shape": args.shape,
        "tasks": args.tasks,
        "n": args.n,
        "max_tokens": args.max_tokens,
        "engine_start_s": round(load, 1),
        "raw_tokens_per_s": [round(x, 1) for x in raw],
        "plugin_tokens_per_s": [round(x, 1) for x in plugin],
        "ratio": round(ratio, 3),
    }
    print(
        f"engine start {load:.1f} s; raw vLLM {max(raw):.0f} tokens/s, plugin {max(plugin):.0f} "
        f"tokens/s: {ratio:.1%} of raw (goal {GOAL:.0%}) "
        f"[{args.device}, {args.shape}, {args.tasks} tasks x n={args.n}, "
        f"max_tokens={args.max_tokens}]"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if ratio >= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
