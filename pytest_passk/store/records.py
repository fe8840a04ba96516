"""The on-disk record format: one JSON object a line, followed by a tab and its CRC-32.

A line is trusted only when it ends in a newline and its checksum matches, so a record torn by a
crash, a disk that filled up, or an edit by hand is detected and dropped, never half-read. JSON
escapes tabs and newlines inside strings, so the last tab of a line always separates the checksum.
Each record is written with one ``write`` on an ``O_APPEND`` descriptor: a ``kill -9`` can stop a
run between two records but not inside one, and what was written is in the page cache, so it
survives the process (an ``fsync`` when a stream is closed covers power loss of all but the tail,
which the checksum then catches).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["ParsedFile", "append_record", "encode", "parse_file", "write_atomically"]


def encode(record: Mapping[str, Any]) -> bytes:
    """One line: compact JSON, a tab, eight hex digits of CRC-32, a newline."""
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return body + b"\t" + b"%08x" % zlib.crc32(body) + b"\n"


def decode(line: bytes) -> dict[str, Any] | None:
    """The record of a complete line (without its newline), or ``None`` when it is damaged."""
    body, tab, checksum = line.rpartition(b"\t")
    if not tab or len(checksum) != 8:
        return None
    try:
        if int(checksum, 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


@dataclass(slots=True)
class ParsedFile:
    """The trustworthy records of a file with their 1-based line numbers, and the damaged lines."""

    records: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    bad_lines: list[int] = field(default_factory=list)


def parse_file(path: Path) -> ParsedFile:
    """Read every record of ``path`` (an absent file has none)."""
    parsed = ParsedFile()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return parsed
    lines = data.split(b"\n")
    # Whatever follows the last newline is a record whose write never finished.
    tail = lines.pop()
    for number, line in enumerate(lines, start=1):
        record = decode(line)
        if record is None:
            parsed.bad_lines.append(number)
        else:
            parsed.records.append((number, record))
    if tail:
        parsed.bad_lines.append(len(lines) + 1)
    return parsed


def append_record(fd: int, record: Mapping[str, Any]) -> None:
    """Append one record with a single ``write`` (``fd`` is opened with ``O_APPEND``)."""
    data = encode(record)
    written = os.write(fd, data)
    if written != len(data):  # pragma: no cover - a full disk; the checksum marks the torn line
        raise OSError(f"short write: {written} of {len(data)} bytes")


def write_atomically(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    """Replace ``path`` with ``records`` in one step: a temporary file, ``fsync``, ``rename``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name per writer: threads and processes may replace the same file at once.
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(fd, "wb") as stream:
            for record in records:
                stream.write(encode(record))
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
