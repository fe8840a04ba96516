"""The comparison's options: ``--passk-baseline``, ``--passk-budget``, ``--passk-target`` and the
ini prices of local engine time, read and validated once (command line over ini).

Kept beside :mod:`pytest_passk.settings` (which calls :func:`add_comparison_options` and
:func:`read_comparison`) so that module stays one screenful per concern. Errors are
:class:`pytest.UsageError` naming the option or ini key and the fix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from pytest_passk import option_values as parse
from pytest_passk.backends import ModelSpec
from pytest_passk.pricing import DEFAULT_CPU_HOUR_USD, DEFAULT_GPU_HOUR_USD, HourPrices

__all__ = [
    "BAD_BASELINE",
    "BAD_COMPARISON_VALUE",
    "ComparisonSettings",
    "add_comparison_options",
    "read_comparison",
]

BAD_COMPARISON_VALUE = "{source}={value!r}: {problem}; {fix}"
BAD_BASELINE = (
    "{source}={value!r} is not a model of this run ({models}); "
    "give one of the --model values as written"
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ComparisonSettings:
    """What the comparison section needs from the options."""

    #: The baseline's model label (``None`` only without models).
    baseline: str | None = None
    #: ``--passk-budget`` values, USD per task, ascending and distinct.
    budgets: tuple[float, ...] = ()
    #: ``--passk-target``: the pass@k whose k and cost per task are shown.
    target: float | None = None
    #: Prices of local engine time (ini ``passk_gpu_hour_usd``, ``passk_cpu_hour_usd``).
    hours: HourPrices = field(default_factory=HourPrices)


def add_comparison_options(group: pytest.OptionGroup, parser: pytest.Parser) -> None:
    """Register the comparison's options in the ``passk`` group, and their ini keys."""
    options = (
        (
            "--passk-baseline",
            "passk_baseline",
            "The model the others are compared with (default: the first --model)",
            "MODEL",
            "store",
        ),
        (
            "--passk-budget",
            "passk_budget",
            "A budget per task in USD for the equal-cost comparison, beside the cost of one "
            "sample of each model; repeat for several",
            "USD",
            "append",
        ),
        (
            "--passk-target",
            "passk_target",
            "A pass@k (0 < P <= 1, or a percentage): the comparison shows the smallest k and "
            "the cost per task that reach it",
            "P",
            "store",
        ),
    )
    for flag, dest, help_text, metavar, action in options:
        kwargs = {"action": action, "dest": dest, "metavar": metavar, "help": help_text}
        group.addoption(flag, default=None, **kwargs)
        parser.addini(dest, help_text, type="string", default=None)
    parser.addini(
        "passk_gpu_hour_usd",
        f"USD per hour of one GPU, to cost local models' engine time "
        f"(default: {DEFAULT_GPU_HOUR_USD:g})",
        type="string",
        default=None,
    )
    parser.addini(
        "passk_cpu_hour_usd",
        f"USD per hour of one CPU (vCPU), to cost local models' engine time on the CPU "
        f"(default: {DEFAULT_CPU_HOUR_USD:g})",
        type="string",
        default=None,
    )


def read_comparison(config: pytest.Config, models: Sequence[ModelSpec]) -> ComparisonSettings:
    """Read and validate the comparison's options.

    Raises:
        pytest.UsageError: naming the option or ini key and the fix.

    """
    budgets = _values(config, "passk_budget", parse.usd_per_task, many=True)
    target = _values(config, "passk_target", parse.pass_target)
    gpu = _values(config, "passk_gpu_hour_usd", parse.usd_per_hour, ini_only=True)
    cpu = _values(config, "passk_cpu_hour_usd", parse.usd_per_hour, ini_only=True)
    return ComparisonSettings(
        baseline=_baseline(config, models),
        budgets=tuple(sorted(set(budgets))),
        target=target[0] if target else None,
        hours=HourPrices(
            gpu=gpu[0] if gpu else DEFAULT_GPU_HOUR_USD,
            cpu=cpu[0] if cpu else DEFAULT_CPU_HOUR_USD,
        ),
    )


def _values(
    config: pytest.Config,
    dest: str,
    parse: Callable[[str], T],
    *,
    many: bool = False,
    ini_only: bool = False,
) -> list[T]:
    """The option's values from the command line, else from ini (both split on spaces and commas
    when ``many``); each parsed, a ``ValueError("problem|fix")`` becoming a usage error.
    """
    raw = None if ini_only else config.getoption(dest)
    source = "--" + dest.replace("_", "-")
    if raw is None or raw == []:
        ini = str(config.getini(dest) or "").strip()
        raw = ini.replace(",", " ").split() if many else ([ini] if ini else [])
        source = f"ini {dest}"
    texts = [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]
    if many:  # --passk-budget=0.01,0.1 as well as repeated options, as in ini
        texts = [part for text in texts for part in text.replace(",", " ").split()]
    values = []
    for text in texts:
        try:
            values.append(parse(text.strip()))
        except ValueError as exc:
            problem, _, fix = str(exc).partition("|")
            raise pytest.UsageError(
                BAD_COMPARISON_VALUE.format(source=source, value=text, problem=problem, fix=fix)
            ) from None
    return values


def _baseline(config: pytest.Config, models: Sequence[ModelSpec]) -> str | None:
    """The baseline's label: a ``--model`` as written, or a model's spec; else the first."""
    given = _values(config, "passk_baseline", str)
    if not given or not given[0]:
        return models[0].label if models else None
    value = given[0]
    for model in models:
        if value in (model.label, model.spec):
            return model.label
    source = "--passk-baseline" if config.getoption("passk_baseline") else "ini passk_baseline"
    names = ", ".join(model.label for model in models)
    raise pytest.UsageError(BAD_BASELINE.format(source=source, value=value, models=names))
