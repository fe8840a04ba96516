"""The run's settings, built once from the command line and ini (command line wins), all validated.

Every option has an ini key ``passk_<name>``. Validation errors are :class:`pytest.UsageError`
naming the option (or ini key) and the fix; the message templates are constants tests import.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from pytest_passk import option_values as parse
from pytest_passk.backends import SamplingParams
from pytest_passk.backends.registry import DEFAULT_MODEL, MODEL_ERROR, ModelSpec, resolve_model
from pytest_passk.compare_settings import (
    ComparisonSettings,
    add_comparison_options,
    read_comparison,
)
from pytest_passk.differential import AUGMENT_HELP, DEFAULT_EXAMPLES, EXAMPLES_HELP
from pytest_passk.errors import ModelSpecError
from pytest_passk.extract import ExtractMode
from pytest_passk.ini_types import ini_type
from pytest_passk.pricing import PriceError, PriceTable, parse_prices
from pytest_passk.render_options import RENDER_OPTIONS, render_paths
from pytest_passk.render_paths import OUTPUT_FILE, output_file_problem
from pytest_passk.sandbox.isolation import LEVEL_CHOICES, IsolationLevel

__all__ = ["SETTINGS_KEY", "Settings", "add_options"]

DEFAULT_TIMEOUT = 5.0
DEFAULT_FILES = ("passk_*.jsonl", "passk_*.jsonl.gz")
DEFAULT_STORE = ".passk"
DEFAULT_CONCURRENCY = 16
DEFAULT_REQUEST_TIMEOUT = 600.0
#: Seconds a run waits for its Batch API jobs (the backend's own default).
DEFAULT_BATCH_WAIT = 300.0
ISOLATION_LEVELS = LEVEL_CHOICES

BAD_VALUE = "{source}={value!r}: {problem}; {fix}"
N_BELOW_K = (
    "{source}={n} is below the largest k ({k}) of --passk: pass@{k} needs at least {k} samples "
    "per task; raise --passk-n or drop k={k}"
)
BAD_ALIAS = "ini passk_models line {line!r}: expected 'name = PROVIDER:MODEL'"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Option:
    """One ``--passk-*`` option and its ini key."""

    flags: tuple[str, ...]
    ini: str
    help: str
    metavar: str
    action: str = "store"
    ini_type: str = "string"


OPTIONS = (
    Option(
        ("--passk",),
        "passk",
        "Sampling mode: report pass@K for these k (1 is always reported); "
        "without it, tasks run their reference solutions (check mode)",
        "K[,K...]",
    ),
    Option(
        ("--passk-n",),
        "passk_n",
        "Samples per task (default: max K; replay: every recorded sample)",
        "N",
    ),
    Option(
        ("--model", "--passk-model"),
        "passk_model",
        "Model to sample, PROVIDER:MODEL or an alias; repeat for several (default: smollm2)",
        "SPEC",
        action="append",
    ),
    Option(
        ("--passk-temperature",), "passk_temperature", "Sampling temperature (default: 0.8)", "T"
    ),
    Option(("--passk-top-p",), "passk_top_p", "Nucleus sampling top_p (default: 0.95)", "P"),
    Option(
        ("--passk-max-tokens",), "passk_max_tokens", "Most tokens per sample (default: 1024)", "N"
    ),
    Option(("--passk-seed",), "passk_seed", "Sampling seed (default: 0)", "N"),
    Option(
        ("--passk-timeout",),
        "passk_timeout",
        f"Wall-clock limit per candidate run in seconds (default: {DEFAULT_TIMEOUT:g})",
        "S",
    ),
    Option(
        ("--passk-workers",),
        "passk_workers",
        "Candidate executions in parallel (default: CPUs available)",
        "N",
    ),
    Option(
        ("--passk-isolation",),
        "passk_isolation",
        "Sandbox isolation to require: auto (the strongest the host offers; default), "
        "process, namespaces or strict; a level the host cannot provide is an error",
        "LEVEL",
    ),
    Option(
        ("--passk-store",),
        "passk_store",
        "Sample store directory (default: .passk beside the rootdir)",
        "DIR",
    ),
    Option(
        ("--passk-report",),
        "passk_report",
        "Write the JSON report (pytest-passk/report/v1) here",
        "PATH",
    ),
    Option(
        ("--passk-samples-out",),
        "passk_samples_out",
        "Write every sample with its outcome as JSONL (human-eval/EvalPlus compatible)",
        "PATH",
    ),
    Option(
        ("--passk-fail-under",),
        "passk_fail_under",
        "Fail the session when a model's "
        "pass@max(K) is below P (a fraction such as 0.5, or a percentage such as 50%%)",
        "P",
    ),
    Option(
        ("--passk-extract",),
        "passk_extract",
        "How answers become programs: auto (default) repairs answers that are not clean "
        "continuations (fences, restated functions or bodies, prose, trailing tests, cut-off "
        "tails); none uses the text exactly as given",
        "MODE",
    ),
    Option(
        ("--passk-base-url",),
        "passk_base_url",
        "Base URL of an OpenAI-compatible server (default: $OPENAI_BASE_URL)",
        "URL",
    ),
    Option(
        ("--passk-concurrency",),
        "passk_concurrency",
        f"Concurrent requests to an API backend (default: {DEFAULT_CONCURRENCY})",
        "N",
    ),
    Option(
        ("--passk-request-timeout",),
        "passk_request_timeout",
        f"Timeout per API request in seconds (default: {DEFAULT_REQUEST_TIMEOUT:g})",
        "S",
    ),
    Option(
        ("--passk-openai-batch",),
        "passk_openai_batch",
        "Sample through OpenAI's Batch API (half price; a pending batch is collected by the "
        "next run)",
        "",
        action="store_true",
    ),
    Option(
        ("--passk-batch-wait",),
        "passk_batch_wait",
        f"With --passk-openai-batch: seconds to wait for pending batches before the run ends and "
        f"leaves them to the next (default: {DEFAULT_BATCH_WAIT:g}; 0 polls once)",
        "S",
    ),
    Option(("--passk-augment",), "passk_augment", AUGMENT_HELP, "", action="store_true"),
    Option(("--passk-examples",), "passk_examples", EXAMPLES_HELP, "N"),
    *(Option(*spec) for spec in RENDER_OPTIONS),
)


def add_options(parser: pytest.Parser) -> None:
    """Register the ``passk`` option group and its ini keys."""
    group = parser.getgroup("passk", "pass@k sampling of LLM-generated code (pytest-passk)")
    for option in OPTIONS:
        dest = option.ini
        extra = {"metavar": option.metavar} if option.action != "store_true" else {}
        group.addoption(
            *option.flags, action=option.action, dest=dest, default=None, help=option.help, **extra
        )
        parser.addini(dest, option.help.replace("%%", "%"), type=ini_type(dest), default=None)
    add_comparison_options(group, parser)
    parser.addini(
        "passk_files",
        "Glob patterns of dataset files to collect as tasks",
        type="args",
        default=list(DEFAULT_FILES),
    )
    parser.addini(
        "passk_models",
        "Model aliases, one 'name = PROVIDER:MODEL' per line",
        type="linelist",
        default=[],
    )
    parser.addini(
        "passk_prices",
        "Prices in USD per 1M tokens, one 'MODEL = INPUT OUTPUT' per line",
        type="linelist",
        default=[],
    )


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the run needs to know, resolved once in ``pytest_configure``.

    Kept in ``config.stash[SETTINGS_KEY]``.
    """

    ks: tuple[int, ...] | None
    n: int | None
    models: tuple[ModelSpec, ...]
    sampling: SamplingParams
    timeout: float
    workers: int
    store: Path
    report: Path | None
    samples_out: Path | None
    fail_under: float | None
    base_url: str | None
    files: tuple[str, ...]
    rootdir: Path
    #: Required sandbox level (``process``, ``namespaces``, ``strict``); ``None`` = strongest.
    isolation: IsolationLevel | None = None
    #: ``--passk-extract``: how answers become programs.
    extract: ExtractMode = ExtractMode.AUTO
    #: Concurrent requests to an API backend.
    concurrency: int = DEFAULT_CONCURRENCY
    #: Seconds per API request.
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    #: Sample through OpenAI's Batch API.
    openai_batch: bool = False
    #: Seconds to wait for pending Batch API jobs before the run ends.
    batch_wait: float = DEFAULT_BATCH_WAIT
    augment: bool = False  # --passk-augment: stronger tests for HumanEval-format tasks
    examples: int = DEFAULT_EXAMPLES  # --passk-examples: generated inputs per task
    #: Prices by model (ini ``passk_prices`` over the built-in table), USD per 1M tokens.
    prices: PriceTable = dataclasses.field(default_factory=lambda: PriceTable.with_overrides({}))
    #: The comparison's baseline, budgets, target; the prices of local engine time.
    comparison: ComparisonSettings = dataclasses.field(default_factory=ComparisonSettings)
    #: ``--passk-plot`` directory and ``--passk-html`` file (:mod:`pytest_passk.render_options`).
    plot: Path | None = None
    html: Path | None = None

    @property
    def sampling_mode(self) -> bool:
        """Whether ``--passk`` was given (else check mode)."""
        return self.ks is not None

    @property
    def max_k(self) -> int:
        """The largest k reported (1 in check mode)."""
        return max(self.ks) if self.ks else 1

    @classmethod
    def from_config(cls, config: pytest.Config) -> Settings:
        """Read, validate and resolve every option.

        Raises:
            pytest.UsageError: naming the option or ini key and the fix.

        """
        reader = _Reader(config)
        ks = reader.get("passk", parse.ks)
        n = reader.get("passk_n", parse.positive_int)
        if ks is not None and n is not None and n < max(ks):
            raise pytest.UsageError(
                N_BELOW_K.format(source=reader.source("passk_n"), n=n, k=max(ks))
            )
        aliases = _parse_aliases(config.getini("passk_models"))
        from_command_line = config.getoption("passk_model")
        labels = from_command_line or _ini_models(config) or [DEFAULT_MODEL]
        ini_dir = Path(config.inipath).parent if config.inipath is not None else None
        models: list[ModelSpec] = []
        plugin_providers = [
            name for names in config.hook.pytest_passk_providers(config=config) for name in names
        ]
        for label in labels:
            try:
                model = resolve_model(label, aliases, plugin_providers)
            except ModelSpecError as exc:
                raise pytest.UsageError(MODEL_ERROR.format(label=label, error=exc)) from None
            if ini_dir is not None and (not from_command_line or model.label != model.spec):
                model = _relative_to_ini(model, ini_dir)
            if model.label not in {m.label for m in models}:
                models.append(model)
        rootdir = Path(config.rootpath)
        store = reader.get("passk_store", str)
        report = reader.get("passk_report", str)
        samples_out = reader.get("passk_samples_out", str)
        comparison = read_comparison(config, models)
        plot, html = render_paths(config)
        report_path = _output_file(reader, "passk_report", report)
        samples_out_path = _output_file(reader, "passk_samples_out", samples_out)
        return cls(
            ks=ks,
            n=n,
            models=tuple(models),
            sampling=SamplingParams(
                temperature=_default(reader.get("passk_temperature", parse.temperature), 0.8),
                top_p=_default(reader.get("passk_top_p", parse.top_p), 0.95),
                max_tokens=reader.get("passk_max_tokens", parse.positive_int) or 1024,
                seed=_default(reader.get("passk_seed", parse.integer), 0),
            ),
            timeout=reader.get("passk_timeout", parse.positive_number) or DEFAULT_TIMEOUT,
            workers=reader.get("passk_workers", parse.positive_int) or _default_workers(),
            isolation=reader.get("passk_isolation", parse.isolation),
            extract=reader.get("passk_extract", parse.extract_mode) or ExtractMode.AUTO,
            store=_path(store, reader.base("passk_store")) if store else rootdir / DEFAULT_STORE,
            report=report_path,
            samples_out=samples_out_path,
            fail_under=reader.get("passk_fail_under", parse.fraction),
            base_url=reader.get("passk_base_url", str) or os.environ.get("OPENAI_BASE_URL") or None,
            files=tuple(config.getini("passk_files")),
            rootdir=rootdir,
            concurrency=reader.get("passk_concurrency", parse.positive_int) or DEFAULT_CONCURRENCY,
            request_timeout=reader.get("passk_request_timeout", parse.positive_number)
            or DEFAULT_REQUEST_TIMEOUT,
            openai_batch=bool(reader.get("passk_openai_batch", parse.flag)),
            batch_wait=_default(reader.get("passk_batch_wait", parse.seconds), DEFAULT_BATCH_WAIT),
            augment=bool(reader.get("passk_augment", parse.flag)),
            examples=reader.get("passk_examples", parse.positive_int) or DEFAULT_EXAMPLES,
            prices=_prices(config.getini("passk_prices"), comparison),
            comparison=comparison,
            plot=plot,
            html=html,
        )


