from __future__ import annotations

import pytest

from pytest_passk.backends import Completion
from pytest_passk.pricing import (
    BAD_PRICE_LINE,
    BUILTIN_PRICES,
    DEFAULT_CPU_HOUR_USD,
    DEFAULT_GPU_HOUR_USD,
    HourPrices,
    Price,
    PriceError,
    PriceTable,
    cost_per_sample,
    cost_per_solved_task,
    cost_usd,
    engine_metadata,
    parse_prices,
)
from pytest_passk.prompts import CompletionForm


def test_builtin_prices_of_the_aliases() -> None:
    assert BUILTIN_PRICES["gpt-4o"] == Price(2.50, 10.00)
    assert BUILTIN_PRICES["gpt-4o-mini"] == Price(0.15, 0.60)
    # 1M prompt tokens and 1M completion tokens of gpt-4o.
    assert cost_usd("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.50)
    assert cost_usd("openai:gpt-4o-mini", 2_000, 500) == pytest.approx(
        (2_000 * 0.15 + 500 * 0.60) / 1e6
    )


def test_the_batch_api_costs_half() -> None:
    full = cost_usd("gpt-4o", 1234, 5678)
    assert full is not None
    assert cost_usd("gpt-4o", 1234, 5678, batch=True) == pytest.approx(full / 2)


def test_an_unknown_price_is_none_never_zero() -> None:
    assert cost_usd("openai:my-local-model", 100, 100) is None
    assert cost_usd("vllm:meta-llama/Llama-3.1-8B-Instruct", 0, 0) is None
    # A known model with no tokens did cost nothing.
    assert cost_usd("gpt-4o", 0, 0) == 0.0


def test_ini_lines_override_and_extend_the_table() -> None:
    lines = ["# per 1M tokens", "", "gpt-4o = 5 15", "openai:local = $0.10, 0.20"]
    prices = parse_prices(lines)
    assert prices == {"gpt-4o": Price(5.0, 15.0), "openai:local": Price(0.10, 0.20)}
    table = PriceTable.with_overrides(prices)
    assert table.cost_usd("openai:gpt-4o", 1_000_000, 0) == pytest.approx(5.0)
    assert table.cost_usd("openai:local", 0, 1_000_000) == pytest.approx(0.20)
    assert table.cost_usd("gpt-4o-mini", 1_000_000, 0) == pytest.approx(0.15)
    assert cost_usd("local", 10, 10, prices={"local": Price(1, 1)}) == pytest.approx(2e-5)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("gpt-4o 2.5 10", "no 'MODEL ='"),
        ("gpt-4o = 2.5", "expected two prices"),
        ("gpt-4o = cheap 10", "a price is not a number"),
        ("gpt-4o = -1 10", "prices must be >= 0"),
        ("gpt-4o = nan 10", "prices must be >= 0"),
    ],
)
def test_a_bad_line_names_where_what_and_how(line: str, problem: str) -> None:
    with pytest.raises(PriceError) as failure:
        parse_prices(["gpt-4o-mini = 0.15 0.60", line])
    assert str(failure.value) == BAD_PRICE_LINE.format(
        where="ini passk_prices line 2", problem=problem, line=line
    )


def test_cost_of_samples_counts_batch_samples_at_half() -> None:
    live = Completion("x", CompletionForm.CHAT, prompt_tokens=1000, completion_tokens=2000)
    batch = Completion(
        "x",
        CompletionForm.CHAT,
        prompt_tokens=1000,
        completion_tokens=2000,
        metadata={"batch": True},
    )
    table = PriceTable.with_overrides({})
    one = (1000 * 2.50 + 2000 * 10.00) / 1e6
    assert table.samples_cost("openai:gpt-4o", [live, batch]) == pytest.approx(one * 1.5)
    assert table.samples_cost("openai:unpriced", [live]) is None
    assert table.samples_cost("gpt-4o", []) == 0.0


def test_cost_per_solved_task() -> None:
    assert cost_per_solved_task(1.5, 3) == pytest.approx(0.5)
    assert cost_per_solved_task(1.5, 0) is None
    assert cost_per_solved_task(None, 3) is None


def engine_sample(device: str, devices: int, seconds: float, tokens: int = 50) -> Completion:
    metadata = {"seed": 1} | engine_metadata(device, devices, seconds)
    return Completion("x", CompletionForm.CHAT, 0, tokens, metadata=metadata)


def test_local_samples_cost_their_engine_time_at_the_hourly_prices() -> None:
    table = PriceTable.with_overrides({}, HourPrices(gpu=3.60, cpu=0.036))
    # 2 GPUs (tensor parallel) for 0.5 s and 1.5 s: 4 GPU-seconds at $3.60/h = $0.004.
    gpu = [engine_sample("cuda", 2, 0.5), engine_sample("cuda", 2, 1.5)]
    assert table.samples_cost("vllm:meta-llama/Llama-3.1-8B-Instruct", gpu) == pytest.approx(0.004)
    # 8 CPUs for 10 s: 80 CPU-seconds at $0.036/h = $0.0008.
    cpu = [engine_sample("cpu", 8, 10.0)]
    assert table.samples_cost("vllm-cpu:HuggingFaceTB/SmolLM2-135M-Instruct", cpu) == (
        pytest.approx(0.0008)
    )


def test_the_default_hour_prices() -> None:
    assert HourPrices() == HourPrices(DEFAULT_GPU_HOUR_USD, DEFAULT_CPU_HOUR_USD)
    assert HourPrices().cost("cuda", 1, 3600) == DEFAULT_GPU_HOUR_USD
    assert HourPrices().cost("cpu", 4, 900) == pytest.approx(DEFAULT_CPU_HOUR_USD)


def test_a_token_price_wins_over_engine_time() -> None:
    table = PriceTable.with_overrides({"llama": Price(0.0, 1.0)})
    samples = [engine_sample("cuda", 1, 100.0, tokens=1_000_000)]
    assert table.samples_cost("vllm:llama", samples) == pytest.approx(1.0)


def test_a_sample_without_tokens_or_engine_time_is_unknown_never_free() -> None:
    recorded = Completion("x", CompletionForm.CONTINUATION, finish_reason="recorded")
    priced = Completion("x", CompletionForm.CONTINUATION, 100, 10, finish_reason="recorded")
    table = PriceTable.with_overrides({})
    # A recording is priced by the label the user gave it (the model that was recorded).
    assert table.samples_cost("replay:gpt4o.jsonl", [priced], label="gpt-4o") == pytest.approx(
        (100 * 2.50 + 10 * 10.00) / 1e6
    )
    assert table.samples_cost("replay:gpt4o.jsonl", [priced, recorded], label="gpt-4o") is None
    assert table.samples_cost("replay:gpt4o.jsonl", [priced]) is None
    broken = Completion("x", CompletionForm.CHAT, metadata={"device": "cuda", "engine_seconds": -1})
    assert table.samples_cost("vllm:m", [broken]) is None


def test_cost_per_sample() -> None:
    assert cost_per_sample(0.5, 10) == pytest.approx(0.05)
    assert cost_per_sample(None, 10) is None
    assert cost_per_sample(0.5, 0) is None
