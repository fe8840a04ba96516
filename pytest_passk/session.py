"""The run's plugin object: who does what where, and the hooks that tie the phases together.

:class:`PassKSession` is registered in ``pytest_configure`` (the pytest-xdist ``DSession``
pattern). Processes that run items (the only process, or each xdist worker) start the sandbox
pool, draw samples for their selected items up front (:mod:`pytest_passk.supply`), queue every
program on the pool, then judge each item (:mod:`pytest_passk.runner`). The process that owns the
terminal (the only process, or the xdist controller) receives every item's
:class:`~pytest_passk.results.TaskResult` on its test report, aggregates, and writes the outputs
(:mod:`pytest_passk.outputs`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator
from typing import Any

import pytest

from pytest_passk.collect import TaskItem
from pytest_passk.estimate import ModelSummary, summarise_models
from pytest_passk.outputs import add_suite_properties, fail_under, write_report, write_samples
from pytest_passk.progress import Progress
from pytest_passk.report import summary_lines
from pytest_passk.results import TaskResult
from pytest_passk.runner import RESULT_KEY, ItemRunner
from pytest_passk.settings import Settings
from pytest_passk.stash import SESSION_KEY
from pytest_passk.supply import SampleSupply

__all__ = [
    "REPLAYED_TOO",
    "REPLAY_SUMMARY",
    "REPORT_ATTRIBUTE",
    "STORE_SUMMARY",
    "PassKSession",
    "session_of",
]

#: Key of the plain-JSON task result on a test report (survives pytest-xdist serialisation).
REPORT_ATTRIBUTE = "passk"
STORE_SUMMARY = (
    "passk store {root}: {drawn} samples drawn, {reused} read from the store; "
    "{executed} programs executed, {cached} verdicts from the cache"
)
FAIL_UNDER_IGNORED = (
    "passk: --passk-fail-under is ignored in check mode (it gates pass@k; add --passk=K)"
)
#: Key of a worker's counters in xdist's ``workeroutput``.
COUNTERS_KEY = "passk_counters"
REPLAY_SUMMARY = (
    "passk: {replayed} samples replayed from recordings (not stored); "
    "{executed} programs executed, {cached} verdicts from the cache"
)
#: After :data:`STORE_SUMMARY` when some models were replayed and others drawn.
REPLAYED_TOO = "passk: and {replayed} samples replayed from recordings (not stored)"


def session_of(config: pytest.Config) -> PassKSession:
    """The run's session object."""
    return config.stash[SESSION_KEY]


