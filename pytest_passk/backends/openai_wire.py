"""What goes over the wire to an OpenAI-compatible server: request bodies, and responses turned
into completions (shared by live requests and the Batch API).

A request for samples ``first`` .. ``first + n - 1`` carries the seed derived from
``(params.seed, first)``. A response's usage is shared out over its choices so that totals stay
exactly what the server reported; a response that reports fewer completion tokens than its choices
must have used is flagged (:data:`USAGE_UNDERCOUNTED`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pytest_passk.backends import (
    USAGE_UNDERCOUNTED,
    Completion,
    GenerationRequest,
    SamplingParams,
)
from pytest_passk.backends.openai_client import OpenAIEndpoint, ServerTarget
from pytest_passk.prompts import CompletionForm

__all__ = [
    "MAX_CHOICES",
    "MAX_STOP_SEQUENCES",
    "USAGE_UNDERCOUNTED",
    "RequestStats",
    "parse_choices",
    "request_body",
    "sample_seed",
]

#: OpenAI's documented ceiling on ``n``; compatible servers that allow fewer say so with fewer
#: choices (topped up) or a 400 (the request is retried one choice at a time).
MAX_CHOICES = 128
#: OpenAI accepts at most four stop sequences; the rest are applied here, to the text.
MAX_STOP_SEQUENCES = 4


@dataclass(slots=True)
class RequestStats:
    """What this backend sent and got, for tests and the run's summary."""

    requests: int = 0
    retried: dict[str, int] = field(default_factory=dict)
    samples: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    undercounted_responses: int = 0

    def summary(self) -> str:
        """One line for the terminal: requests, retries, samples, tokens, undercounts."""
        retries = sum(self.retried.values())
        why = ", ".join(f"{count} {kind}" for kind, count in sorted(self.retried.items()))
        line = (
            f"{self.requests} requests ({retries} retried{': ' + why if why else ''}), "
            f"{self.samples} samples, {self.prompt_tokens} prompt + "
            f"{self.completion_tokens} completion tokens"
        )
        if self.undercounted_responses:
            line += (
                f"; {self.undercounted_responses} responses reported fewer completion tokens "
                "than their choices used"
            )
        return line


def sample_seed(seed: int, first_index: int) -> int:
    """The seed of the request whose first sample is ``first_index`` (stable, < 2**31)."""
    digest = hashlib.sha256(f"{seed}:{first_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def parse_choices(
    response: Any,
    endpoint: OpenAIEndpoint,
    request: GenerationRequest,
    params: SamplingParams,
    first: int,
    n: int,
    *,
    stats: RequestStats,
    latency: float,
    extra: Mapping[str, Any] | None = None,
) -> list[Completion]:
    """A response's choices (at most ``n``) as completions, its usage split so totals stay exact.

    ``response`` is the client's parsed chat completion or completion object.
    """
    chat = endpoint is OpenAIEndpoint.CHAT
    choices = sorted(response.choices or [], key=lambda c: c.index or 0)[:n]
    texts: list[tuple[str, str | None]] = []
    for choice in choices:
        text = (choice.message.content or "") if chat else (choice.text or "")
        finish = choice.finish_reason
        if not chat:
            text, finish = _apply_stops(text, finish, request.prompt.stop)
        texts.append((text, finish))
    usage = getattr(response, "usage", None)
    prompt_total = int(getattr(usage, "prompt_tokens", 0) or 0)
    completion_total = int(getattr(usage, "completion_tokens", 0) or 0)
    stats.prompt_tokens += prompt_total
    stats.completion_tokens += completion_total
    undercounted = usage is None or completion_total < _least_tokens(texts, params.max_tokens)
    if undercounted and texts:
        stats.undercounted_responses += 1
    meta: dict[str, Any] = {
        "response_id": getattr(response, "id", None),
        "served_model": getattr(response, "model", None),
        "seed": sample_seed(params.seed, first),
        "choices": len(texts),
        **(extra or {}),
    }
    fingerprint = getattr(response, "system_fingerprint", None)
    if fingerprint:
        meta["system_fingerprint"] = fingerprint
    if undercounted:
        meta[USAGE_UNDERCOUNTED] = True
    prompt_shares = _split(prompt_total, len(texts))
    completion_shares = _split(completion_total, len(texts))
    form = CompletionForm.CHAT if chat else CompletionForm.CONTINUATION
    return [
        Completion(
            text=text,
            form=form,
            prompt_tokens=prompt_shares[i],
            completion_tokens=completion_shares[i],
            finish_reason=finish,
            latency=latency,
            metadata=meta,
        )
        for i, (text, finish) in enumerate(texts)
    ]


def request_body(
    target: ServerTarget, request: GenerationRequest, params: SamplingParams, first: int, n: int
) -> dict[str, Any]:
    """The JSON body asking for samples ``first`` .. ``first + n - 1`` of ``request``."""
    prompt = request.prompt
    body: dict[str, Any] = {
        "model": target.model,
        "n": n,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_tokens,
        "seed": sample_seed(params.seed, first),
    }
    if prompt.stop:
        body["stop"] = list(prompt.stop[:MAX_STOP_SEQUENCES])
    if target.endpoint is OpenAIEndpoint.COMPLETIONS:
        body["prompt"] = prompt.text
    else:
        messages = [{"role": role, "content": content} for role, content in prompt.messages]
        body["messages"] = messages or [{"role": "user", "content": prompt.text}]
    return body


def _least_tokens(texts: Sequence[tuple[str, str | None]], max_tokens: int) -> int:
    """A lower bound of the completion tokens these choices used: a choice cut at the length
    limit used ``max_tokens``, any other non-empty choice at least one.
    """
    return sum(max_tokens if finish == "length" else int(bool(text)) for text, finish in texts)


def _split(total: int, parts: int) -> list[int]:
    """``total`` shared out over ``parts`` as evenly as integers allow (the sum is ``total``)."""
    if parts <= 0:
        return []
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _apply_stops(text: str, finish: str | None, stops: Sequence[str]) -> tuple[str, str | None]:
    """Cut ``text`` at the first stop sequence the server was not sent."""
    cuts = [text.find(stop) for stop in stops[MAX_STOP_SEQUENCES:] if stop in text]
    if not cuts:
        return text, finish
    return text[: min(cuts)], "stop"
