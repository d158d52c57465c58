"""A scripted OpenAI-compatible chat-completions server on loopback, for the LLM path's tests.

The real `openai` client talks to it over HTTP: streamed answers (server-sent events), errors with statuses
and headers, silence, cut-off answers. Each request takes the next reply of the script; a reply may be a
function of the request, so that a scripted "model" can edit the reference files the prompt shows it.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FILE_BLOCK = re.compile(r'<file path="([^"]+)">\n(.*?)\n</file>', re.DOTALL)


@dataclass
class Reply:
    content: str = ""  # the assistant's text, streamed in a few chunks
    finish: str = "stop"
    status: int = 200  # an error status answers with an OpenAI-style error body instead
    headers: dict[str, str] = field(default_factory=dict)
    stall: float = 0.0  # seconds of silence before the response starts
    error: str = "scripted error"


def files_reply(files: dict[str, str], finish: str = "stop") -> Reply:
    return Reply(json.dumps({"files": [{"path": p, "content": c} for p, c in files.items()]}), finish)


Script = Reply | Callable[[dict[str, Any]], Reply]


def prompt_files(request: dict[str, Any]) -> dict[str, str]:
    """The project files the first user message shows the model (the reference render)."""
    user = next(m["content"] for m in request["messages"] if m["role"] == "user")
    return dict(FILE_BLOCK.findall(user))


class ScriptedServer:
    def __init__(self, script: list[Script], then: Script | None = None, formats: tuple[str, ...] = ()) -> None:
        self.script = list(script)
        self.then = then  # the reply once the script is used up (None: an error that fails the test visibly)
        self.formats = formats  # response_format types it rejects with HTTP 400 (an older server)
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._http.daemon_threads = True
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}/v1"

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def next_reply(self, request: dict[str, Any]) -> Reply:
        with self._lock:
            item = self.script.pop(0) if self.script else self.then
        if item is None:
            return Reply(status=500, error="the test's script is used up")
        return item(request) if callable(item) else item

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                kind = (body.get("response_format") or {}).get("type", "plain")
                with server._lock:
                    server.requests.append(body)
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                if kind in server.formats:
                    return self._error(Reply(status=400, error=f"response_format {kind} is not supported"))
                reply = server.next_reply(body)
                time.sleep(reply.stall)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up first
                    self._error(reply) if reply.status != 200 else self._stream(reply)

            def _error(self, reply: Reply) -> None:
                payload = json.dumps({"error": {"message": reply.error, "type": "scripted"}}).encode()
                self.send_response(reply.status)
                for key, value in {**reply.headers, "Content-Type": "application/json"}.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _stream(self, reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                size = max(1, len(reply.content) // 4)
                pieces = [reply.content[i : i + size] for i in range(0, len(reply.content), size)] or [""]
                for number, piece in enumerate(pieces):
                    last = number == len(pieces) - 1
                    self._event({"content": piece}, reply.finish if last else None)
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()

            def _event(self, delta: dict[str, str], finish: str | None) -> None:
                chunk = {
                    "id": "chatcmpl-scripted",
                    "object": "chat.completion.chunk",
                    "created": 0,
                    "model": "scripted",
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                }
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())

        return Handler