class PassKSession:
    """State and hooks of one pytest-passk run."""

    def __init__(self, config: pytest.Config, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.progress = Progress(config, enabled=not self.is_worker)
        self.supply = SampleSupply(config, settings, self.progress, fail_items=self.is_worker)
        self.runner = ItemRunner(settings, self.supply, self.progress, runs_items=self.runs_items)
        self._results: dict[str, TaskResult] = {}
        self._worker_counters: Counter[str] = Counter()
        self._summaries: list[ModelSummary] = []
        self._failures: list[str] = []

    # -- roles ---------------------------------------------------------------------------------

    @property
    def is_worker(self) -> bool:
        """Whether this process is a pytest-xdist worker."""
        return hasattr(self.config, "workerinput")

    @property
    def runs_items(self) -> bool:
        """Whether this process runs items (not the xdist controller)."""
        return not self.config.pluginmanager.has_plugin("dsession")

    def run_item(self, item: TaskItem) -> None:
        """Judge one item (called from :meth:`TaskItem.runtest`)."""
        model = next((m for m in self.settings.models if m.label == item.model), None)
        self.runner.run(item, model)

    # -- hooks ---------------------------------------------------------------------------------

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """In sampling mode, start the sandbox pool now: before any backend loads a model
        (forking stays cheap and never copies model memory), and before the header that reports
        its isolation; then check every model (a usage error before collection). Check mode
        loads no model: its pool starts once tasks are collected.
        """
        if self.settings.sampling_mode and not self.config.option.collectonly:
            self.runner.isolation()
        if self.settings.sampling_mode:
            # After the pool: a plugin's backend is built here, and may load a model.
            self.supply.check_models()

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
            self._sandbox_header(),
        ]

    def _sandbox_header(self) -> str:
        if self.config.option.collectonly:
            return "passk: sandbox not started (--collect-only)"
        isolation = self.runner.isolation()
        return (
            f"passk: isolation={isolation}, overhead={self.runner.overhead_ms()} ms per candidate"
        )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Check mode: start the pool only when there are tasks, and say how it isolates."""
        if self.settings.sampling_mode or self.config.option.collectonly:
            return
        if not self.runs_items or not any(isinstance(i, TaskItem) for i in session.items):
            return
        self.runner.isolation()
        self.progress.say(self._sandbox_header(), force=True)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        """Generate and queue before items run; aggregate after every report is in.

        Only a process that runs every selected item does the batched generation phase and
        queues every program up front. An xdist worker cannot know which items it will be sent,
        so each of its items draws its own samples (one request set of n per task, through the
        store) and runs them when it runs: no sample is drawn or executed twice across workers.
        """
        collect_failed = (
            session.testsfailed and not self.config.option.continue_on_collection_errors
        )
        if (
            self.settings.sampling_mode
            and self.runs_items
            and not self.is_worker
            and not self.config.option.collectonly
            and not collect_failed
        ):
            items = [item for item in session.items if isinstance(item, TaskItem)]
            self.supply.generate([(i.nodeid, i.model or "", i.task) for i in items])
            self.runner.prefetch(items)
        elif (
            not self.settings.sampling_mode
            and self.runs_items
            and not self.is_worker
            and not self.config.option.collectonly
            and not collect_failed
            and self.runner.started
        ):
            # Check mode: every reference queued up front, so the pool's workers all run.
            self.runner.prefetch_references(
                [item for item in session.items if isinstance(item, TaskItem)]
            )
        interrupted = False
        try:
            return (yield)
        except BaseException:  # Ctrl-C, -x: still report what ran, and say it is partial
            interrupted = True
            raise
        finally:
            if not self.is_worker and not self.config.option.collectonly:
                self._finish(session, interrupted=interrupted or bool(session.shouldstop))

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
        """The ``pass@k`` section (``passk check`` in check mode)."""
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
        terminalreporter.write_line(f"sandbox: isolation={self.runner.isolation()}")
        counters = self.counters()
        if "executed" in counters:
            stored = counters["drawn"] or counters["reused"]
            template = STORE_SUMMARY if stored else REPLAY_SUMMARY
            terminalreporter.write_line(template.format(root=self.settings.store, **counters))
            if stored and counters["replayed"]:
                terminalreporter.write_line(REPLAYED_TOO.format(**counters))

    def counters(self) -> Counter[str]:
        """Samples drawn, read and replayed, programs executed and verdicts reused: this
        process's own, plus every xdist worker's once they have finished.
        """
        totals = Counter(self._worker_counters)
        if self.runs_items and self.runner.started:
            supply, executor = self.supply, self.runner.executor
            totals.update(
                drawn=supply.drawn,
                reused=supply.reused,
                replayed=supply.replayed,
                executed=executor.executed,
                cached=executor.reused,
                **self.runner.pool_counters(),
            )
        return totals

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """On an xdist worker, hand this worker's counters to the controller."""
        workeroutput = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[COUNTERS_KEY] = dict(self.counters())

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """On the xdist controller, add up a finished worker's counters."""
        counters = getattr(node, "workeroutput", {}).get(COUNTERS_KEY)
        if counters:
            self._worker_counters.update(counters)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """Release backends and sandbox workers."""
        self.supply.close()
        self.runner.close()

    # -- end of run ----------------------------------------------------------------------------

    def _finish(self, session: pytest.Session, *, interrupted: bool) -> None:
        """Aggregate and write every output; ``pytest_sessionfinish`` would be too late to fail
        the session (the pytest-cov lesson) and to add JUnit suite properties.
        """
        results = list(self._results.values())
        if not results:
            return
        s = self.settings
        self._summaries = summarise_models(results, s.ks or (1,)) if s.sampling_mode else []
        add_suite_properties(self.config, self._summaries)
        if s.report is not None:
            sandbox = self.runner.sandbox_report(results, self.counters())
            complete = not interrupted
            write_report(s.report, s, self._summaries, results, sandbox, complete=complete)
        if s.samples_out is not None:
            write_samples(s.samples_out, results)
        self._failures = fail_under(s, self._summaries)
        session.testsfailed += len(self._failures)
