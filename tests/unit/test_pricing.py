from __future__ import annotations

import pytest

from pytest_passk.backends import Completion
from pytest_passk.pricing import (
    BAD_PRICE_LINE,
    BUILTIN_PRICES,
    Price,
    PriceError,
    PriceTable,
    cost_per_solved_task,
    cost_usd,
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
