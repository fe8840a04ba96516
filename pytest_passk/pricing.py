"""What samples cost: the price table and the arithmetic, with no I/O.

Prices are US dollars per million tokens, input (prompt) and output (completion). The built-in
table covers the aliases; ini ``passk_prices`` overrides and extends it, one ``MODEL = INPUT
OUTPUT`` line per model. The OpenAI Batch API bills half of both prices. A model with no known
price costs ``None`` (unknown), never ``0``: a report must not claim a run was free.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_passk.backends import Completion

__all__ = [
    "BAD_PRICE_LINE",
    "BATCH_DISCOUNT",
    "BUILTIN_PRICES",
    "Price",
    "PriceError",
    "PriceTable",
    "cost_per_solved_task",
    "cost_usd",
    "parse_prices",
]

#: The Batch API bills this fraction of the listed prices.
BATCH_DISCOUNT = 0.5
BAD_PRICE_LINE = (
    "{where}: {problem} in {line!r}; write 'MODEL = INPUT OUTPUT' (USD per 1M tokens), "
    "e.g. 'gpt-4o = 2.50 10.00'"
)


class PriceError(ValueError):
    """A malformed ``passk_prices`` line (the message names where and how to fix it)."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million input (prompt) and output (completion) tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int, *, batch: bool = False) -> float:
        """The cost of these tokens, halved for the Batch API."""
        usd = (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000
        return usd * BATCH_DISCOUNT if batch else usd


#: Built-in prices (USD per 1M tokens), as listed by OpenAI for the standard tier.
BUILTIN_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
}


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model name; the user's lines first, then the built-in table."""

    prices: Mapping[str, Price]

    @classmethod
    def with_overrides(cls, overrides: Mapping[str, Price]) -> PriceTable:
        """The built-in table with ``overrides`` replacing or adding models."""
        return cls({**BUILTIN_PRICES, **overrides})

    def lookup(self, model: str) -> Price | None:
        """The price of ``model``: its exact name, else without a ``provider:`` prefix."""
        if model in self.prices:
            return self.prices[model]
        _, sep, name = model.partition(":")
        if sep and name in self.prices:
            return self.prices[name]
        return None

    def cost_usd(
        self, model: str, prompt_tokens: int, completion_tokens: int, batch: bool = False
    ) -> float | None:
        """USD for these tokens of ``model``, or ``None`` when its price is unknown."""
        price = self.lookup(model)
        if price is None:
            return None
        return price.cost(prompt_tokens, completion_tokens, batch=batch)

    def samples_cost(self, model: str, samples: Iterable[Completion]) -> float | None:
        """USD for ``samples`` of ``model`` (those drawn through the Batch API at half price),
        or ``None`` when the price is unknown.
        """
        price = self.lookup(model)
        if price is None:
            return None
        return sum(
            price.cost(s.prompt_tokens, s.completion_tokens, batch=s.metadata.get("batch") is True)
            for s in samples
        )


def cost_usd(
    model: str,
    prompt_tokens: int,
    completion_tokens: int,
    batch: bool = False,
    prices: Mapping[str, Price] | None = None,
) -> float | None:
    """USD for these tokens of ``model`` (built-in prices plus ``prices``), ``None`` if unknown.

    ``model`` may be a spec (``openai:gpt-4o``) or a bare name (``gpt-4o``).
    """
    table = PriceTable.with_overrides(prices or {})
    return table.cost_usd(model, prompt_tokens, completion_tokens, batch)


def cost_per_solved_task(cost: float | None, solved: int) -> float | None:
    """A model's cost divided by its solved tasks (c >= 1); ``None`` when unknown or none solved."""
    if cost is None or solved <= 0:
        return None
    return cost / solved


def parse_prices(lines: Iterable[str], where: str = "ini passk_prices") -> dict[str, Price]:
    """Parse ``MODEL = INPUT OUTPUT`` lines (USD per 1M tokens); blank and ``#`` lines skipped.

    Raises:
        PriceError: naming ``where`` and the line number, with the expected form.

    """
    prices: dict[str, Price] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        at = f"{where} line {number}"
        model, sep, rest = line.partition("=")
        if not sep or not model.strip():
            raise PriceError(BAD_PRICE_LINE.format(where=at, problem="no 'MODEL ='", line=line))
        fields = rest.replace(",", " ").split()
        if len(fields) != 2:
            raise PriceError(
                BAD_PRICE_LINE.format(where=at, problem="expected two prices", line=line)
            )
        try:
            values = [float(field.removeprefix("$")) for field in fields]
        except ValueError:
            raise PriceError(
                BAD_PRICE_LINE.format(where=at, problem="a price is not a number", line=line)
            ) from None
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise PriceError(
                BAD_PRICE_LINE.format(where=at, problem="prices must be >= 0", line=line)
            )
        prices[model.strip()] = Price(values[0], values[1])
    return prices
