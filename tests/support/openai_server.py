"""A small OpenAI-compatible HTTP server on 127.0.0.1, scripted for tests.

It speaks the documented shapes of ``GET /v1/models[/{id}]``, ``POST /v1/chat/completions``,
``POST /v1/completions`` and the Batch API (``POST /v1/files``, ``GET /v1/files/{id}/content``,
``POST /v1/batches``, ``GET /v1/batches/{id}``, ``POST /v1/batches/{id}/cancel``). Answers are
deterministic: choice ``i`` of a request with seed ``s`` says ``s`` and ``i``, so tests can tell
samples apart. Every completion request is logged (prompt, n, seed) with the usage it reported.

Run it in a thread (:meth:`ScriptedOpenAI.start`) or as a process:
``python -m tests.support.openai_server --port 0 --model NAME`` prints its port.
"""

from __future__ import annotations

import argparse
import contextlib
import email.parser
import email.policy
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: ``(prompt text, choice index, seed) -> answer``.
Responder = Callable[[str, int, int], str]


def default_answer(prompt: str, choice: int, seed: int) -> str:
    """A chat answer with a function that returns its argument (``def f(x)``), and its origin."""
    name = "f"
    if "def " in prompt:
        name = prompt.split("def ", 1)[1].split("(", 1)[0].strip() or "f"
    return f"```python\ndef {name}(x):\n    return x  # seed {seed} choice {choice}\n```\n"


@dataclass
class LoggedRequest:
    """One completion request as the server saw it."""

    path: str
    prompt: str
    n: int
    seed: int | None
    choices: int
    prompt_tokens: int
    completion_tokens: int


@dataclass
class ScriptState:
    """What the server serves and what it has seen (shared by its handler threads)."""

    models: list[str]
    api_key: str | None = None
    delay: float = 0.0
    max_n: int | None = None
    responder: Responder = default_answer
    #: Answer ``GET /v1/models/{id}`` (vLLM does not; OpenAI and Ollama do).
    retrieve: bool = True
    log: list[LoggedRequest] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: How batches end when polled: "completed", "expired", "cancelled" or "in_progress".
    batch_outcome: str = "completed"
    #: Expired batches answer only this many of their requests.
    expire_after: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock)
    connections: list[socket.socket] = field(default_factory=list)

    @property
    def completion_requests(self) -> int:
        return len(self.log)


