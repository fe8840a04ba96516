"""A pytest plugin for :mod:`benchmarks.startup`: notes when each phase of the run begins, in
seconds since the launcher started the process (``PASSK_BENCH_T0``), and the CPU seconds the
process (and its reaped children) used so far, in the file named by ``PASSK_BENCH_MARKS`` (a
file, because pytest captures the output of a running test).
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Generator

import pytest


def _say(phase: str) -> None:
    started = float(os.environ.get("PASSK_BENCH_T0", "0"))
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    with open(os.environ["PASSK_BENCH_MARKS"], "a", encoding="utf-8") as marks:
        marks.write(f"{phase} {time.time() - started:.4f} {cpu:.4f}\n")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _say("configure")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    _say("sessionstart")


@pytest.hookimpl(trylast=True)
def pytest_collection(session: pytest.Session) -> None:
    _say("collection")  # every sessionstart (the plugin's model check) is done


def pytest_collection_finish(session: pytest.Session) -> None:
    _say("collected")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    _say("runtestloop")
    try:
        return (yield)
    finally:
        _say("ran")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    _say("call")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _say("unconfigure")
