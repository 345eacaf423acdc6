"""A real OpenAI-compatible HTTP server for tests, scripted per test.

It serves `POST /v1/chat/completions` (and `/chat/completions`) from a background thread on
127.0.0.1, so the engine's calls go through LiteLLM's real HTTP path. Every request is
recorded; what the server answers is scripted:

    server.script(Reply.error(429, retry_after=0), Reply.ok("hi"))  # 429, then 200 "hi"
    server.script(then=Reply.error(500))                            # 500 forever
    server.script(Reply.ok("late", delay=3))                        # answer after 3 s
    server.script(Reply.raw("not json"))                            # malformed 200 body
    server.script(then=lambda request: Reply.ok(request.json["model"]))

Steps are used in order, one per request; once they run out, `then` answers every request
(by default an echo of the last user message). A step may be a Reply or a callable taking
the RecordedRequest and returning a Reply.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PATHS = ("/v1/chat/completions", "/chat/completions")


@dataclass(frozen=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]  # lower-case names
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.json["messages"]


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering

    @classmethod
    def ok(
        cls,
        content: str,
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        cached_tokens: int | None = None,
        reasoning_tokens: int | None = None,
        usage: bool = True,
        model: str = "gpt-4o-mini",
        delay: float = 0.0,
    ) -> Reply:
        """A chat completion in OpenAI's format, with the given usage (none at all when
        `usage` is false); cached and reasoning tokens go where OpenAI reports them."""
        document = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if cached_tokens is not None:
            document["usage"]["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
        if reasoning_tokens is not None:
            document["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning_tokens}
        if not usage:
            del document["usage"]
        return cls(200, json.dumps(document), {"Content-Type": "application/json"}, delay)

    @classmethod
    def error(cls, status: int, *, retry_after: float | None = None, delay: float = 0.0) -> Reply:
        """An error in OpenAI's format; `retry_after` sets the Retry-After header."""
        document = {"error": {"message": f"scripted error {status}", "type": "server_error"}}
        headers = {"Content-Type": "application/json"}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return cls(status, json.dumps(document), headers, delay)

    @classmethod
    def raw(cls, body: str, *, status: int = 200, content_type: str = "application/json") -> Reply:
        """Any body at all, e.g. a malformed one."""
        return cls(status, body, {"Content-Type": content_type})


Step = Reply | Callable[[RecordedRequest], Reply]


def echo(request: RecordedRequest) -> Reply:
    """The default answer: the last user message, prefixed with 'echo: '."""
    users = [m["content"] for m in request.messages if m.get("role") == "user"]
    return Reply.ok(f"echo: {users[-1] if users else ''}")


class OpenAIServer:
    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._steps: deque[Step] = deque()
        self._then: Step = echo
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *steps: Step, then: Step = echo) -> None:
        """Answer the next requests with `steps` in order, and every later one with `then`."""
        with self._lock:
            self._steps = deque(steps)
            self._then = then

    def close(self) -> None:
        self._closing.set()  # wakes handlers sleeping on a `delay`
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            step = self._steps.popleft() if self._steps else self._then
        return step if isinstance(step, Reply) else step(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8")
                if self.path.split("?")[0] not in PATHS:
                    self._send(Reply.error(404))
                    return
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = server._next_reply(RecordedRequest(self.path, headers, body))
                if reply.delay and server._closing.wait(reply.delay):
                    return
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                data = reply.body.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test); nothing to answer

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler
