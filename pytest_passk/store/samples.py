"""The sample store on disk: one append-only JSONL file per stream, grouped by model and parameters.

Layout under the store root (``--passk-store``, default ``.passk/``)::

    samples/<model-slug>-<hash>/           a group: one model under one parameter set
        group.json                         the group's model and parameters
        <stream>.jsonl                     a header line, then one sample a line, any index order
        <stream>.lock, <stream>.beat       who is drawing the stream's missing samples
    verdicts/<xx>.jsonl                    cached execution verdicts (pytest_passk.sandbox.cache)

Readers need no lock: records are whole lines with checksums, so a reader skips a line still being
written like any damaged one. Writers and repairs hold the stream's lock.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pytest_passk.backends import Completion
from pytest_passk.prompts import CompletionForm
from pytest_passk.store.keys import StreamKey
from pytest_passk.store.locks import DEFAULT_LOCK_TIMEOUT, StoreError, StreamLock
from pytest_passk.store.records import append_record, parse_file, write_atomically

__all__ = ["REPAIRED", "GroupInfo", "SampleStore", "StoredSample", "StreamInfo", "StreamWriter"]

REPAIRED = (
    "sample store file {path}: dropped {count} damaged record(s) (line {lines}); "
    "the samples they held are drawn again"
)
UNWRITABLE = (
    "cannot write the sample store {root}: {error}; fix its permissions or pass --passk-store=DIR"
)
GROUP_FILE = "group.json"


@dataclass(frozen=True, slots=True)
class StoredSample:
    """A sample as kept: the backend's completion, the program extracted from it, when drawn."""

    index: int
    completion: Completion
    code: str | None
    drawn_at: float


@dataclass(slots=True)
class StreamInfo:
    """What one stream file holds (for listing, export and pruning)."""

    path: Path
    header: dict[str, Any] | None
    samples: dict[int, StoredSample]
    bad_lines: list[int]

    @property
    def task_id(self) -> str:
        """The stream's task (``?`` when its header is damaged)."""
        return str((self.header or {}).get("task_id", "?"))


@dataclass(slots=True)
class GroupInfo:
    """One model under one parameter set."""

    path: Path
    model: str
    params: dict[str, Any]
    streams: list[StreamInfo] = field(default_factory=list)

    @property
    def group_id(self) -> str:
        """The group's directory name."""
        return self.path.name