class _Reader:
    """Command line first, then ini; parse errors name whichever the value came from."""

    def __init__(self, config: pytest.Config) -> None:
        self._config = config
        self._sources: dict[str, str] = {}

    def source(self, dest: str) -> str:
        return self._sources.get(dest, _flag(dest))

    def base(self, dest: str) -> Path:
        """Where a relative path in ``dest`` starts: the directory pytest was started in for a
        command-line value, the ini file's directory for an ini value.
        """
        if self.source(dest).startswith("ini ") and self._config.inipath is not None:
            return Path(self._config.inipath).parent
        return Path(self._config.invocation_params.dir)

    def get(self, dest: str, parse: Callable[[str], T]) -> T | None:
        raw = self._config.getoption(dest)
        source = _flag(dest)
        if raw is None:
            raw = self._config.getini(dest)
            source = f"ini {dest}"
        if raw is None or raw == "" or raw == []:  # pytest < 8 answers [] for an unset key
            return None
        self._sources[dest] = source
        try:
            return parse(str(raw).strip())
        except ValueError as exc:
            problem, _, fix = str(exc).partition("|")
            raise pytest.UsageError(
                BAD_VALUE.format(source=source, value=raw, problem=problem, fix=fix)
            ) from None


def _relative_to_ini(model: ModelSpec, ini_dir: Path) -> ModelSpec:
    """A path in a model named in the ini file (a model or an alias) is relative to that file."""
    return dataclasses.replace(model, base_dir=str(ini_dir))


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def _ini_models(config: pytest.Config) -> list[str]:
    text = " ".join(str(entry) for entry in config.getini("passk_model") or [])
    return [part for part in text.replace(",", " ").split() if part]