class ScriptedOpenAI:
    """The server, in a daemon thread."""

    def __init__(self, models: list[str] | None = None, **options: Any) -> None:
        self.state = ScriptState(models or ["scripted-model"], **options)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> ScriptedOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop like a killed server: no new connections, and the open ones cut."""
        self._httpd.shutdown()
        self._httpd.server_close()
        with self.state.lock:
            for connection in self.state.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> ScriptedOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    state: ScriptState
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.state.lock:
            self.state.connections.append(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing --------------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
        self._send(status, {"error": error})

    def _body(self) -> bytes:
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _authorized(self) -> bool:
        key = self.state.api_key
        if key is None:
            return True
        given = (self.headers.get("authorization") or "").removeprefix("Bearer ").strip()
        if given == key:
            return True
        # Like OpenAI: the refusal echoes part of the key that was sent.
        masked = given[:6] + "*" * 10 + given[-4:]
        self._error(401, f"Incorrect API key provided: {masked}.", "invalid_api_key")
        return False

    # -- routes ----------------------------------------------------------------------------------

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?")[0]
        if path == "/v1/models":
            data = [_model(name) for name in self.state.models]
            self._send(200, {"object": "list", "data": data})
        elif path.startswith("/v1/models/") and self.state.retrieve:
            name = path.removeprefix("/v1/models/")
            if name in self.state.models:
                self._send(200, _model(name))
            else:
                self._error(404, f"The model '{name}' does not exist", "model_not_found")
        elif path.startswith("/v1/files/") and path.endswith("/content"):
            file_id = path.removeprefix("/v1/files/").removesuffix("/content")
            content = self.state.files.get(file_id)
            if content is None:
                self._error(404, f"No such File object: {file_id}")
            else:
                self._send(200, content, "application/octet-stream")
        elif path.startswith("/v1/batches/"):
            self._poll_batch(path.removeprefix("/v1/batches/"))
        else:
            self._error(404, "Not Found")

    def do_POST(self) -> None:
        body = self._body()
        if not self._authorized():
            return
        path = self.path.split("?")[0]
        if path in ("/v1/chat/completions", "/v1/completions"):
            status, payload = self._complete(path, json.loads(body))
            self._send(status, payload)
        elif path == "/v1/files":
            self._upload(body)
        elif path == "/v1/batches":
            self._create_batch(json.loads(body))
        elif path.startswith("/v1/batches/") and path.endswith("/cancel"):
            batch = self.state.batches.get(path.split("/")[3])
            if batch is None:
                self._error(404, "No such batch")
            else:
                batch["status"] = "cancelled"
                self._send(200, batch)
        else:
            self._error(404, "Not Found")

    # -- completions -----------------------------------------------------------------------------

    def _complete(self, path: str, request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        state = self.state
        if request.get("model") not in state.models:
            return 404, {"error": {"message": "model not found", "code": "model_not_found"}}
        if state.delay:
            time.sleep(state.delay)
        n = int(request.get("n") or 1)
        if state.max_n is not None and n > state.max_n:
            n = state.max_n  # like Ollama: fewer choices than asked, no error
        seed = request.get("seed")
        chat = path.endswith("/chat/completions")
        messages = request.get("messages") or []
        prompt = "\n".join(m["content"] for m in messages) if chat else request["prompt"]
        max_tokens = int(request.get("max_tokens") or 16)
        choices = []
        completion_tokens = 0
        for i in range(n):
            text = state.responder(prompt, i, int(seed or 0))
            words = text.split()
            finish = "stop"
            if len(words) > max_tokens:
                text, finish = " ".join(words[:max_tokens]), "length"
            completion_tokens += min(len(words), max_tokens) + 1
            if chat:
                message = {"role": "assistant", "content": text}
                choices.append({"index": i, "message": message, "finish_reason": finish})
            else:
                choices.append({"index": i, "text": text, "finish_reason": finish})
        prompt_tokens = len(prompt.split()) + 3
        with state.lock:
            state.log.append(
                LoggedRequest(path, prompt, n, seed, n, prompt_tokens, completion_tokens)
            )
            number = len(state.log)
        return 200, {
            "id": f"cmpl-{number}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": request["model"],
            "system_fingerprint": "fp_scripted",
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    # -- files and batches -----------------------------------------------------------------------

    def _upload(self, body: bytes) -> None:
        content_type = self.headers.get("content-type", "")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        content = b""
        purpose = ""
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if not isinstance(payload, bytes):
                continue
            if name == "file":
                content = payload
            elif name == "purpose":
                purpose = payload.decode()
        with self.state.lock:
            file_id = f"file-{len(self.state.files) + 1}"
            self.state.files[file_id] = content
        self._send(
            200,
            {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": int(time.time()),
                "filename": "requests.jsonl",
                "purpose": purpose,
                "status": "processed",
            },
        )

    def _create_batch(self, request: dict[str, Any]) -> None:
        if request.get("input_file_id") not in self.state.files:
            self._error(400, "input file not found")
            return
        with self.state.lock:
            batch_id = f"batch_{len(self.state.batches) + 1}"
            lines = self.state.files[request["input_file_id"]].decode().splitlines()
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": request["endpoint"],
                "errors": None,
                "input_file_id": request["input_file_id"],
                "completion_window": request["completion_window"],
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": int(time.time()),
                "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
                "metadata": request.get("metadata"),
            }
            self.state.batches[batch_id] = batch
        self._send(200, batch)

    def _poll_batch(self, batch_id: str) -> None:
        state = self.state
        batch = state.batches.get(batch_id)
        if batch is None:
            self._error(404, "No such batch")
            return
        with state.lock:
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
            elif batch["status"] == "in_progress" and state.batch_outcome != "in_progress":
                self._finish_batch(batch, state.batch_outcome)
        self._send(200, batch)

    def _finish_batch(self, batch: dict[str, Any], outcome: str) -> None:
        lines = self.state.files[batch["input_file_id"]].decode().splitlines()
        if outcome != "completed":
            lines = lines[: self.state.expire_after]
        out: list[dict[str, Any]] = []
        for line in lines:
            request = json.loads(line)
            status, body = self._complete(request["url"], request["body"])
            out.append(
                {
                    "id": f"batch_req_{len(out) + 1}",
                    "custom_id": request["custom_id"],
                    "response": {"status_code": status, "request_id": "req", "body": body},
                    "error": None,
                }
            )
        file_id = f"file-{len(self.state.files) + 1}"
        self.state.files[file_id] = "".join(json.dumps(o) + "\n" for o in out).encode()
        batch["output_file_id"] = file_id if out else None
        batch["status"] = outcome
        batch["request_counts"]["completed"] = len(out)


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "scripted"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", action="append", default=[])
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    server = ScriptedOpenAI(args.model or None, delay=args.delay).start()
    print(server.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
