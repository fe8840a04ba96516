"""What samples cost: the price table and the arithmetic, with no I/O.

Prices are US dollars per million tokens, input (prompt) and output (completion). The built-in
table covers the aliases; ini ``passk_prices`` overrides and extends it, one ``MODEL = INPUT
OUTPUT`` line per model. The OpenAI Batch API bills half of both prices. A model with no known
price costs ``None`` (unknown), never ``0``: a report must not claim a run was free.

Local engines (vLLM on GPUs or the CPU) are priced by time instead: each sample carries the engine
seconds it took (:data:`ENGINE_SECONDS` in its metadata, with the device kind and count), priced at
ini ``passk_gpu_hour_usd`` per GPU-hour or ``passk_cpu_hour_usd`` per CPU-hour. A token price for
the model, when the table has one, wins over its engine time. A recorded sample (``replay:``) is
priced from its recorded token counts by its label (``--model=gpt-4o=replay:gpt4o.jsonl``); with
no counts it is unknown.
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
    "DEFAULT_CPU_HOUR_USD",
    "DEFAULT_GPU_HOUR_USD",
    "ENGINE_DEVICE",
    "ENGINE_DEVICES",
    "ENGINE_SECONDS",
    "HourPrices",
    "Price",
    "PriceError",
    "PriceTable",
    "cost_per_sample",
    "cost_per_solved_task",
    "cost_usd",
    "engine_metadata",
    "parse_prices",
]

#: The Batch API bills this fraction of the listed prices.
BATCH_DISCOUNT = 0.5
BAD_PRICE_LINE = (
    "{where}: {problem} in {line!r}; write 'MODEL = INPUT OUTPUT' (USD per 1M tokens), "
    "e.g. 'gpt-4o = 2.50 10.00'"
)


#: USD per hour of one GPU: an on-demand H100 80GB at a GPU cloud (Lambda, RunPod and the like list
#: $2-3 in 2025; the hyperscalers more). Set ini ``passk_gpu_hour_usd`` to your own.
DEFAULT_GPU_HOUR_USD = 2.50
#: USD per hour of one vCPU: a general-purpose cloud VM (AWS m7i/c7i list about $0.04-0.05 per
#: vCPU-hour on demand in 2025). Set ini ``passk_cpu_hour_usd`` to your own.
DEFAULT_CPU_HOUR_USD = 0.05
#: Completion metadata a local engine writes on each sample: the device kind (``cuda`` or
#: ``cpu``), how many of them the engine occupied (GPUs for tensor parallelism, CPUs for the CPU
#: engine) and the wall seconds of generation attributed to the sample.
ENGINE_DEVICE = "device"
ENGINE_DEVICES = "devices"
ENGINE_SECONDS = "engine_seconds"


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


@dataclass(frozen=True, slots=True)
class HourPrices:
    """USD per hour of one GPU and of one CPU, for samples priced by engine time."""

    gpu: float = DEFAULT_GPU_HOUR_USD
    cpu: float = DEFAULT_CPU_HOUR_USD

    def cost(self, device: str, devices: int, seconds: float) -> float:
        """USD for ``seconds`` of ``devices`` devices of kind ``device`` (``cuda`` or ``cpu``)."""
        hourly = self.gpu if device == "cuda" else self.cpu
        return hourly * max(devices, 1) * seconds / 3600.0


def engine_metadata(device: str, devices: int, seconds: float) -> dict[str, object]:
    """The metadata a local engine writes on a sample so that :class:`PriceTable` can price it."""
    return {ENGINE_DEVICE: device, ENGINE_DEVICES: devices, ENGINE_SECONDS: seconds}


#: Built-in prices (USD per 1M tokens), as listed by OpenAI for the standard tier.
BUILTIN_PRICES: Mapping[str, Price] = {
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
}


@dataclass(frozen=True, slots=True)
class PriceTable:
    """Prices by model name; the user's lines first, then the built-in table."""

    prices: Mapping[str, Price]
    #: Prices of engine time for local models.
    hours: HourPrices = HourPrices()

    @classmethod
    def with_overrides(
        cls, overrides: Mapping[str, Price], hours: HourPrices | None = None
    ) -> PriceTable:
        """The built-in table with ``overrides`` replacing or adding models."""
        return cls({**BUILTIN_PRICES, **overrides}, hours or HourPrices())

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

    def samples_cost(
        self, model: str, samples: Iterable[Completion], label: str | None = None
    ) -> float | None:
        """USD for ``samples`` of ``model`` (those drawn through the Batch API at half price),
        or ``None`` when any sample's cost is unknown.

        A sample costs its tokens at the price of ``model`` (else of ``label``, the name the user
        gave a recording) when one is known and the sample has token counts, else its engine
        time at the hourly prices when it carries one, else it is unknown.
        """
        price = self.lookup(model)
        if price is None and label is not None:
            price = self.lookup(label)
        total = 0.0
        for sample in samples:
            cost = self._sample_cost(price, sample)
            if cost is None:
                return None
            total += cost
        return total

    def _sample_cost(self, price: Price | None, sample: Completion) -> float | None:
        # Both counts zero means none were recorded: no request is billed nothing.
        if price is not None and (sample.prompt_tokens or sample.completion_tokens):
            batch = sample.metadata.get("batch") is True
            return price.cost(sample.prompt_tokens, sample.completion_tokens, batch=batch)
        engine = _engine_time(sample.metadata)
        if engine is not None:
            return self.hours.cost(*engine)
        return None


def _engine_time(metadata: Mapping[str, object]) -> tuple[str, int, float] | None:
    """``(device, devices, seconds)`` from a sample's metadata, or ``None`` when absent."""
    device = metadata.get(ENGINE_DEVICE)
    devices = metadata.get(ENGINE_DEVICES, 1)
    seconds = metadata.get(ENGINE_SECONDS)
    if not isinstance(device, str) or not isinstance(devices, int):
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return device, devices, float(seconds)


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


def cost_per_sample(cost: float | None, samples: int) -> float | None:
    """A model's cost divided by its samples; ``None`` when unknown or no sample was drawn."""
    if cost is None or samples <= 0:
        return None
    return cost / samples


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
