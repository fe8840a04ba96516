"""Where an OpenAI backend sends its requests, and the checks before the first sample.

:class:`ServerTarget` holds the server, the model and the key (which never appears in its
``repr``); :func:`check_target` is the free check of what a run needs (the ``openai`` package, a
key unless a local server is named) and :func:`probe` the one cheap request that turns a refused
key, an unknown model or an unreachable server into :class:`~pytest_passk.errors.BackendUnavailable`
within seconds, before any sample is paid for.
"""

from __future__ import annotations

import enum
import importlib.util
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pytest_passk.errors import BackendUnavailable
from pytest_passk.prompts import PromptStyle

if TYPE_CHECKING:
    import openai

__all__ = [
    "API_NAME",
    "EXTRA_MISSING",
    "KEY_MISSING",
    "KEY_REFUSED",
    "NO_KEY_PLACEHOLDER",
    "PROBE_FAILED",
    "PROBE_TIMEOUT",
    "UNKNOWN_MODEL",
    "UNREACHABLE",
    "OpenAIEndpoint",
    "ServerTarget",
    "check_target",
    "display_url",
    "probe",
    "scrub",
]

API_NAME = "the OpenAI API"
#: Sent as the key to a server named by URL when ``OPENAI_API_KEY`` is unset (local servers
#: such as ``vllm serve`` accept any key unless started with one).
NO_KEY_PLACEHOLDER = "no-key"
#: Seconds the probe waits for an answer (connect and read).
PROBE_TIMEOUT = 3.0

EXTRA_MISSING = "the openai package is not installed; pip install 'pytest-passk[openai]'"
KEY_MISSING = (
    "OPENAI_API_KEY is not set; export your key, or name an OpenAI-compatible server that needs "
    "none with --passk-base-url=URL (or OPENAI_BASE_URL)"
)
KEY_REFUSED = "{server} refused the API key (HTTP {status}); check OPENAI_API_KEY"
UNKNOWN_MODEL = "{server} does not serve model {model!r}{offered}; check --model"
UNREACHABLE = (
    "cannot reach {server} ({reason}); start the server, or fix --passk-base-url / OPENAI_BASE_URL"
)
PROBE_FAILED = (
    "{server} answered the model check with HTTP {status}{message}; is it OpenAI-compatible?"
)

_SECRET = re.compile(r"(sk-[A-Za-z0-9*_-]{3,}|Bearer\s+\S+)")


class OpenAIEndpoint(enum.Enum):
    """Which endpoint samples come from."""

    CHAT = "chat"  # /chat/completions, for chat models
    COMPLETIONS = "completions"  # /completions (legacy), for base models continuing a prompt


@dataclass(frozen=True, slots=True)
class ServerTarget:
    """A model on a server. The key is kept out of ``repr`` (and so out of tracebacks)."""

    model: str
    endpoint: OpenAIEndpoint = OpenAIEndpoint.CHAT
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)

    @property
    def display(self) -> str:
        """The server as messages name it."""
        return display_url(self.base_url)

    @property
    def prompt_style(self) -> PromptStyle:
        """Chat for the chat endpoint, plain continuation for the completions endpoint."""
        if self.endpoint is OpenAIEndpoint.COMPLETIONS:
            return PromptStyle.COMPLETION
        return PromptStyle.CHAT

    @classmethod
    def from_environment(
        cls, model: str, endpoint: OpenAIEndpoint, base_url: str | None
    ) -> ServerTarget:
        """The target for ``model``: ``base_url`` else ``OPENAI_BASE_URL``; the key from
        ``OPENAI_API_KEY``.
        """
        url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        return cls(model, endpoint, url, os.environ.get("OPENAI_API_KEY") or None)


def check_target(target: ServerTarget) -> None:
    """What a run needs without contacting anyone: the ``openai`` package and a key.

    Raises:
        BackendUnavailable: naming the fix.

    """
    if importlib.util.find_spec("openai") is None:
        raise BackendUnavailable(EXTRA_MISSING)
    if target.api_key is None and target.base_url is None:
        raise BackendUnavailable(KEY_MISSING)


def probe(target: ServerTarget, timeout: float = PROBE_TIMEOUT) -> None:
    """Ask the server about the model once (``GET /models/{model}``, else ``GET /models``).

    A server without a model listing at all is taken at its word: the first request will tell.

    Raises:
        BackendUnavailable: for a refused key, an unknown model, no server, or a server that
            does not answer like an OpenAI-compatible one.

    """
    import openai

    client = openai.OpenAI(
        api_key=target.api_key or NO_KEY_PLACEHOLDER,
        base_url=target.base_url,
        max_retries=0,
        timeout=openai.Timeout(timeout, connect=timeout),
    )
    with client:
        try:
            client.models.retrieve(target.model)
            return
        except openai.NotFoundError:
            pass  # an unknown model, or a server without GET /models/{id}: read the list
        except openai.OpenAIError as exc:
            raise _unavailable(exc, target) from None
        try:
            served = [model.id for model in client.models.list().data]
        except openai.NotFoundError:
            return
        except openai.OpenAIError as exc:
            raise _unavailable(exc, target) from None
    if not _serves(target.model, served):
        shown = ", ".join(repr(name) for name in served[:5])
        more = f" and {len(served) - 5} more" if len(served) > 5 else ""
        offered = f" (it serves {shown}{more})" if served else " (it lists no models)"
        raise BackendUnavailable(
            UNKNOWN_MODEL.format(server=target.display, model=target.model, offered=offered)
        )


def _serves(model: str, served: Iterable[str]) -> bool:
    names = set(served)
    # Ollama lists "llama3:latest" for what users call "llama3".
    return model in names or f"{model}:latest" in names


def _unavailable(exc: openai.OpenAIError, target: ServerTarget) -> BackendUnavailable:
    import openai

    server = target.display
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return BackendUnavailable(KEY_REFUSED.format(server=server, status=exc.status_code))
    if isinstance(exc, openai.APITimeoutError):
        reason = f"no answer within {PROBE_TIMEOUT:g} s"
        return BackendUnavailable(UNREACHABLE.format(server=server, reason=reason))
    if isinstance(exc, openai.APIConnectionError):
        return BackendUnavailable(UNREACHABLE.format(server=server, reason=connection_reason(exc)))
    if isinstance(exc, openai.APIStatusError):
        message = scrub(exc.message, target.api_key)[:200]
        return BackendUnavailable(
            PROBE_FAILED.format(server=server, status=exc.status_code, message=f": {message}")
        )
    return BackendUnavailable(
        PROBE_FAILED.format(server=server, status="?", message=f": {type(exc).__name__}")
    )


def connection_reason(exc: BaseException) -> str:
    """What went wrong with a connection, briefly (``connection refused``, ``ConnectError``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for error in chain:
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        text = str(error).lower()
        for known in ("connection refused", "name or service not known", "connection reset"):
            if known in text:
                return known
    return type(chain[-1]).__name__


def scrub(text: str, api_key: str | None) -> str:
    """``text`` without the API key or anything that looks like one."""
    if api_key:
        text = text.replace(api_key, "***")
    return _SECRET.sub("***", text)


def display_url(url: str | None) -> str:
    """A base URL fit for messages: no user name, password or query; the API's name if unset."""
    if not url:
        return API_NAME
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
