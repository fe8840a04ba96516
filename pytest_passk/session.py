"""The run's conductor: who does what where, and the hooks that tie the phases together.

:class:`PassKSession` is registered in ``pytest_configure`` (the pytest-xdist ``DSession``
pattern) and decides its :class:`Role` once, at session start. Processes that run items (the only
process, or each xdist worker) draw the samples of every collected item up front
(:mod:`pytest_passk.sampling`), queue their programs (:mod:`pytest_passk.execution`, whose sandbox
pool starts with the first program to run) and judge each item when pytest runs it. The process
that owns the terminal (the only process, or the xdist controller) receives every item's
:class:`~pytest_passk.results.TaskResult` on its test report, aggregates, and writes the outputs
(:mod:`pytest_passk.outputs`).
"""

from __future__ import annotations

import dataclasses
import enum
import time
import warnings
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from pytest_passk.backends import Backend, BackendContext, ModelSpec
from pytest_passk.collect import JUDGE_KEY, RESULT_KEY, TaskItem
from pytest_passk.comparison import Comparison, compare, runs_from_results
from pytest_passk.errors import (
    PassKError,
    SamplesNotYet,
    SamplesUnavailable,
    SandboxUnavailable,
    TaskFormatError,
)
from pytest_passk.estimate import ModelSummary, summarise_models
from pytest_passk.evaluation import (
    NO_REFERENCE,
    Decision,
    ItemDecision,
    ItemIdentity,
    decide,
    decide_reference,
)
from pytest_passk.execution import NOT_STARTED, Execution, ExecutionSetup, sandbox_report
from pytest_passk.outputs import add_suite_properties, fail_under, write_report, write_samples
from pytest_passk.progress import Progress
from pytest_passk.report import summary_lines
from pytest_passk.results import RunCounters, TaskResult
from pytest_passk.sampling import ItemToSample, SampleSupply, SamplingSetup
from pytest_passk.sandbox import SandboxInfo
from pytest_passk.selection import select_task
from pytest_passk.settings import Settings
from pytest_passk.store import SampleStore
from pytest_passk.terminal import RunView, write_summary
from pytest_passk.unjudged import UNJUDGED_REPORT_KEY, UnjudgedItems, mark_unjudged

__all__ = [
    "REPORT_ATTRIBUTE",
    "PassKSession",
    "Role",
    "StoreWarning",
]

#: Key of the plain-JSON task result on a test report (survives pytest-xdist serialisation).
REPORT_ATTRIBUTE = "passk"
FAIL_UNDER_IGNORED = (
    "passk: --passk-fail-under is ignored in check mode (it gates pass@k; add --passk=K)"
)
#: Key of a worker's counters in xdist's ``workeroutput``.
COUNTERS_KEY = "passk_counters"
#: Key of a worker's sandbox (isolation, overhead) in xdist's ``workeroutput``.
SANDBOX_KEY = "passk_sandbox"
SANDBOX_LATER = "passk: the sandbox starts when the first program is to run"
SANDBOX_COLLECT_ONLY = "passk: sandbox not started (--collect-only)"
#: Key of the run's start time in xdist's ``workerinput``.
STARTED_KEY = "passk_started"
SAMPLES_NOT_YET = "passk: nothing judged yet: {reason}"
INTERRUPTED_SAMPLING = (
    "passk: interrupted while sampling; every sample received so far is kept in {store}, "
    "and a rerun draws only the rest"
)


class StoreWarning(UserWarning):
    """The sample store or the verdict cache found damaged records and repaired them."""


class Role(enum.Enum):
    """What this process does in the run."""

    SOLO = "solo"  # runs every item and owns the terminal
    CONTROLLER = "controller"  # the xdist controller: owns the terminal, runs no item
    WORKER = "worker"  # an xdist worker: runs the items it is sent, has no terminal

    @property
    def runs_items(self) -> bool:
        """Whether this process judges items."""
        return self is not Role.CONTROLLER

    @property
    def reports(self) -> bool:
        """Whether this process aggregates results and writes the outputs."""
        return self is not Role.WORKER


