"""The run: backends, the generation phase, item execution, and aggregation on the controller.

:class:`PassKSession` is a plugin object registered in ``pytest_configure`` (the pytest-xdist
``DSession`` pattern). Processes that run items (the only process, or each xdist worker) generate
samples for their selected items up front, in one batched request set per model, then judge each
item. The process that owns the terminal (the only process, or the xdist controller) receives every
item's :class:`TaskResult` on its test report and aggregates, writes JUnit suite properties, the
JSON report and the samples file, and applies ``--passk-fail-under``.
"""

from __future__ import annotations

import json
import math
import time
import warnings
from collections.abc import Generator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.backends import Backend, Completion, GenerationRequest, Recording
from pytest_passk.backends.registry import (
    BackendContext,
    ModelSpec,
    build_backend,
    check_backend,
)
from pytest_passk.collect import TaskFailed, TaskItem
from pytest_passk.errors import BackendError, PassKError
from pytest_passk.estimate import ModelSummary, pass_at_k, summarise_models
from pytest_passk.evaluation import ItemIdentity, evaluate, plan_jobs, summarise
from pytest_passk.generation import Sampler
from pytest_passk.prompts import build_program, render_prompt
from pytest_passk.report import (
    item_properties,
    json_report,
    sample_records,
    suite_properties,
    summary_lines,
)
from pytest_passk.results import CandidateResult, TaskResult
from pytest_passk.sandbox import Executor, Job
from pytest_passk.settings import Settings
from pytest_passk.stash import SESSION_KEY
from pytest_passk.store import (
    CachingExecutor,
    SampleStore,
    StoreError,
    VerdictCache,
    concrete_model,
)

__all__ = ["REPORT_ATTRIBUTE", "PassKSession", "session_of"]

#: Key of the plain-JSON task result on a test report (survives pytest-xdist serialisation).
REPORT_ATTRIBUTE = "passk"
RESULT_KEY = pytest.StashKey[TaskResult]()
NO_REFERENCE = (
    "task {task_id} has no reference solution: give @passk.task(reference=...) "
    "or a canonical_solution"
)
NO_SAMPLES = "no samples for task {task_id} from {model}"
FAIL_UNDER = "passk: pass@{k} of {model} is {value}, below --passk-fail-under={threshold:g}"
BELOW_MIN = "pass@{k} = {value} is below the task's min_pass_at_k={threshold:g}"
PROGRESS_EVERY = 5.0
STORE_SUMMARY = (
    "passk store {root}: {drawn} samples drawn, {reused} read from the store; "
    "{executed} programs executed, {cached} verdicts from the cache"
)
REPLAY_SUMMARY = (
    "passk: {replayed} samples replayed from recordings (not stored); "
    "{executed} programs executed, {cached} verdicts from the cache"
)
STORE_FAILED = "--passk-store={root}: {error}"


class StoreWarning(UserWarning):
    """The sample store found damaged records and repaired them."""


def session_of(config: pytest.Config) -> PassKSession:
    """The run's session object."""
    return config.stash[SESSION_KEY]