class SampleStore:
    """Samples kept under ``root``; see the module docstring for the layout."""

    def __init__(
        self,
        root: Path,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self._warn = warn or (lambda message: None)

    @property
    def samples_dir(self) -> Path:
        """Where the groups live."""
        return self.root / "samples"

    def stream_path(self, key: StreamKey) -> Path:
        """The file of ``key``'s stream."""
        return self.samples_dir / key.group_id / f"{key.stream_id}.jsonl"

    def lock(self, key: StreamKey) -> StreamLock:
        """The lock of ``key``'s stream (its directory is created on the way)."""
        path = self.stream_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(UNWRITABLE.format(root=self.root, error=exc)) from exc
        return StreamLock(path.with_suffix(".lock"), store=self.root, timeout=self.lock_timeout)

    def group_lock(self, key: StreamKey) -> StreamLock:
        """The lock of ``key``'s whole group (one model with one set of sampling parameters).

        Held by whoever draws missing samples of the group, for the whole draw: a second process
        (another xdist worker, a concurrent run) waits, then finds the samples in the store, so
        a model is loaded once per run however many processes want its samples.
        """
        path = self.samples_dir / key.group_id / "group"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(UNWRITABLE.format(root=self.root, error=exc)) from exc
        return StreamLock(path.with_suffix(".lock"), store=self.root, timeout=self.lock_timeout)

    def read(self, key: StreamKey) -> dict[int, StoredSample]:
        """The stream's intact samples by index (no lock needed; damaged lines are skipped)."""
        return _read_stream(self.stream_path(key)).samples

    def repair(self, key: StreamKey) -> dict[int, StoredSample]:
        """Like :meth:`read`, and rewrite the file without damaged lines, with a warning.

        Call only while holding the stream's lock.
        """
        path = self.stream_path(key)
        info = _read_stream(path)
        if info.bad_lines or (info.header is None and path.exists()):
            records: list[dict[str, Any]] = [_header(key)]
            records += [_sample_record(s) for s in sorted(info.samples.values(), key=_index)]
            write_atomically(path, records)
            if info.bad_lines:
                lines = ", ".join(map(str, info.bad_lines[:10]))
                more = f" and {len(info.bad_lines) - 10} more" if len(info.bad_lines) > 10 else ""
                self._warn(
                    REPAIRED.format(path=path, count=len(info.bad_lines), lines=lines + more)
                )
        return info.samples

    def writer(self, key: StreamKey) -> StreamWriter:
        """Append samples to ``key``'s stream; call only while holding its lock."""
        path = self.stream_path(key)
        group_file = path.parent / GROUP_FILE
        try:
            if not group_file.exists():
                write_atomically(group_file, [key.group_fields()])
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(UNWRITABLE.format(root=self.root, error=exc)) from exc
        if os.fstat(fd).st_size == 0:
            append_record(fd, _header(key))
        return StreamWriter(fd)

    # -- inspection (the console script) ---------------------------------------------------------

    def groups(self) -> list[GroupInfo]:
        """Every group in the store with its streams, sorted by model."""
        found: list[GroupInfo] = []
        if not self.samples_dir.is_dir():
            return found
        for directory in sorted(self.samples_dir.iterdir()):
            if not directory.is_dir():
                continue
            meta = parse_file(directory / GROUP_FILE).records
            head = meta[0][1] if meta else {}
            group = GroupInfo(directory, str(head.get("model", "?")), dict(head.get("params", {})))
            for path in sorted(directory.glob("*.jsonl")):
                group.streams.append(_read_stream(path))
            group.streams.sort(key=lambda s: s.task_id)
            found.append(group)
        return sorted(found, key=lambda g: (g.model, json.dumps(g.params, sort_keys=True)))

    def remove_group(self, group: GroupInfo) -> None:
        """Delete a group, refusing while another process draws one of its streams.

        Raises:
            StoreError: when one of the group's stream locks is held.

        """
        locks = [
            StreamLock(path, store=self.root, timeout=self.lock_timeout)
            for path in sorted(group.path.glob("*.lock"))
        ]
        taken: list[StreamLock] = []
        try:
            for lock in locks:
                if not lock.try_acquire():
                    raise StoreError(
                        f"{lock.path} is held: a pytest-passk run is drawing samples of "
                        f"{group.model}; prune again when it has finished"
                    )
                taken.append(lock)
            shutil.rmtree(group.path)
        finally:
            for lock in taken:
                lock.release()


class StreamWriter:
    """Appends sample records to one stream file, one ``write`` each."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def append(self, index: int, completion: Completion, code: str | None) -> StoredSample:
        """Keep sample ``index``; it is on disk (page cache) when this returns."""
        sample = StoredSample(index, completion, code, time.time())
        append_record(self._fd, _sample_record(sample))
        return sample

    def close(self) -> None:
        """Flush to disk and close."""
        try:
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def _index(sample: StoredSample) -> int:
    return sample.index


def _header(key: StreamKey) -> dict[str, Any]:
    return {"kind": "header", **key.fields(), "created": time.time()}


def _sample_record(sample: StoredSample) -> dict[str, Any]:
    c = sample.completion
    return {
        "kind": "sample",
        "i": sample.index,
        "text": c.text,
        "form": c.form.value,
        "code": sample.code,
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "finish_reason": c.finish_reason,
        "latency": c.latency,
        "meta": dict(c.metadata),
        "at": sample.drawn_at,
    }


def _read_stream(path: Path) -> StreamInfo:
    parsed = parse_file(path)
    info = StreamInfo(path, None, {}, parsed.bad_lines)
    for line, record in parsed.records:
        kind = record.get("kind")
        if kind == "header" and info.header is None:
            info.header = record
        elif kind == "sample":
            sample = _to_sample(record)
            if sample is None:
                info.bad_lines.append(line)  # intact line, impossible content: drop it too
            elif sample.index not in info.samples:
                info.samples[sample.index] = sample
    return info


def _to_sample(record: Mapping[str, Any]) -> StoredSample | None:
    try:
        index = record["i"]
        text = record["text"]
        if not isinstance(index, int) or index < 0 or not isinstance(text, str):
            return None
        meta = record.get("meta") or {}
        completion = Completion(
            text=text,
            form=CompletionForm(record["form"]),
            prompt_tokens=int(record.get("prompt_tokens") or 0),
            completion_tokens=int(record.get("completion_tokens") or 0),
            finish_reason=record.get("finish_reason"),
            latency=float(record.get("latency") or 0.0),
            metadata=dict(meta) if isinstance(meta, dict) else {},
        )
        code = record.get("code")
        return StoredSample(
            index, completion, code if isinstance(code, str) else None, float(record["at"])
        )
    except (KeyError, TypeError, ValueError):
        return None


def iter_samples(group: GroupInfo) -> Iterator[tuple[StreamInfo, StoredSample]]:
    """Every intact sample of ``group``, by task and index."""
    for stream in group.streams:
        for index in sorted(stream.samples):
            yield stream, stream.samples[index]
