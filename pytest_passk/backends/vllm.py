"""The ``vllm:`` (NVIDIA GPUs) and ``vllm-cpu:`` backends: vLLM's offline engine in this process.

One engine per backend, started on the first :meth:`VllmBackend.generate` (a run whose samples are
all in the store never loads the model) and shut down by :meth:`VllmBackend.close`. Every request
of a call goes to the engine at once, one engine request per sample index with its own seed
(derived from the run seed and the index only, so sample ``i`` is the same whatever ``n``, ``start``
or other tasks a run asks for; vLLM itself fans ``n > 1`` out into such single-sample requests, and
prefix caching computes each prompt once). The engine is stepped here rather than through
``LLM.generate``, whose loop it mirrors, so each sample reaches the sink the moment it finishes.

vLLM and torch are imported only when the engine starts.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pytest_passk.backends import (
    Backend,
    BackendContext,
    Completion,
    GenerationRequest,
    ModelSpec,
    SampleSink,
    SamplingParams,
    smollm2,
)
from pytest_passk.backends.vllm_checks import (
    DTYPE_ENV,
    GPU_MEMORY_UTILIZATION,
    ModelSource,
    check_model,
    engine_dtype,
    fetch_config,
    model_max_len,
    prompt_style_of,
)
from pytest_passk.backends.vllm_process import (
    ENGINE_FAILED,
    LOG_NAME,
    SHUTDOWN_SECONDS,
    GeneratedTokens,
    InterruptWatch,
    cpu_dtype,
    cpu_environment,
    engine_children,
    log_tail,
    one_line,
    reap,
    refused,
    release_cuda,
    start_engine,
    usable_log,
)
from pytest_passk.backends.vllm_stats import EngineStats, add_stats
from pytest_passk.errors import BackendError, PassKError
from pytest_passk.pricing import engine_metadata
from pytest_passk.prompts import CompletionForm, PromptStyle, RenderedPrompt

__all__ = [
    "DTYPE_ENV",
    "ENGINE_FAILED",
    "EngineStats",
    "VllmBackend",
    "build_cpu_model",
    "build_cuda_model",
    "sample_seed",
]

ENGINE_DIED = "the vLLM engine failed while generating: {error}{log}"
LOADING = "passk: loading {model} into vLLM ({device}){log}"
LOADED = "passk: {model} loaded in {seconds:.0f} s"
#: Samples finished, and the tokens generated per second since the call's batch was queued.
GENERATING = "passk: {model}: {done}/{total} samples, {rate:.0f} tokens/s, {seconds:.0f} s"
#: The context length asked of the engine when the model allows more: long enough for a prompt
#: and a long answer, small enough that the KV cache of one sequence fits beside 8B weights.
DEFAULT_MAX_MODEL_LEN = 8192
#: Seconds between two progress lines while generating.
REPORT_EVERY = 5.0
#: vLLM logging levels that keep the engine's output in its log file, off the terminal.
QUIET_LEVELS = frozenset({"ERROR", "CRITICAL"})
#: Environment variable that, when set, names a file each engine start appends a line to (tests
#: count model loads with it).
ENGINE_LOG_ENV = "PASSK_VLLM_ENGINE_LOG"


def sample_seed(seed: int, index: int) -> int:
    """Sample ``index``'s seed under the run seed ``seed`` (63 bits, stable across runs)."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ((1 << 63) - 1)