class PassKSession:
    """State and hooks of one pytest-passk run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._backends: dict[str, Backend] = {}
        self._executor: CachingExecutor | None = None
        self._store: SampleStore | None = None
        self._drawn = 0
        self._reused = 0
        self._replayed = 0
        self._samples: dict[str, list[Completion]] = {}
        self._requested: dict[str, int] = {}
        self._results: dict[str, TaskResult] = {}
        self._summaries: list[ModelSummary] = []
        self._failures: list[str] = []
        self._last_progress = 0.0
        self._sandbox_info: dict[str, Any] | None = None
        if settings.sampling_mode:
            self._check_models()

    # -- roles ---------------------------------------------------------------------------------

    @property
    def is_worker(self) -> bool:
        """Whether this process is a pytest-xdist worker."""
        return hasattr(self.config, "workerinput")

    def _runs_items(self) -> bool:
        return not self.config.pluginmanager.has_plugin("dsession")

    # -- hooks ---------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """One line saying what this run samples and how it judges."""
        s = self.settings
        if not s.sampling_mode:
            return [
                f"passk: check mode (reference solutions), timeout={s.timeout:g}s, "
                f"workers={s.workers}",
                "passk: the sandbox starts with the first task (check mode)",
            ]
        n = s.n if s.n is not None else f"max(K)={s.max_k} (replay: all recorded)"
        models = ", ".join(
            m.label if m.label == m.spec else f"{m.label}={m.spec}" for m in s.models
        )
        return [
            f"passk: k={','.join(map(str, s.ks or ()))} n={n} models={models}",
            f"passk: T={s.sampling.temperature:g} top_p={s.sampling.top_p:g} "
            f"max_tokens={s.sampling.max_tokens} seed={s.sampling.seed} timeout={s.timeout:g}s "
            f"workers={s.workers}",
            self._sandbox_header(),
        ]

    def _sandbox_header(self) -> str:
        if self.config.option.collectonly:
            return "passk: sandbox not started (--collect-only)"
        isolation = self.executor_isolation()
        overhead = (self._sandbox_info or {}).get("overhead_ms")
        return f"passk: isolation={isolation}, overhead={overhead} ms per candidate"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Generate before items run; aggregate after all reports are in (controller only)."""
        collect_failed = (
            session.testsfailed and not self.config.option.continue_on_collection_errors
        )
        if (
            self.settings.sampling_mode
            and self._runs_items()
            and not self.config.option.collectonly
            and not collect_failed
        ):
            self.generate([item for item in session.items if isinstance(item, TaskItem)])
            self._prefetch([item for item in session.items if isinstance(item, TaskItem)])
        try:
            return (yield)
        finally:
            if not self.is_worker and not self.config.option.collectonly:
                self._finish(session)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Attach the item's result to its report as plain JSON, the hypothesis way."""
        report = yield
        result = item.stash.get(RESULT_KEY, None)
        if call.when == "call" and result is not None:
            with_samples = self.settings.samples_out is not None
            report.__dict__[REPORT_ATTRIBUTE] = result.to_json(with_samples=with_samples)
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect results where reports end up (the controller under xdist)."""
        data = report.__dict__.get(REPORT_ATTRIBUTE)
        if data is not None and not self.is_worker:
            self._results[report.nodeid] = TaskResult.from_json(data)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``pass@k`` section."""
        if not self._results:
            return
        results = list(self._results.values())
        if not self.settings.sampling_mode:
            passed = sum(r.c for r in results)
            terminalreporter.write_sep("=", "passk check")
            terminalreporter.write_line(
                f"references: {passed} passed, {len(results) - passed} failed "
                f"(of {len(results)} tasks)"
            )
            return
        terminalreporter.write_sep("=", "pass@k")
        verbose = self.config.get_verbosity() > 0
        for line in summary_lines(self._summaries, results, self.settings.ks or (1,), verbose):
            terminalreporter.write_line(line)
        for failure in self._failures:
            terminalreporter.write_line(failure, red=True)
        terminalreporter.write_line(f"sandbox: isolation={self.executor_isolation()}")
        if self._runs_items() and self._executor is not None:
            template = STORE_SUMMARY if self._drawn or self._reused else REPLAY_SUMMARY
            terminalreporter.write_line(
                template.format(
                    root=self.settings.store,
                    drawn=self._drawn,
                    reused=self._reused,
                    replayed=self._replayed,
                    executed=self._executor.executed,
                    cached=self._executor.reused,
                )
            )

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Release backends and sandbox workers."""
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._executor is not None:
            self._executor.close()
            self._executor = None

    # -- generation ----------------------------------------------------------------------------

    def _context(self) -> BackendContext:
        return BackendContext(
            base_dir=Path(self.config.invocation_params.dir), base_url=self.settings.base_url
        )

    def _check_models(self) -> None:
        """Fail before collection when a model cannot be used here (extra, key, GPU, file).

        A backend that a plugin provides through ``pytest_passk_make_backend`` is built here
        instead (the plugin answers for its own needs).
        """
        for model in self.settings.models:
            try:
                custom = self._custom_backend(model)
                if custom is not None:
                    self._backends[model.label] = custom
                else:
                    check_backend(model, self._context())
            except PassKError as exc:
                raise pytest.UsageError(f"--model={model.label}: {exc}") from None

    def _custom_backend(self, model: ModelSpec) -> Backend | None:
        backend: Backend | None = self.config.hook.pytest_passk_make_backend(
            config=self.config, model=model, context=self._context()
        )
        return backend

    def backend(self, model: ModelSpec) -> Backend:
        """The backend for ``model``, built on first use."""
        if model.label not in self._backends:
            try:
                self._backends[model.label] = self._custom_backend(model) or build_backend(
                    model, self._context()
                )
            except PassKError as exc:
                raise pytest.UsageError(f"--model={model.label}: {exc}") from None
        return self._backends[model.label]

    def sampler(self, model: ModelSpec) -> Sampler:
        """The sampler that draws ``model``'s samples, through the sample store."""
        backend = self.backend(model)
        return Sampler(
            backend,
            self.settings.sampling,
            model.label,
            store=self.store,
            model_id=concrete_model(model.provider, backend.model),
        )

    @property
    def store(self) -> SampleStore:
        """The sample store under ``--passk-store``."""
        if self._store is None:
            self._store = SampleStore(self.settings.store, warn=self._store_warning)
        return self._store

    def _store_warning(self, message: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or self.is_worker:
            warnings.warn(StoreWarning(message), stacklevel=2)
            return
        reporter.ensure_newline()
        reporter.write_line(f"passk: warning: {message}", yellow=True)

    def generate(self, items: Sequence[TaskItem]) -> None:
        """The generation phase: one batched request set per model for every selected item."""
        for model in self.settings.models:
            selected = [item for item in items if item.model == model.label]
            if selected:
                self._generate_for(model, selected)

    def _generate_for(self, model: ModelSpec, items: Sequence[TaskItem]) -> None:
        backend = self.backend(model)
        requests = []
        for item in items:
            n = self._n_for(item, backend)
            self._requested[item.nodeid] = n
            prompt = render_prompt(item.task, backend.prompt_style)
            requests.append(GenerationRequest(item.task.task_id, prompt, n))
        started = time.perf_counter()
        total = sum(r.n for r in requests)
        self._progress(
            f"passk: sampling {total} samples for {len(requests)} tasks from {model.label}"
        )
        tasks = {item.task.task_id: item.task for item in items}
        sampler = self.sampler(model)
        try:
            batches = sampler.draw(
                requests,
                extract=lambda r, c: build_program(tasks[r.task_id], c.text, c.form),
            )
        except BackendError as exc:
            raise pytest.UsageError(f"--model={model.label}: generation failed: {exc}") from None
        except StoreError as exc:
            raise pytest.UsageError(
                STORE_FAILED.format(root=self.settings.store, error=exc)
            ) from None
        finally:
            self._drawn += sampler.drawn
            self._reused += sampler.reused
            self._replayed += sampler.replayed
        for item, completions in zip(items, batches, strict=True):
            self._samples[item.nodeid] = completions
        elapsed = time.perf_counter() - started
        if elapsed > PROGRESS_EVERY:
            self._progress(
                f"passk: {total} samples from {model.label} in {elapsed:.1f} s", force=True
            )

    def _n_for(self, item: TaskItem, backend: Backend) -> int:
        if self.settings.n is not None:
            return self.settings.n
        if isinstance(backend, Recording):
            return backend.recorded(item.task.task_id) or self.settings.max_k
        return self.settings.max_k

    # -- execution -----------------------------------------------------------------------------

    @property
    def executor(self) -> Executor:
        """The sandbox pool behind the verdict cache, started on first use
        (``pytest_sessionstart`` starts it early).
        """
        if self._executor is None:
            pool = self._start_pool(self.settings.workers)
            self._sandbox_info = _sandbox_info(pool)
            self._executor = CachingExecutor(
                pool, VerdictCache(self.settings.store, warn=self._store_warning)
            )
        return self._executor

    def _start_pool(self, workers: int) -> Executor:
        from pytest_passk.sandbox.pool import IsolationLevel, IsolationUnavailable, PoolExecutor

        required = IsolationLevel.parse(self.settings.isolation or "auto")
        try:
            return PoolExecutor(workers, required=required, hide=[str(self.settings.rootdir)])
        except IsolationUnavailable as exc:
            raise pytest.UsageError(str(exc)) from None
        except OSError as exc:
            raise pytest.UsageError(f"passk: the sandbox could not start: {exc}") from None

    def executor_isolation(self) -> str:
        """Isolation level in force, for the header and the report.

        A process that runs no items (the xdist controller) starts a one-worker probe pool to
        find out, which also checks ``--passk-isolation`` before any worker draws a sample.
        """
        if self._sandbox_info is None:
            if self._executor is not None or self._runs_items():
                _ = self.executor
            else:
                probe = self._start_pool(1)
                self._sandbox_info = _sandbox_info(probe)
                probe.close()
        assert self._sandbox_info is not None
        return str(self._sandbox_info["isolation"])

    def sandbox_report(self, results: Sequence[TaskResult]) -> dict[str, Any]:
        """Isolation, per-candidate overhead, the samples' timeout rate (from the results, so it
        is right under xdist too) and this process's execution counters, for the JSON report.
        """
        self.executor_isolation()
        info = dict(self._sandbox_info or {})
        pool = self._executor.inner if self._executor is not None else None
        stats = getattr(pool, "stats", None)
        if stats is not None:
            info.update(stats.to_json())
        samples = sum(r.n for r in results)
        timeouts = sum(r.outcomes.get("timeout", 0) for r in results)
        info["samples"] = samples
        info["sample_timeouts"] = timeouts
        info["sample_timeout_rate"] = timeouts / samples if samples else 0.0
        return info

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """In sampling mode, start the sandbox pool now: before any backend loads a model
        (forking stays cheap and never copies model memory), and before the header that reports
        its isolation. Check mode loads no model: its pool starts once tasks are collected.
        """
        if self.settings.sampling_mode and not self.config.option.collectonly:
            self.executor_isolation()

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Check mode: start the pool only when there are tasks, and say how it isolates."""
        if self.settings.sampling_mode or self.config.option.collectonly:
            return
        if not self._runs_items() or not any(isinstance(i, TaskItem) for i in session.items):
            return
        self.executor_isolation()
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None and not self.is_worker:
            reporter.ensure_newline()
            reporter.write_line(self._sandbox_header())

    def _prefetch(self, items: Sequence[TaskItem]) -> None:
        """Queue every item's programs on the pool now, so that workers never idle at the end
        of one item (waiting for its slowest candidate) while the next item's programs wait.
        """
        prefetch = getattr(self.executor, "prefetch", None)
        if prefetch is None:
            return
        jobs: list[Job] = []
        for item in items:
            completions = self._samples.get(item.nodeid)
            if completions is not None:
                timeout = item.task.timeout or self.settings.timeout
                jobs.extend(plan_jobs(item.task, completions, timeout))
        prefetch(jobs)

    def run_item(self, item: TaskItem) -> None:
        """Judge one item; raise :class:`TaskFailed` when its criterion is not met."""
        if item.model is None:
            self._run_reference(item)
            return
        model = next(m for m in self.settings.models if m.label == item.model)
        if item.nodeid not in self._samples:  # not in the generation phase (e.g. run alone)
            self._generate_for(model, [item])
        completions = self._samples.pop(item.nodeid)
        identity = ItemIdentity(model.label, model.spec, item.nodeid)
        task = item.task
        ks = self.settings.ks or (1,)
        requested = self._requested.get(item.nodeid, len(completions))
        started = time.perf_counter()
        result = evaluate(
            task,
            completions,
            self.executor,
            timeout=task.timeout or self.settings.timeout,
            ks=ks,
            identity=identity,
            n_requested=requested,
            on_progress=lambda done, total: self._item_progress(item, done, total, started),
        )
        item.stash[RESULT_KEY] = result
        if result.n == 0:
            pytest.skip(NO_SAMPLES.format(task_id=task.task_id, model=model.label))
        item.user_properties.extend(item_properties(result, ks))
        if task.min_pass_at_k is not None:
            k = self.settings.max_k
            value = pass_at_k(result.n, result.c, k) if result.n >= k else math.nan
            if not value >= task.min_pass_at_k:
                shown = "undefined (n < k)" if math.isnan(value) else f"{value:.4f}"
                note = BELOW_MIN.format(k=k, value=shown, threshold=task.min_pass_at_k)
                raise TaskFailed(result, note)
        elif result.c == 0:
            raise TaskFailed(result)

    def _run_reference(self, item: TaskItem) -> None:
        task = item.task
        if task.reference is None:
            pytest.skip(NO_REFERENCE.format(task_id=task.task_id))
        job = Job(
            task.reference, task.test, task.entry_point, task.timeout or self.settings.timeout
        )
        (verdict,) = self.executor.run([job])
        sample = CandidateResult(
            0, verdict.outcome, verdict.message, "", task.reference, verdict.duration
        )
        identity = ItemIdentity("reference", "reference", item.nodeid)
        result = summarise(
            task, [sample], (1,), identity, 1, 1, verdict.duration, {0: verdict.detail}
        )
        item.stash[RESULT_KEY] = result
        item.user_properties.extend(item_properties(result, (1,)))
        if result.c == 0:
            raise TaskFailed(result, "the reference solution does not pass the task's test")

    # -- progress ------------------------------------------------------------------------------

    def _progress(self, text: str, *, force: bool = False) -> None:
        if self.is_worker:
            return
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        now = time.monotonic()
        if reporter is None or (not force and now - self._last_progress < PROGRESS_EVERY):
            return
        self._last_progress = now
        reporter.ensure_newline()
        reporter.write_line(text)

    def _item_progress(self, item: TaskItem, done: int, total: int, started: float) -> None:
        if time.perf_counter() - started > PROGRESS_EVERY:
            self._progress(f"passk: {item.nodeid}: {done}/{total} programs executed")

    # -- end of run ----------------------------------------------------------------------------

    def _finish(self, session: pytest.Session) -> None:
        results = list(self._results.values())
        if not results:
            return
        ks = self.settings.ks or (1,)
        self._summaries = summarise_models(results, ks) if self.settings.sampling_mode else []
        self._add_suite_properties()
        if self.settings.report is not None:
            self._write_report(results, ks)
        if self.settings.samples_out is not None:
            _write_jsonl(self.settings.samples_out, sample_records(results))
        self._apply_fail_under(session)

    def _add_suite_properties(self) -> None:
        try:
            from _pytest.junitxml import xml_key  # private, as in hypothesis's plugin
        except ImportError:  # pragma: no cover - pytest moved it
            return
        xml = self.config.stash.get(xml_key, None)
        if xml is not None:
            for name, value in suite_properties(self._summaries):
                xml.add_global_property(name, value)

    def _write_report(self, results: Sequence[TaskResult], ks: Sequence[int]) -> None:
        s = self.settings
        meta = {
            "mode": "sampling" if s.sampling_mode else "check",
            "settings": {
                "temperature": s.sampling.temperature,
                "top_p": s.sampling.top_p,
                "max_tokens": s.sampling.max_tokens,
                "seed": s.sampling.seed,
                "timeout": s.timeout,
                "n": s.n,
            },
            "isolation": self.executor_isolation(),
            "sandbox": self.sandbox_report(results),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "version": _version(),
        }
        document = json_report(self._summaries, results, ks, meta)
        _write_text(s.report, json.dumps(document, indent=2) + "\n")  # type: ignore[arg-type]

    def _apply_fail_under(self, session: pytest.Session) -> None:
        threshold = self.settings.fail_under
        if threshold is None or not self.settings.sampling_mode:
            return
        k = self.settings.max_k
        for summary in self._summaries:
            value = summary.estimates[k].value
            if not value >= threshold:  # NaN (no task with n >= k) fails too
                shown = "undefined" if math.isnan(value) else f"{value:.4f}"
                self._failures.append(
                    FAIL_UNDER.format(k=k, model=summary.label, value=shown, threshold=threshold)
                )
                session.testsfailed += 1


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


def _write_jsonl(path: Path, records: Any) -> None:
    _write_text(path, "".join(json.dumps(record) + "\n" for record in records))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pytest-passk")
    except PackageNotFoundError:
        return "unknown"


def _sandbox_info(executor: Executor) -> dict[str, Any]:
    stats = getattr(executor, "stats", None)
    overhead = stats.to_json()["overhead_ms"] if stats is not None else None
    return {"isolation": executor.isolation, "overhead_ms": overhead}
