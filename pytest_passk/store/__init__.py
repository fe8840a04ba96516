"""The sample store: every sample drawn once and kept, and every verdict judged once and kept.

See ``docs/store.md`` for the design and the console script (``pytest-passk list / export /
prune``). The pieces: :mod:`~pytest_passk.store.keys` (what identifies a sample),
:mod:`~pytest_passk.store.records` (checksummed JSONL lines), :mod:`~pytest_passk.store.locks`
(stream locks with heartbeats), :mod:`~pytest_passk.store.samples` (the files) and
:mod:`~pytest_passk.store.verdicts` (the execution cache).
"""

from __future__ import annotations

from pytest_passk.store.keys import StreamKey, concrete_model
from pytest_passk.store.locks import LOCK_HELD, StoreError, StoreLockTimeout
from pytest_passk.store.samples import REPAIRED, SampleStore, StoredSample
from pytest_passk.store.verdicts import VERDICT_REPAIRED, CachingExecutor, VerdictCache

__all__ = [
    "LOCK_HELD",
    "REPAIRED",
    "VERDICT_REPAIRED",
    "CachingExecutor",
    "SampleStore",
    "StoreError",
    "StoreLockTimeout",
    "StoredSample",
    "StreamKey",
    "VerdictCache",
    "concrete_model",
]
