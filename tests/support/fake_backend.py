"""Scriptable fake Anthropic/OpenAI backends on 127.0.0.1 for integration tests.

A `FakeBackend` serves HTTP/1.1 (keep-alive) from a background thread, records every
request, and answers each one with a *behaviour*: any callable taking an `Exchange`.
The behaviours a test needs (canned answers, streams, errors, network faults) are frozen
dataclasses built by the lower-case factories of fake_behaviours.py (`anthropic_stream(...)`, ...),
re-exported here.
"""
from __future__ import annotations

import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

from .fake_behaviours import (  # noqa: F401  (re-exported: tests import behaviours from here)
    DEFAULT_INPUT_TOKENS, Behaviour, ERROR_TYPES, DEFAULT_STALL_SECONDS, DEFAULT_INPUT_FRAGMENTS, FAKE_SIGNATURE, ToolCall, ToolCallLike, Status, AnthropicMessage, StreamTiming, encode_sse, AnthropicStream, OpenAICompletion, OpenAIStream, Hang, SlowFirstByte, drop, EchoRequest, CountTokens, ModelsList, AutoReply, anthropic_message, anthropic_stream, openai_completion, openai_stream, status, anthropic_error, garbage, hang, slow_first_byte, echo_request,
)

# The paths a load balancer posts conversations to; they share the main queue.
MESSAGES_PATHS = frozenset({"/v1/messages", "/chat/completions", "/v1/chat/completions"})
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATHS = frozenset({"/v1/models", "/models"})
MESSAGES_QUEUE = "messages"
DEFAULT_MODELS = ("claude-test-1", "claude-test-2")
# Errors that only mean "the client went away"; a fake backend shrugs them off.
CLIENT_GONE_ERRORS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake backend received it."""

    method: str
    path: str  # exactly as sent, without the query string
    query: str
    headers: CaseInsensitiveDict
    body: bytes
    json: Any
    client_port: int = 0  # the load balancer's side of the connection: same port, same connection




class Exchange:
    """One request being answered: what a behaviour reads and writes through."""

    def __init__(self, handler: _Handler, request: RecordedRequest, stopping: threading.Event):
        self._handler = handler
        self.request = request
        self._stopping = stopping
        self.responded = False

    def send(self, status: int, body: bytes = b"", content_type: str = "application/json",
             headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send a complete response framed by Content-Length."""
        self._send_head(status, content_type, [("Content-Length", str(len(body))), *headers])
        self._handler.wfile.write(body)

    def send_json(self, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send `payload` as a JSON response."""
        self.send(status, json.dumps(payload).encode(), "application/json", headers)

    def start_stream(self, status: int = 200, content_type: str = "text/event-stream",
                     headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send the headers of a chunked response, so a cut stream is detectable as truncated."""
        framing = [("Transfer-Encoding", "chunked"), ("Cache-Control", "no-cache")]
        self._send_head(status, content_type, [*framing, *headers])

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk of a started stream; the socket is unbuffered, so it leaves at once."""
        self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send_headers(self, status: int, content_type: str, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Send only the status line and headers; the caller writes the body with write()."""
        self._send_head(status, content_type, list(headers))

    def write(self, data: bytes) -> None:
        """Write raw body bytes (no chunk framing)."""
        self._handler.wfile.write(data)

    def end_stream(self) -> None:
        """Write the terminating zero-length chunk."""
        self._handler.wfile.write(b"0\r\n\r\n")

    def abort(self) -> None:
        """Close the connection now, mid-response or before any response."""
        self._handler.close_connection = True
        try:
            self._handler.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed by the peer: the goal is reached either way

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`; True when the backend is stopping and the behaviour should quit."""
        return self._stopping.wait(seconds) if seconds > 0 else self._stopping.is_set()

    def _send_head(self, status: int, content_type: str, headers: list[tuple[str, str]]) -> None:
        self.responded = True
        self._handler.send_response(status)
        self._handler.send_header("Content-Type", content_type)
        for name, value in headers:
            self._handler.send_header(name, value)
        self._handler.end_headers()


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, records it, and hands it to the next scripted behaviour."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.backend._track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.backend._untrack(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: pytest output is for test results."""

    def _dispatch(self) -> None:
        backend = self.server.backend
        request = self._read_request()
        behaviour = backend._record_and_pick(request)
        exchange = Exchange(self, request, backend._stopping)
        try:
            behaviour(exchange)
        except CLIENT_GONE_ERRORS:
            self.close_connection = True
            return
        if not exchange.responded:
            exchange.abort()  # drop / hang: the client sees the connection close with no answer

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def _read_request(self) -> RecordedRequest:
        parts = urlsplit(self.path)
        body = self._read_body()
        try:
            decoded = json.loads(body) if body else None
        except ValueError:
            decoded = None
        return RecordedRequest(self.command, parts.path, parts.query,
                               CaseInsensitiveDict(self.headers.items()), body, decoded,
                               self.client_address[1])

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked_body()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunked_body(self) -> bytes:
        chunks = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                self.rfile.readline()  # the blank line after the last chunk (no trailers expected)
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default backlog of 5 refuses bursts of concurrent streams
    backend: FakeBackend

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore clients that hang up; report anything else as usual."""
        if not isinstance(sys.exc_info()[1], (*CLIENT_GONE_ERRORS, TimeoutError)):
            super().handle_error(request, client_address)


class FakeBackend:
    """A scripted HTTP backend on 127.0.0.1 with an OS-assigned port."""

    def __init__(self, dialect: str = "anthropic", models: Iterable[str] = DEFAULT_MODELS,
                 input_tokens: int = DEFAULT_INPUT_TOKENS):
        self.dialect = dialect
        self.default: Behaviour = AutoReply()
        self._path_defaults: dict[str, Behaviour] = {
            COUNT_TOKENS_PATH: CountTokens(input_tokens),
            **{path: ModelsList(dialect, tuple(models)) for path in MODELS_PATHS},
        }
        self._queues: dict[str, deque[Behaviour]] = {}
        self._requests: list[RecordedRequest] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._port: int | None = None

    def start(self) -> FakeBackend:
        """Bind and serve from a daemon thread; after stop(), start() comes back on the same port."""
        self._stopping.clear()
        self._server = _Server(("127.0.0.1", self._port or 0), _Handler)
        self._server.backend = self
        self._port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         name=f"fake-backend-{self._port}", daemon=True).start()
        return self

    @property
    def port(self) -> int:
        """The port it listens on (or listened on, once stopped: then it refuses connections)."""
        assert self._port is not None, "FakeBackend was never started"
        return self._port

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:41234."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, *paths: str) -> list[RecordedRequest]:
        """The recorded requests whose path is one of `paths` (e.g. only messages, not probes)."""
        return [request for request in self.requests if request.path in paths]

    def queue(self, *behaviours: Behaviour) -> None:
        """Answer the next messages requests with these, in order; then `default`."""
        self.queue_for(MESSAGES_QUEUE, *behaviours)

    def set_default(self, behaviour: Behaviour) -> None:
        """Answer messages requests with `behaviour` once the queue is empty."""
        self.default = behaviour

    def queue_for(self, path: str, *behaviours: Behaviour) -> None:
        """Answer the next requests to `path` with these, in order."""
        with self._lock:
            self._queues.setdefault(self._queue_key(path), deque()).extend(behaviours)

    def set_default_for(self, path: str, behaviour: Behaviour) -> None:
        """Answer requests to `path` with `behaviour` once its queue is empty."""
        key = self._queue_key(path)
        if key == MESSAGES_QUEUE:
            self.default = behaviour
        else:
            self._path_defaults[key] = behaviour

    def wait_for_requests(self, count: int, timeout: float = 5.0) -> list[RecordedRequest]:
        """Block until at least `count` requests arrived; raise TimeoutError otherwise."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self._requests) >= count, timeout):
                raise TimeoutError(f"{self.url}: got {len(self._requests)} requests, wanted {count}")
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests recorded so far."""
        with self._lock:
            self._requests.clear()

    def stop(self) -> None:
        """Stop serving, wake sleeping behaviours and close every open connection."""
        if self._server is None:
            return
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the peer closed it first
        self._server = None

    def __enter__(self) -> FakeBackend:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @staticmethod
    def _queue_key(path: str) -> str:
        path = path.rstrip("/") or "/"
        return MESSAGES_QUEUE if path in MESSAGES_PATHS else path

    def _record(self, request: RecordedRequest) -> None:
        """Note a request that is answered without the queues (fakes that refuse some)."""
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()

    def _record_and_pick(self, request: RecordedRequest) -> Behaviour:
        with self._arrived:
            self._requests.append(request)
            self._arrived.notify_all()
            key = self._queue_key(request.path)
            pending = self._queues.get(key)
            if pending:
                return pending.popleft()
        if key == MESSAGES_QUEUE:
            return self.default
        return self._path_defaults.get(key, anthropic_error(404, message=f"no route {request.path}"))

    def _track(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _untrack(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening on it, for "connection refused" cases."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
