"""A fault-injecting HTTP proxy for OpenAI-compatible servers, on 127.0.0.1.

It sits between a client and a real server and, for chosen completion requests (counted from 1 in
arrival order, chat and legacy alike), injects one fault:

- ``RATE_LIMIT``: answers 429 with ``retry-after`` itself; the server never sees the request.
- ``SERVER_ERROR``: answers 500 itself.
- ``DROP``: closes the connection without an answer, before forwarding.
- ``DROP_AFTER``: forwards, lets the server do the work, then closes without an answer.
- ``SLOW``: forwards, then holds the answer back for ``slow_delay`` seconds.
- ``FEWER``: halves ``n`` before forwarding (a server that returns fewer choices than asked).
- ``UNDERCOUNT``: forwards, then reports the completion tokens of one choice only.

Everything else passes through unchanged (models, files, batches). It counts what it received,
what reached the server and the usage it handed back to the client.
"""

from __future__ import annotations

import asyncio
import enum
import http.client
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit


class Fault(enum.Enum):
    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    DROP = "drop"
    DROP_AFTER = "drop-after"
    SLOW = "slow"
    FEWER = "fewer"
    UNDERCOUNT = "undercount"


#: ``plan(ordinal, request_json) -> fault or None`` for completion requests.
FaultPlan = Callable[[int, Mapping[str, Any]], "Fault | None"]


@dataclass
class ProxyStats:
    """What passed through (completion requests only, unless said otherwise)."""

    received: int = 0
    #: Completion requests that reached the server.
    forwarded: int = 0
    other_requests: int = 0
    faults: dict[Fault, int] = field(default_factory=dict)
    #: Usage as handed back to the client, summed over answered completion requests.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: Choices handed back to the client.
    choices: int = 0


_Response = tuple[int, str, list[tuple[str, str]], bytes]


class FaultProxy:
    """The proxy, serving from its own event loop in a daemon thread."""

    def __init__(
        self,
        upstream: str,
        plan: FaultPlan | Mapping[int, Fault] | None = None,
        *,
        retry_after: float = 0.2,
        slow_delay: float = 1.0,
    ) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._path_prefix = parts.path.rstrip("/")
        if plan is None:
            self._plan: FaultPlan = lambda ordinal, request: None
        elif isinstance(plan, Mapping):
            faults = dict(plan)
            self._plan = lambda ordinal, request: faults.get(ordinal)
        else:
            self._plan = plan
        self.retry_after = retry_after
        self.slow_delay = slow_delay
        self.stats = ProxyStats()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self._port = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self._path_prefix}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def open_server() -> None:
            self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
            self._port = self._server.sockets[0].getsockname()[1]

        self._loop.run_until_complete(open_server())
        self._ready.set()
        self._loop.run_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
                clean = [(k.strip(), v.strip()) for k, v in headers]
                length = int(next((v for k, v in clean if k.lower() == "content-length"), "0"))
                body = await reader.readexactly(length) if length else b""
                response = await self._answer(method, path, clean, body)
                if response is None:
                    return  # dropped: close without a word
                writer.write(_encode(response))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()

    async def _answer(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Response | None:
        if not (method == "POST" and path.split("?")[0].endswith("completions")):
            with self._lock:
                self.stats.other_requests += 1
            return await asyncio.to_thread(self._forward, method, path, headers, body)
        request = json.loads(body)
        with self._lock:
            self.stats.received += 1
            ordinal = self.stats.received
        fault = self._plan(ordinal, request)
        if fault is not None:
            with self._lock:
                self.stats.faults[fault] = self.stats.faults.get(fault, 0) + 1
        if fault is Fault.RATE_LIMIT:
            return _json_response(
                429,
                {"error": {"message": "Rate limit reached", "type": "requests", "code": None}},
                [("retry-after", f"{self.retry_after:g}")],
            )
        if fault is Fault.SERVER_ERROR:
            return _json_response(500, {"error": {"message": "injected", "type": "server_error"}})
        if fault is Fault.DROP:
            return None
        if fault is Fault.FEWER:
            request["n"] = max(1, int(request.get("n") or 1) // 2)
            body = json.dumps(request).encode()
        with self._lock:
            self.stats.forwarded += 1
        status, reason, out_headers, out_body = await asyncio.to_thread(
            self._forward, method, path, headers, body
        )
        if fault is Fault.DROP_AFTER:
            return None
        if fault is Fault.SLOW:
            await asyncio.sleep(self.slow_delay)
        if status == 200:
            answer = json.loads(out_body)
            usage = answer.get("usage") or {}
            choices = len(answer.get("choices") or [])
            if fault is Fault.UNDERCOUNT and usage and choices:
                usage["completion_tokens"] = usage["completion_tokens"] // choices
                usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                out_body = json.dumps(answer).encode()
            with self._lock:
                self.stats.prompt_tokens += int(usage.get("prompt_tokens") or 0)
                self.stats.completion_tokens += int(usage.get("completion_tokens") or 0)
                self.stats.choices += choices
        return status, reason, out_headers, out_body

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> _Response:
        connection = http.client.HTTPConnection(*self._upstream, timeout=600)
        try:
            skip = {"host", "content-length", "connection", "accept-encoding"}
            sent = {k: v for k, v in headers if k.lower() not in skip}
            sent["content-length"] = str(len(body))
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            data = response.read()
            kept = [
                (k, v)
                for k, v in response.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            ]
            return response.status, response.reason, kept, data
        finally:
            connection.close()


def _json_response(
    status: int, payload: Any, headers: list[tuple[str, str]] | None = None
) -> _Response:
    body = json.dumps(payload).encode()
    reason = http.client.responses.get(status, "")
    return status, reason, [("content-type", "application/json"), *(headers or [])], body


def _encode(response: _Response) -> bytes:
    status, reason, headers, body = response
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