def _default(value: T | None, default: T) -> T:
    return default if value is None else value


def _prices(lines: list[str], comparison: ComparisonSettings) -> PriceTable:
    try:
        return PriceTable.with_overrides(parse_prices(lines), comparison.hours)
    except PriceError as exc:
        raise pytest.UsageError(str(exc)) from None


def _parse_aliases(lines: list[str]) -> Mapping[str, str]:
    aliases: dict[str, str] = {}
    for line in lines:
        name, sep, spec = line.partition("=")
        if not sep or not name.strip() or ":" not in spec:
            raise pytest.UsageError(BAD_ALIAS.format(line=line))
        aliases[name.strip()] = spec.strip()
    return aliases


def _path(text: str, base: Path) -> Path:
    path = Path(text).expanduser()
    return path if path.is_absolute() else base / path


def _output_file(reader: _Reader, dest: str, text: str | None) -> Path | None:
    """A report file's path, checked now: an end-of-run write that fails loses the report."""
    if text is None:
        return None
    path = _path(text, reader.base(dest))
    problem = output_file_problem(path)
    if problem:
        source = reader.source(dest)
        raise pytest.UsageError(OUTPUT_FILE.format(source=source, value=text, problem=problem))
    return path


def _default_workers() -> int:
    """One sandbox worker per CPU, shared out among pytest-xdist workers (each runs a pool):
    ``-n 8`` on 8 CPUs must not run 64 candidates at once and turn load into timeouts.
    """
    cpus = _available_cpus()
    try:
        xdist_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    except ValueError:
        xdist_workers = 1
    return max(1, cpus // max(1, xdist_workers))


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


#: Where ``pytest_configure`` keeps the run's :class:`Settings`.
SETTINGS_KEY = pytest.StashKey[Settings]()
