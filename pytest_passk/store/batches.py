"""Pending Batch API jobs, remembered in the store so that a later run collects what it paid for.

``<store>/batches/openai.jsonl`` holds one checksummed record per batch that was submitted and not
yet collected: its id, the server (never a key), the model and which samples each request line
asks for. A run that ends while a batch is pending leaves it here; the next run polls it instead of
submitting the same requests again. A record is removed once its results are in the sample store
(or the batch ended without them: then its samples are missing and the next run asks again).

Writers hold ``openai.lock`` (a :mod:`filelock`) while they read, change and replace the file, so
pytest-xdist workers and concurrent runs never lose each other's batches.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import filelock

from pytest_passk.store.records import parse_file, write_atomically

__all__ = ["BatchEntry", "BatchLedger", "PendingBatch"]

LEDGER_DIR = "batches"


@dataclass(frozen=True, slots=True)
class BatchEntry:
    """One request line of a batch: samples ``start`` .. ``start + n - 1`` of one stream."""

    custom_id: str
    #: Digest of everything that identifies the samples (model, parameters, task, prompt).
    stream: str
    task_id: str
    start: int
    n: int

    @property
    def indices(self) -> range:
        """The sample indices this line asks for."""
        return range(self.start, self.start + self.n)


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch submitted and not yet collected."""

    batch_id: str
    server: str
    model: str
    endpoint: str
    input_file_id: str
    submitted_at: float
    entries: tuple[BatchEntry, ...]

    def to_record(self) -> dict[str, Any]:
        """As a store record."""
        return {
            "batch_id": self.batch_id,
            "server": self.server,
            "model": self.model,
            "endpoint": self.endpoint,
            "input_file_id": self.input_file_id,
            "submitted_at": self.submitted_at,
            "entries": [[e.custom_id, e.stream, e.task_id, e.start, e.n] for e in self.entries],
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> PendingBatch | None:
        """From a store record; ``None`` when it is not one."""
        try:
            entries = tuple(
                BatchEntry(str(c), str(s), str(t), int(a), int(n))
                for c, s, t, a, n in record["entries"]
            )
            return cls(
                batch_id=str(record["batch_id"]),
                server=str(record["server"]),
                model=str(record["model"]),
                endpoint=str(record["endpoint"]),
                input_file_id=str(record["input_file_id"]),
                submitted_at=float(record["submitted_at"]),
                entries=entries,
            )
        except (KeyError, TypeError, ValueError):
            return None


class BatchLedger:
    """The pending batches of one store."""

    def __init__(self, root: Path, name: str = "openai") -> None:
        self.path = root / LEDGER_DIR / f"{name}.jsonl"
        self._lock_path = self.path.with_suffix(".lock")

    def pending(self) -> list[PendingBatch]:
        """Every pending batch (damaged records are skipped; their batches are lost to us)."""
        found = []
        for _, record in parse_file(self.path).records:
            batch = PendingBatch.from_record(record)
            if batch is not None:
                found.append(batch)
        return found

    def add(self, batch: PendingBatch) -> None:
        """Remember a submitted batch (before anything else can go wrong)."""
        with self._locked():
            batches = [b for b in self.pending() if b.batch_id != batch.batch_id]
            write_atomically(self.path, [b.to_record() for b in [*batches, batch]])

    def remove(self, batch_id: str) -> None:
        """Forget a batch whose results are collected (or lost for good)."""
        with self._locked():
            batches = self.pending()
            kept = [b.to_record() for b in batches if b.batch_id != batch_id]
            if len(kept) != len(batches):
                write_atomically(self.path, kept)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with filelock.FileLock(self._lock_path):
            yield
