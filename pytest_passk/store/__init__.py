"""The sample store: every sample drawn once and kept, and every verdict judged once and kept.

See ``docs/store.md`` for the design and the console script (``pytest-passk list / export /
prune``). The pieces: :mod:`~pytest_passk.store.keys` (what identifies a sample),
:mod:`~pytest_passk.store.records` (checksummed JSONL lines), :mod:`~pytest_passk.store.locks`
(stream locks with heartbeats) and :mod:`~pytest_passk.store.samples` (the files). The verdict
cache, which keeps its files in the store's directory, is the sandbox's:
:mod:`pytest_passk.sandbox.cache`. The store never imports the sandbox.
"""

from __future__ import annotations

from pytest_passk.store.keys import StreamKey, concrete_model
from pytest_passk.store.locks import LOCK_HELD, StoreError, StoreLockTimeout
from pytest_passk.store.samples import REPAIRED, SampleStore, StoredSample

__all__ = [
    "LOCK_HELD",
    "REPAIRED",
    "SampleStore",
    "StoreError",
    "StoreLockTimeout",
    "StoredSample",
    "StreamKey",
    "concrete_model",
]