class VllmBackend:
    """Samples from a model through vLLM's offline engine, on NVIDIA GPUs or on the CPU."""

    def __init__(
        self,
        model_id: str,
        source: ModelSource,
        *,
        device: str,
        tensor_parallel: int = 1,
        prompt_style: PromptStyle | None = None,
        progress: Callable[[str], None] | None = None,
        engine_args: dict[str, Any] | None = None,
        log: Path | None = None,
    ) -> None:
        """``device`` is ``"cuda"`` or ``"cpu"``; ``engine_args`` go to ``vllm.LLM`` as they are;
        the engine's processes write their standard error to ``log`` (``None``: to this one's).
        """
        self._model_id = model_id
        self._source = source
        self._device = device
        self._tensor_parallel = tensor_parallel
        self._style = prompt_style or prompt_style_of(source)
        self._engine_args = dict(engine_args or {})
        self._log = log
        #: The log the running engine writes to (None: the terminal).
        self._running_log: Path | None = None
        #: Called with progress lines (model loading, samples done, tokens/s); rate-limit it.
        self.progress = progress
        self._llm: Any = None
        self._tokenizer: Any = None
        self._stats = EngineStats(device=device)
        self._lock = threading.Lock()
        self._requests = 0
        #: The engine's own processes (its engine core), to reap once it is shut down.
        self._children: set[int] = set()
        self._last_report = 0.0
        self._generated: GeneratedTokens | None = None

    @property
    def model(self) -> str:
        """The model the samples come from: its hub id, or its folder's absolute path."""
        return self._model_id

    @property
    def prompt_style(self) -> PromptStyle:
        """Chat for models whose tokenizer has a chat template, else completion."""
        return self._style

    @property
    def stats(self) -> EngineStats:
        """Engine starts, seconds and tokens so far."""
        return self._stats

    @property
    def loaded(self) -> bool:
        """Whether the engine is running."""
        return self._llm is not None

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None = None,
    ) -> list[list[Completion]]:
        """``request.n`` samples per request, from one batch of single-sample engine requests."""
        if not any(request.n for request in requests):
            return [[] for _ in requests]
        with self._lock:
            # The engine, never the LLM object, travels down the stack: see start_engine.
            engine = self._engine(params, requests).llm_engine
            return self._run(engine, requests, params, sink)

    def close(self) -> None:
        """Shut the engine (and its worker processes) down; release its memory."""
        with self._lock:
            llm, self._llm, self._tokenizer = self._llm, None, None
            if llm is None:
                return
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            if core is not None:
                # There is no LLM.shutdown(); this stops the engine process and its workers
                # (SIGTERM, then SIGKILL after the timeout). Where it fails (an engine that
                # died first), the reap below ends by PID whatever it left.
                with contextlib.suppress(Exception):
                    core.shutdown(timeout=SHUTDOWN_SECONDS)
            del llm, engine, core
            gc.collect()
            if self._device == "cuda":
                release_cuda()
            reap(self._children)
            self._children = set()

    # -- the engine ----------------------------------------------------------------------------

    def _engine(self, params: SamplingParams, requests: Sequence[GenerationRequest]) -> Any:
        if self._llm is not None:
            return self._llm
        path = self._source.path
        if self._source.from_gguf:
            assert path is not None  # a GGUF source always names its folder
            smollm2.convert(path, self._say)
        # Set before vLLM is imported and its engine process starts: both read them then.
        # vLLM's INFO and WARNING lines (dozens per start, and warnings about settings the plugin
        # chose on purpose) would bury pytest's output; a user who asks for more than errors
        # sees them on the terminal instead of in the log file. (ERROR itself may be this
        # plugin's own default, inherited from an earlier engine start in a parent process.)
        level = os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
        log = usable_log(self._log) if level.upper() in QUIET_LEVELS else None
        if log is not None:
            # vLLM logs to stdout by default: the engine's traceback after a Ctrl-C reached it.
            os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        if self._device == "cpu":
            cpu_environment()
        where = f"; its log: {log}" if log is not None else ""
        self._say(LOADING.format(model=self._model_id, device=self._device, log=where))
        started = time.monotonic()
        before = engine_children(set())
        args: dict[str, Any] = {
            "model": str(path) if path is not None else self._model_id,
            "seed": params.seed,
            "enable_prefix_caching": True,
            "tensor_parallel_size": self._tensor_parallel,
            "disable_log_stats": True,
        }
        if self._device == "cuda":
            args["gpu_memory_utilization"] = GPU_MEMORY_UTILIZATION
        if path is not None:
            args["served_model_name"] = self._model_id
        needed = max(_rough_tokens(r.prompt) for r in requests) + params.max_tokens
        # A hub model not downloaded yet: its config tells its context length (Llama 3.1's 131,072
        # tokens would need 16 GiB of KV cache for one sequence: more than a 24 GB GPU has left).
        max_len = model_max_len(path if path is not None else fetch_config(self._model_id))
        if max_len is not None:
            args["max_model_len"] = min(max_len, max(DEFAULT_MAX_MODEL_LEN, needed))
        if self._device == "cpu":
            # vLLM 0.32's CPU worker crashes ("CPU Generator does not use offset") when a seeded
            # request's prompt is prefilled in chunks, which big batches cause: prefill whole.
            args.setdefault("max_model_len", max(DEFAULT_MAX_MODEL_LEN, needed))
            args["enable_chunked_prefill"] = False
            args["max_num_batched_tokens"] = args["max_model_len"]
        dtype = engine_dtype() or (cpu_dtype() if self._device == "cpu" else None)
        if dtype:  # else vLLM's own choice, the model's dtype
            args["dtype"] = dtype
        args.update(self._engine_args)
        self._llm = start_engine(args, log)
        self._children = engine_children(before)
        self._generated = GeneratedTokens(self._llm.llm_engine)
        self._running_log = log
        self._tokenizer = self._llm.get_tokenizer()
        seconds = time.monotonic() - started
        self._stats = add_stats(self._stats, starts=1, load_seconds=seconds)
        _log_start(self._model_id)
        self._say(LOADED.format(model=self._model_id, seconds=seconds))
        return self._llm

    def _prompt_ids(self, prompt: RenderedPrompt) -> list[int]:
        tokenizer = self._tokenizer
        if prompt.style is PromptStyle.CHAT:
            messages = [{"role": role, "content": content} for role, content in prompt.messages]
            text = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            # The template writes the special tokens (BOS included) itself.
            return list(tokenizer.encode(text, add_special_tokens=False))
        return list(tokenizer.encode(prompt.text))

    def _run(
        self,
        engine: Any,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        sink: SampleSink | None,
    ) -> list[list[Completion]]:
        results: list[list[Completion | None]] = [[None] * r.n for r in requests]
        where: dict[str, tuple[int, int]] = {}
        total = sum(r.n for r in requests)
        started = now = time.monotonic()
        done = prompt_tokens = completion_tokens = 0
        generated_before = self._generated.count if self._generated is not None else 0
        # The requests whose first sample carries its prompt's tokens: one per distinct prompt
        # (a resumed run splits a task's missing indices into several requests of one prompt).
        first: dict[RenderedPrompt, int] = {}
        for position, request in enumerate(requests):
            if request.n:
                first.setdefault(request.prompt, position)
        counts_prompt = set(first.values())
        # The caller's own error (the store refusing a sample) is not the engine's: it propagates
        # as it is, after the queue is dropped.
        from_sink: BaseException | None = None
        with InterruptWatch() as interrupt:
            try:
                self._submit(engine, requests, params, where)
                while engine.has_unfinished_requests():
                    # Long before the first sample finishes (all of them run at once), say so.
                    self._report(done, total, completion_tokens, generated_before, started)
                    outputs = engine.step()
                    # A Ctrl-C now waits until the samples this step finished are stored.
                    with interrupt.holding():
                        for output in outputs:
                            if not output.finished or output.request_id not in where:
                                continue
                            position, offset = where.pop(output.request_id)
                            request = requests[position]
                            sample = output.outputs[0]
                            # The prompt is counted once: on its first request's first sample.
                            counted = offset == 0 and position in counts_prompt
                            prompt_count = len(output.prompt_token_ids or ()) if counted else 0
                            tokens = len(sample.token_ids)
                            # The engine's seconds since the last sample finished: summed over a
                            # call, its generation time, which prices local samples (pricing.py).
                            now, last = time.monotonic(), now
                            timing = engine_metadata(self._device, self._devices(), now - last)
                            completion = Completion(
                                text=sample.text,
                                form=_form(request.prompt),
                                prompt_tokens=prompt_count,
                                completion_tokens=tokens,
                                finish_reason=sample.finish_reason,
                                latency=time.monotonic() - started,
                                metadata={"seed": sample_seed(params.seed, request.start + offset)}
                                | timing,
                            )
                            results[position][offset] = completion
                            done += 1
                            prompt_tokens += prompt_count
                            completion_tokens += tokens
                            if sink is not None:
                                try:
                                    sink(position, request.start + offset, completion)
                                except BaseException as exc:
                                    from_sink = exc
                                    raise
                            self._report(done, total, completion_tokens, generated_before, started)
            except BaseException as exc:
                # A refused request, a sink error, an interrupt or a dead engine: drop what is still
                # queued, so the engine is idle for the next call.
                if where:
                    with contextlib.suppress(Exception):  # a dead engine cannot abort
                        engine.abort_request(list(where))
                if (
                    exc is from_sink
                    or isinstance(exc, PassKError)
                    or not isinstance(exc, Exception)
                ):
                    raise
                if interrupt.seen:  # the engine stopped on the user's Ctrl-C
                    raise KeyboardInterrupt from exc
                if refused(exc):  # vLLM's refusal of a request (a prompt too long)
                    raise BackendError(f"vLLM refused a request: {one_line(exc)}") from exc
                error = ENGINE_DIED.format(error=one_line(exc), log=log_tail(self._running_log))
                raise BackendError(error) from exc
            finally:
                seconds = time.monotonic() - started
                self._stats = add_stats(
                    self._stats,
                    generate_seconds=seconds,
                    device_seconds=seconds
                    * (self._tensor_parallel if self._device == "cuda" else 1),
                    samples=done,
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
        missing = [r.task_id for r, got in zip(requests, results, strict=True) if None in got]
        if missing:
            raise BackendError(f"vLLM finished without samples for {', '.join(missing)}")
        return [[c for c in got if c is not None] for got in results]

    def _devices(self) -> int:
        """GPUs (tensor parallel) or CPUs the engine occupies, for pricing its time."""
        if self._device == "cuda":
            return self._tensor_parallel
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

    def _submit(
        self,
        engine: Any,
        requests: Sequence[GenerationRequest],
        params: SamplingParams,
        where: dict[str, tuple[int, int]],
    ) -> None:
        """Queue one engine request per sample index; ``where`` maps their ids to positions."""
        from vllm import SamplingParams as VllmParams
        from vllm.sampling_params import RequestOutputKind

        prompt_ids: dict[RenderedPrompt, list[int]] = {}
        for position, request in enumerate(requests):
            ids = prompt_ids.get(request.prompt)
            if ids is None:
                ids = prompt_ids[request.prompt] = self._prompt_ids(request.prompt)
            for offset in range(request.n):
                index = request.start + offset
                self._requests += 1
                request_id = f"passk-{self._requests}"
                where[request_id] = (position, offset)
                sampling = VllmParams(
                    n=1,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_tokens,
                    seed=sample_seed(params.seed, index),
                    stop=list(request.prompt.stop) or None,
                    # As LLM.generate does: one output per finished sample, none per step.
                    output_kind=RequestOutputKind.FINAL_ONLY,
                )
                engine.add_request(request_id, {"prompt_token_ids": ids}, sampling)

    def _report(
        self, done: int, total: int, finished_tokens: int, generated_before: int, started: float
    ) -> None:
        now = time.monotonic()
        if self.progress is None or (done < total and now - self._last_report < REPORT_EVERY):
            return
        if self._last_report < started:  # the first line of a call comes after one interval
            self._last_report = started
            return
        self._last_report = now
        counter = self._generated
        if counter is not None and counter.available:
            tokens = counter.count - generated_before
        else:  # only what finished samples hold: an undercount until the batch ends
            tokens = finished_tokens
        seconds = max(now - started, 1e-9)
        self.progress(
            GENERATING.format(
                model=self._model_id, done=done, total=total, rate=tokens / seconds, seconds=seconds
            )
        )

    def _say(self, text: str) -> None:
        if self.progress is not None:
            self.progress(text)


def _form(prompt: RenderedPrompt) -> CompletionForm:
    return CompletionForm.CHAT if prompt.style is PromptStyle.CHAT else CompletionForm.CONTINUATION


def _rough_tokens(prompt: RenderedPrompt) -> int:
    """An upper bound of a prompt's tokens before the tokenizer is loaded (a token >= 1 byte)."""
    text = prompt.text + "".join(content for _, content in prompt.messages)
    return len(text.encode()) + 64


def _log_start(model: str) -> None:
    log = os.environ.get(ENGINE_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as file:
            file.write(f"{os.getpid()} {model}\n")


def build_cuda_model(model: ModelSpec, context: BackendContext) -> Backend:
    """A ``vllm:`` backend; its engine starts on the first ``generate``."""
    return _build(model, context, "cuda")


def build_cpu_model(model: ModelSpec, context: BackendContext) -> Backend:
    """A ``vllm-cpu:`` backend; its engine starts on the first ``generate``."""
    return _build(model, context, "cpu")


def _build(model: ModelSpec, context: BackendContext, device: str) -> Backend:
    source, tensor_parallel = check_model(model, context, device)
    return VllmBackend(
        source.name,
        source,
        device=device,
        tensor_parallel=tensor_parallel,
        log=context.store_dir / "logs" / LOG_NAME if context.store_dir is not None else None,
    )