class PassKSession:
    """State and hooks of one pytest-passk run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self._role: Role | None = None
        self.progress = Progress(self._write_line if not self._is_worker() else None)
        context = BackendContext(
            base_dir=Path(config.invocation_params.dir),
            base_url=settings.base_url,
            store_dir=settings.store,
            concurrency=settings.concurrency,
            request_timeout=settings.request_timeout,
            openai_batch=settings.openai_batch,
            batch_wait=settings.batch_wait,
        )
        workerinput = getattr(config, "workerinput", {})
        self.started = float(workerinput.get(STARTED_KEY, time.time()))
        self.supply = SampleSupply(
            SamplingSetup(
                settings.models,
                settings.sampling,
                settings.n,
                settings.max_k,
                context,
                started=self.started,
                extract=settings.extract,
            ),
            lambda: SampleStore(settings.store, warn=self.store_warning),
            self.progress,
            custom_backend=self._custom_backend,
        )
        self.execution = Execution(
            ExecutionSetup(
                workers=settings.workers,
                timeout=settings.timeout,
                isolation=settings.isolation,
                store=settings.store,
                hide=(str(settings.rootdir),),
                extract=settings.extract,
                augment=settings.augment,
                examples=settings.examples,
            ),
            self.progress,
            warn=self.store_warning,
        )
        #: The sandbox an xdist worker reported (the controller starts none of its own).
        self._worker_sandbox: SandboxInfo | None = None
        self._results: dict[str, TaskResult] = {}
        self._unjudged = UnjudgedItems()
        self._worker_counters = RunCounters()
        self._summaries: list[ModelSummary] = []
        self._comparison: Comparison | None = None
        self._failures: list[str] = []
        config.stash[JUDGE_KEY] = self

    # -- roles ---------------------------------------------------------------------------------

    def _is_worker(self) -> bool:
        return hasattr(self.config, "workerinput")

    @property
    def role(self) -> Role:
        """The role of this process, decided once (at session start, when xdist has registered)."""
        if self._role is None:
            if self._is_worker():
                self._role = Role.WORKER
            elif self.config.pluginmanager.has_plugin("dsession"):
                self._role = Role.CONTROLLER
            else:
                self._role = Role.SOLO
        return self._role

    def _write_line(self, text: str, warning: bool) -> bool:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None:
            return False
        reporter.ensure_newline()
        reporter.write_line(text, yellow=warning)
        return True

    def store_warning(self, message: str) -> None:
        """Repairs of damaged records: on the terminal, else as a Python warning."""
        if not self.progress.warn(message):
            warnings.warn(StoreWarning(message), stacklevel=2)

    def _custom_backend(self, model: ModelSpec, context: BackendContext) -> Backend | None:
        backend: Backend | None = self.config.hook.pytest_passk_make_backend(
            config=self.config, model=model, context=context
        )
        return backend

    def _sandbox(self) -> SandboxInfo:
        """Isolation of this run's pool, which starts now if it has not (check mode)."""
        try:
            return self.execution.info()
        except PassKError as exc:
            raise pytest.UsageError(str(exc)) from None

    def _sandbox_used(self) -> SandboxInfo:
        """The sandbox this run used (this process's, else an xdist worker's); starts none."""
        return self.execution.started_info() or self._worker_sandbox or NOT_STARTED

    # -- the ItemJudge protocol (collect.TaskItem calls these) ---------------------------------

    def ks(self) -> tuple[int, ...]:
        """The k values reported (``(1,)`` in check mode)."""
        return self.settings.ks or (1,)

    def judge(self, item: TaskItem) -> ItemDecision:
        """Judge one item: its reference in check mode, its samples in sampling mode."""
        if item.model is None:
            try:
                result = self.execution.evaluate_reference(item.task, item.nodeid)
            except PassKError as exc:
                raise pytest.UsageError(str(exc)) from None
            if result is None:
                return ItemDecision(
                    Decision.SKIPPED, None, NO_REFERENCE.format(task_id=item.task.task_id)
                )
            return decide_reference(result)
        model = next(m for m in self.settings.models if m.label == item.model)
        try:
            completions, requested = self.supply.take(_to_sample(item))
        except SamplesUnavailable as exc:
            return ItemDecision(Decision.ERROR, None, str(exc))
        try:
            result = self.execution.evaluate(
                item.task,
                completions,
                ItemIdentity(model.label, model.spec, item.nodeid),
                ks=self.ks(),
                n_requested=requested,
            )
        except (TaskFormatError, SandboxUnavailable) as exc:  # stronger tests, or no sandbox
            return ItemDecision(Decision.ERROR, None, str(exc))
        # What the samples cost (``None``, never 0, when the model's price is unknown).
        cost = self.settings.prices.samples_cost(model.spec, completions, model.label)
        # Picked here, where the samples are: they do not travel to the controller.
        selected = select_task(result.samples)
        result = dataclasses.replace(result, cost_usd=cost, selected=selected)
        return decide(result, item.task, self.settings.max_k)

    # -- hooks ---------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """In sampling mode, check every model (a usage error before collection). The sandbox
        pool starts later, with the first program to run (its workers are fresh interpreters,
        so a model loaded meanwhile is never copied into them).
        """
        if self.settings.sampling_mode:
            try:
                self.supply.check_models()
            except PassKError as exc:
                raise pytest.UsageError(str(exc)) from None

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        """What this run samples and how it judges."""
        s = self.settings
        if not s.sampling_mode:
            lines = [
                f"passk: check mode (reference solutions), timeout={s.timeout:g}s, "
                f"workers={s.workers}",
                "passk: the sandbox starts with the first task (check mode)",
            ]
            if s.fail_under is not None:
                lines.append(FAIL_UNDER_IGNORED)
            return lines
        replay = any(m.provider == "replay" for m in s.models)
        n = s.n if s.n is not None else f"max(K)={s.max_k}"
        if s.n is None and replay:
            n = f"{n} (replay: all recorded)"
        models = ", ".join(
            m.label if m.label == m.spec else f"{m.label}={m.spec}" for m in s.models
        )
        return [
            f"passk: k={','.join(map(str, s.ks or ()))} n={n} models={models}",
            f"passk: T={s.sampling.temperature:g} top_p={s.sampling.top_p:g} "
            f"max_tokens={s.sampling.max_tokens} seed={s.sampling.seed} timeout={s.timeout:g}s "
            f"workers={s.workers}",
            SANDBOX_COLLECT_ONLY if self.config.option.collectonly else SANDBOX_LATER,
        ]

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Check mode: start the pool only when there are tasks (it says how it isolates)."""
        if self.settings.sampling_mode or self.config.option.collectonly:
            return
        if not self.role.runs_items or not any(isinstance(i, TaskItem) for i in session.items):
            return
        self._sandbox()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Generate and queue before items run; aggregate after every report is in."""
        collect_failed = (
            session.testsfailed and not self.config.option.continue_on_collection_errors
        )
        interrupted = False
        try:
            if self.role.runs_items and not self.config.option.collectonly and not collect_failed:
                items = [item for item in session.items if isinstance(item, TaskItem)]
                if self.settings.sampling_mode:
                    self._generation_phase(items)
                elif self.role is Role.SOLO and self.execution.started:
                    # Check mode: every reference queued up front, so the pool's workers all run.
                    self.execution.prefetch_references([item.task for item in items])
            return (yield)
        except BaseException:  # Ctrl-C, -x: still report what ran, and say it is partial
            interrupted = True
            raise
        finally:
            if self.role.reports and not self.config.option.collectonly:
                self._finish(session, interrupted=interrupted or bool(session.shouldstop))

    def _generation_phase(self, items: list[TaskItem]) -> None:
        """Draw every collected item's samples in one batched phase per model.

        Every process that runs items does this for all collected items (an xdist worker
        collects them all, though it runs only those it is sent). The store draws each model's
        missing samples under one lock per model, so the first process draws them all, loading
        the model once per run, and the others find them in the store. Only a process that runs
        every item queues every program up front; an xdist worker runs its programs per item. Both
        plan every item's programs here and start the sandbox pool if one is to run, so no item's
        time includes its start.
        """
        try:
            self.supply.generate([_to_sample(item) for item in items])
        except KeyboardInterrupt:
            self.progress.say(INTERRUPTED_SAMPLING.format(store=self.settings.store), force=True)
            raise
        except SamplesNotYet as exc:
            if self.role is not Role.WORKER:
                # Nothing failed: the samples are paid for and the next run collects them.
                # Ending here (exit status 2, "interrupted") keeps a CI gate from passing on
                # a run that judged nothing, without calling it a usage error.
                pytest.exit(SAMPLES_NOT_YET.format(reason=exc), returncode=2)
        except SamplesUnavailable as exc:
            if self.role is not Role.WORKER:
                raise pytest.UsageError(str(exc)) from None
            # A worker cannot stop the session with a usage error (xdist would only report a
            # crashed worker): the items that miss their samples fail with the message.
        try:
            self.execution.prefetch(
                [(item.nodeid, item.task, self.supply.peek(item.nodeid)) for item in items],
                queue=self.role is Role.SOLO,
            )
        except SandboxUnavailable as exc:
            if self.role is not Role.WORKER:
                raise pytest.UsageError(str(exc)) from None
            # As for samples: each item the worker runs fails with the message.

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
        elif isinstance(item, TaskItem) and call.when == "call" and call.excinfo is not None:
            # Interrupted while judged (pytest-timeout) or failed without samples: counted apart.
            mark_unjudged(report, item.model, call.excinfo.exconly())
        return report

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Collect results where reports end up (the controller under xdist)."""
        if not self.role.reports:
            return
        data = report.__dict__.get(REPORT_ATTRIBUTE)
        if data is not None:
            self._results[report.nodeid] = TaskResult.from_json(data)
        labels = [m.label for m in self.settings.models] if self.settings.sampling_mode else []
        self._unjudged.take(report, judged=data is not None, labels=labels)

    def pytest_passk_update_report(self, config: pytest.Config, report: dict[str, Any]) -> None:
        """List the items without a verdict in the JSON report (the hook plugins use)."""
        if self._unjudged:
            report[UNJUDGED_REPORT_KEY] = self._unjudged.to_json()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """The ``pass@k`` section (``passk check`` in check mode)."""
        sampling = self.settings.sampling_mode
        view = RunView(
            results=list(self._results.values()),
            summaries=self._summaries,
            comparison=self._comparison,
            ks=self.ks(),
            sampling_mode=sampling,
            # pytest 7 has no Config.get_verbosity
            verbose=int(self.config.getoption("verbose", 0) or 0) > 0,
            unjudged=self._unjudged.lines(),
            failures=self._failures,
            isolation=self._sandbox_used().isolation if self._results and sampling else "",
            counters=self.counters(),
            store=self.settings.store,
            target=self.settings.comparison.target,
        )
        write_summary(terminalreporter, view)

    def summary_lines(self) -> list[str]:
        """The ``pass@k`` rows as on the terminal (without ``-v``), for pytest-html's page."""
        results = list(self._results.values())
        rows = summary_lines(self._summaries, results, self.ks(), False) if self._summaries else []
        return [*rows, *self._unjudged.lines()]

    def counters(self) -> RunCounters:
        """Samples drawn, read and replayed, programs executed and verdicts reused: this
        process's own, plus every xdist worker's once they have finished.
        """
        own = RunCounters()
        if self.role.runs_items and self.execution.started:
            supply = self.supply
            own = self.execution.counters() + RunCounters(
                drawn=supply.drawn, reused=supply.reused, replayed=supply.replayed
            )
        return self._worker_counters + own

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """On an xdist worker, hand this worker's counters and sandbox to the controller."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[COUNTERS_KEY] = self.counters().to_json()
            info = self.execution.started_info()
            if info is not None:
                workeroutput[SANDBOX_KEY] = info.to_json()

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """On the xdist controller, tell each worker when the run began."""
        node.workerinput[STARTED_KEY] = self.started

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller, add up a finished worker's counters."""
        output = getattr(node, "workeroutput", {})
        counters = output.get(COUNTERS_KEY)
        if counters:
            self._worker_counters += RunCounters.from_json(counters)
        sandbox = output.get(SANDBOX_KEY)
        if sandbox and self._worker_sandbox is None:
            self._worker_sandbox = SandboxInfo(str(sandbox["isolation"]), sandbox["overhead_ms"])

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Release backends and sandbox workers."""
        self.supply.close()
        self.execution.close()

    # -- end of run ----------------------------------------------------------------------------

    def _finish(self, session: pytest.Session, *, interrupted: bool) -> None:
        """Aggregate and write every output; ``pytest_sessionfinish`` would be too late to fail
        the session (the pytest-cov lesson) and to add JUnit suite properties.
        """
        results = list(self._results.values())
        s = self.settings
        # An item that ended without a verdict leaves pass@k partial: never report it complete.
        interrupted = interrupted or bool(self._unjudged)
        if not results and not (interrupted and s.report is not None and s.sampling_mode):
            return
        self._summaries = summarise_models(results, self.ks()) if s.sampling_mode else []
        self._comparison = self._compare(results)
        add_suite_properties(self.config, self._summaries, self._comparison, results, self.ks())
        if s.report is not None or s.html is not None or s.plot is not None:
            sandbox = sandbox_report(self._sandbox_used(), results, self.counters())
            write_report(
                self.config,
                s,
                self._summaries,
                results,
                sandbox,
                complete=not interrupted,
                comparison=self._comparison,
            )
        if s.samples_out is not None:
            write_samples(s.samples_out, results)
        self._failures = fail_under(s, self._summaries)
        session.testsfailed += len(self._failures)

    def _compare(self, results: list[TaskResult]) -> Comparison | None:
        """Every model against the baseline, when two or more ran on shared tasks."""
        options = self.settings.comparison
        if len(self._summaries) < 2 or options.baseline is None:
            return None
        runs = runs_from_results(results, self._summaries)
        return compare(
            runs, options.baseline, self.ks(), budgets=options.budgets, target=options.target
        )


def _to_sample(item: TaskItem) -> ItemToSample:
    return ItemToSample(item.nodeid, item.model or "", item.task)
