"""Store keys: which samples are interchangeable, spelled out field by field.

A sample is identified by its *stream* (concrete model, every sampling parameter, task id and the
rendered prompt with its stop sequences and template version) and its index in that stream. The
key is built from the dataclasses' fields generically, so a field added to
:class:`~pytest_passk.backends.SamplingParams` or :class:`~pytest_passk.prompts.RenderedPrompt`
enters the key without anyone remembering to add it here (the known trap: a key missing one
parameter serves stale samples).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from pytest_passk.backends import SamplingParams
from pytest_passk.prompts import RenderedPrompt

__all__ = ["StreamKey", "canonical_json", "concrete_model", "digest", "plain"]

#: Bump when the meaning of a stored record changes; old groups then stop matching.
STORE_SCHEMA = "pytest-passk/store/v1"
_SLUG = re.compile(r"[^A-Za-z0-9._-]+")


def plain(value: Any) -> Any:
    """``value`` as JSON data: dataclasses by field, enums by value, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, tuple | list):
        return [plain(item) for item in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces (what :func:`digest` hashes)."""
    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``, hex."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def concrete_model(provider: str, backend_model: str) -> str:
    """``provider:model`` for the model a backend reports (once, if it already says it)."""
    if backend_model.startswith(provider + ":"):
        return backend_model
    return f"{provider}:{backend_model}"


@dataclass(frozen=True, slots=True)
class StreamKey:
    """The samples of one task from one model under one parameter set, indexed from 0.

    Sample ``i`` of a stream is the same sample whatever ``n`` a run asks for.
    """

    model: str
    params: SamplingParams
    task_id: str
    prompt: RenderedPrompt

    def group_fields(self) -> dict[str, Any]:
        """What a *group* (model and parameter set; the unit of listing and pruning) is."""
        return {"schema": STORE_SCHEMA, "model": self.model, "params": plain(self.params)}

    def fields(self) -> dict[str, Any]:
        """Every field of the key, as JSON data (written in each stream's header)."""
        return {**self.group_fields(), "task_id": self.task_id, "prompt": plain(self.prompt)}

    @property
    def group_id(self) -> str:
        """Directory name of the group: a readable model slug and a hash of everything."""
        slug = _SLUG.sub("_", self.model).strip("_")[-48:]
        return f"{slug}-{digest(self.group_fields())[:12]}"

    @property
    def stream_id(self) -> str:
        """File name stem of the stream."""
        return digest(self.fields())[:32]
