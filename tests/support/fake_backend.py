"""Scriptable fake Anthropic/OpenAI backends on 127.0.0.1 for integration tests.

A `FakeBackend` serves HTTP/1.1 (keep-alive) from a background thread, records every
request, and answers each one with a *behaviour*: any callable taking an `Exchange`.
The behaviours a test needs (canned answers, streams, errors, network faults) are frozen
dataclasses built by the lower-case factories at the bottom (`anthropic_stream(...)`, ...).
"""
from __future__ import annotations

import itertools
import json
import socket
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlsplit

from requests.structures import CaseInsensitiveDict

# The paths a load balancer posts conversations to; they share the main queue.
MESSAGES_PATHS = frozenset({"/v1/messages", "/chat/completions", "/v1/chat/completions"})
COUNT_TOKENS_PATH = "/v1/messages/count_tokens"
MODELS_PATHS = frozenset({"/v1/models", "/models"})
MESSAGES_QUEUE = "messages"
DEFAULT_MODELS = ("claude-test-1", "claude-test-2")
DEFAULT_INPUT_TOKENS = 42
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


Behaviour = Callable[["Exchange"], None]


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
                               CaseInsensitiveDict(self.headers.items()), body, decoded)

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


# --- behaviours -------------------------------------------------------------------------

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}
DEFAULT_STALL_SECONDS = 30.0
DEFAULT_INPUT_FRAGMENTS = 3
FAKE_SIGNATURE = "fake-signature"


@dataclass(frozen=True)
class ToolCall:
    """A tool call inside a fake answer; an empty id gets a predictable one by position."""

    name: str
    input: Mapping[str, Any] = field(default_factory=dict)
    id: str = ""


ToolCallLike = ToolCall | Sequence[Any]


def _tool_calls(calls: Iterable[ToolCallLike], id_prefix: str) -> tuple[ToolCall, ...]:
    """Accept ToolCall or (name, input[, id]) tuples; fill in ids like toolu_fake0."""
    normalised = []
    for position, call in enumerate(calls):
        if not isinstance(call, ToolCall):
            call = ToolCall(*call)
        normalised.append(ToolCall(call.name, dict(call.input), call.id or f"{id_prefix}{position}"))
    return tuple(normalised)


def _split_text(text: str, pieces: int) -> list[str]:
    """Cut `text` into at most `pieces` non-empty consecutive parts."""
    pieces = max(1, min(pieces, len(text)))
    size = -(-len(text) // pieces) if text else 0
    return [text[start:start + size] for start in range(0, len(text), size)] if text else []


def _requested_model(exchange: Exchange, model: str | None) -> str:
    body = exchange.request.json if isinstance(exchange.request.json, dict) else {}
    return model or str(body.get("model", "fake-model"))


def _wants_stream(exchange: Exchange) -> bool:
    return isinstance(exchange.request.json, dict) and exchange.request.json.get("stream") is True


def _message_id() -> str:
    return f"msg_fake{next(_MESSAGE_NUMBERS)}"


_MESSAGE_NUMBERS = itertools.count(1)


@dataclass(frozen=True)
class Status:
    """Any status with a JSON or raw body and extra headers."""

    code: int
    json_body: Any = None
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json"

    def __call__(self, exchange: Exchange) -> None:
        body = json.dumps(self.json_body).encode() if self.json_body is not None else self.body
        exchange.send(self.code, body, self.content_type, self.headers)


@dataclass(frozen=True)
class AnthropicMessage:
    """A 200 non-stream Anthropic Messages answer."""

    text: str = "Hello"
    model: str | None = None
    tool_uses: tuple[ToolCall, ...] = ()
    stop_reason: str | None = None
    usage: tuple[int, int] = (10, 5)
    thinking: str | None = None

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_json(200, self.build(_requested_model(exchange, self.model)))

    def build(self, model: str) -> dict[str, Any]:
        """The message body for `model`."""
        content: list[dict[str, Any]] = []
        if self.thinking is not None:
            content.append({"type": "thinking", "thinking": self.thinking, "signature": FAKE_SIGNATURE})
        if self.text or not self.tool_uses:
            content.append({"type": "text", "text": self.text})
        content += [{"type": "tool_use", "id": call.id, "name": call.name, "input": dict(call.input)}
                    for call in self.tool_uses]
        stop_reason = self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")
        return {"id": _message_id(), "type": "message", "role": "assistant", "model": model,
                "content": content, "stop_reason": stop_reason, "stop_sequence": None,
                "usage": {"input_tokens": self.usage[0], "output_tokens": self.usage[1]}}


@dataclass(frozen=True)
class StreamTiming:
    """How a fake stream is paced and where it fails.

    headers_delay: silence before the status line; first_delay: headers sent at once, then
    silence before the first event; delay: between events; break_after=N: close abruptly after
    N events (0: right after the headers); stall_after=N: after N events go silent for
    stall_seconds, then close.
    """

    delay: float = 0.0
    first_delay: float = 0.0
    headers_delay: float = 0.0
    break_after: int | None = None
    stall_after: int | None = None
    stall_seconds: float = DEFAULT_STALL_SECONDS

    def play(self, exchange: Exchange, frames: Sequence[bytes]) -> None:
        """Send `frames` as a chunked stream, one flushed chunk per frame."""
        if exchange.wait(self.headers_delay):
            return  # stopping: nothing was sent, the handler closes the connection
        exchange.start_stream()
        cut = min(n for n in (self.break_after, self.stall_after, len(frames)) if n is not None)
        if self._send_frames(exchange, frames[:cut]) and cut == self.stall_after:
            exchange.wait(self.stall_seconds)
        if exchange.wait(0) or cut in (self.break_after, self.stall_after):
            exchange.abort()
        else:
            exchange.end_stream()

    def _send_frames(self, exchange: Exchange, frames: Sequence[bytes]) -> bool:
        """Write frames with the pacing; False when the backend started stopping meanwhile."""
        if exchange.wait(self.first_delay):
            return False
        for number, frame in enumerate(frames):
            if number and exchange.wait(self.delay):
                return False
            exchange.write_chunk(frame)
        return True


def encode_sse(event: Mapping[str, Any]) -> bytes:
    """Frame one Anthropic event as `event: TYPE\\ndata: JSON\\n\\n`."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


@dataclass(frozen=True)
class AnthropicStream(StreamTiming):
    """A 200 Anthropic SSE stream: thinking, text split into chunks, then tool_use blocks."""

    text_chunks: tuple[str, ...] = ("Hel", "lo")
    tool_uses: tuple[ToolCall, ...] = ()
    thinking: str | None = None
    model: str | None = None
    stop_reason: str | None = None
    usage: tuple[int, int] = (10, 5)
    input_fragments: int = DEFAULT_INPUT_FRAGMENTS

    def __call__(self, exchange: Exchange) -> None:
        events = self.events(_requested_model(exchange, self.model))
        self.play(exchange, [encode_sse(event) for event in events])

    def events(self, model: str) -> list[dict[str, Any]]:
        """The whole event sequence, message_start to message_stop."""
        message = AnthropicMessage("", model, (), None, (self.usage[0], 1)).build(model)
        events: list[dict[str, Any]] = [{"type": "message_start", "message": {**message, "content": [],
                                                                              "stop_reason": None}},
                                        {"type": "ping"}]
        blocks = []
        if self.thinking is not None:
            blocks.append(({"type": "thinking", "thinking": ""},
                           [{"type": "thinking_delta", "thinking": part} for part in _split_text(self.thinking, 2)]
                           + [{"type": "signature_delta", "signature": FAKE_SIGNATURE}]))
        if self.text_chunks:
            blocks.append(({"type": "text", "text": ""},
                           [{"type": "text_delta", "text": chunk} for chunk in self.text_chunks]))
        for call in self.tool_uses:
            fragments = _split_text(json.dumps(dict(call.input)), self.input_fragments)
            blocks.append(({"type": "tool_use", "id": call.id, "name": call.name, "input": {}},
                           [{"type": "input_json_delta", "partial_json": part} for part in fragments]))
        for index, (start, deltas) in enumerate(blocks):
            events.append({"type": "content_block_start", "index": index, "content_block": start})
            events += [{"type": "content_block_delta", "index": index, "delta": delta} for delta in deltas]
            events.append({"type": "content_block_stop", "index": index})
        stop_reason = self.stop_reason or ("tool_use" if self.tool_uses else "end_turn")
        events.append({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                       "usage": {"output_tokens": self.usage[1]}})
        events.append({"type": "message_stop"})
        return events


def _openai_usage(usage: tuple[int, int]) -> dict[str, int]:
    return {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}


@dataclass(frozen=True)
class OpenAICompletion:
    """A 200 non-stream OpenAI chat.completion answer."""

    text: str | None = "Hello"
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: tuple[int, int] = (10, 5)
    model: str | None = None

    def __call__(self, exchange: Exchange) -> None:
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.reasoning is not None:
            message["reasoning_content"] = self.reasoning
        if self.tool_calls:
            message["tool_calls"] = [{"id": call.id, "type": "function",
                                      "function": {"name": call.name, "arguments": json.dumps(dict(call.input))}}
                                     for call in self.tool_calls]
        finish_reason = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        exchange.send_json(200, {"id": "chatcmpl-fake", "object": "chat.completion", "created": 1700000000,
                                 "model": _requested_model(exchange, self.model),
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
                                 "usage": _openai_usage(self.usage)})


@dataclass(frozen=True)
class OpenAIStream(StreamTiming):
    """A 200 OpenAI chat.completion.chunk stream ending in `data: [DONE]`."""

    text_chunks: tuple[str, ...] = ("Hel", "lo")
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning_chunks: tuple[str, ...] = ()
    include_usage: bool = True
    split_arguments: int = 3
    interleave_parallel: bool = False
    finish_reason: str | None = None
    usage: tuple[int, int] = (10, 5)
    model: str | None = None

    def __call__(self, exchange: Exchange) -> None:
        body = exchange.request.json if isinstance(exchange.request.json, dict) else {}
        options = body.get("stream_options") or {}
        with_usage = self.include_usage and isinstance(options, dict) and options.get("include_usage") is True
        chunks = self.chunks(_requested_model(exchange, self.model), with_usage)
        self.play(exchange, [b"data: %s\n\n" % json.dumps(chunk).encode() for chunk in chunks] + [b"data: [DONE]\n\n"])

    def chunks(self, model: str, with_usage: bool) -> list[dict[str, Any]]:
        """Every chunk before `[DONE]`."""
        deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
        deltas += [{"reasoning_content": part} for part in self.reasoning_chunks]
        deltas += [{"content": part} for part in self.text_chunks]
        deltas += [{"tool_calls": [fragment]} for fragment in self._tool_call_fragments()]
        finish_reason = self.finish_reason or ("tool_calls" if self.tool_calls else "stop")
        envelope = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": 1700000000, "model": model}
        chunks = [{**envelope, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas]
        chunks.append({**envelope, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]})
        if with_usage:
            chunks.append({**envelope, "choices": [], "usage": _openai_usage(self.usage)})
        return chunks

    def _tool_call_fragments(self) -> list[dict[str, Any]]:
        per_call = []
        for index, call in enumerate(self.tool_calls):
            first = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            pieces = _split_text(json.dumps(dict(call.input)), self.split_arguments)
            per_call.append([first] + [{"index": index, "function": {"arguments": piece}} for piece in pieces])
        if self.interleave_parallel:
            rounds = itertools.zip_longest(*per_call)
            return [fragment for fragments in rounds for fragment in fragments if fragment is not None]
        return [fragment for fragments in per_call for fragment in fragments]


@dataclass(frozen=True)
class Hang:
    """Accept the request, send nothing for `seconds`, then close the connection."""

    seconds: float

    def __call__(self, exchange: Exchange) -> None:
        exchange.wait(self.seconds)


@dataclass(frozen=True)
class SlowFirstByte:
    """Send nothing for `seconds`, then behave like `then`."""

    seconds: float
    then: Behaviour

    def __call__(self, exchange: Exchange) -> None:
        if not exchange.wait(self.seconds):
            self.then(exchange)


def drop() -> Behaviour:
    """Close the socket without any response."""
    return Hang(0.0)


@dataclass(frozen=True)
class EchoRequest:
    """A 200 Anthropic message whose text is the JSON of the received method, path, headers and body."""

    def __call__(self, exchange: Exchange) -> None:
        request = exchange.request
        echoed = {"method": request.method, "path": request.path, "query": request.query,
                  "headers": dict(request.headers), "json": request.json}
        AnthropicMessage(json.dumps(echoed))(exchange)


@dataclass(frozen=True)
class CountTokens:
    """Answer count_tokens with a fixed number."""

    input_tokens: int = DEFAULT_INPUT_TOKENS

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_json(200, {"input_tokens": self.input_tokens})


@dataclass(frozen=True)
class ModelsList:
    """Answer a models listing in the backend's dialect."""

    dialect: str
    models: tuple[str, ...]

    def __call__(self, exchange: Exchange) -> None:
        if self.dialect == "openai":
            data = [{"id": model, "object": "model", "created": 1700000000, "owned_by": "fake"} for model in self.models]
            return exchange.send_json(200, {"object": "list", "data": data})
        data = [{"type": "model", "id": model, "display_name": model, "created_at": "2025-01-01T00:00:00Z"}
                for model in self.models]
        exchange.send_json(200, {"data": data, "has_more": False,
                                 "first_id": self.models[0] if self.models else None,
                                 "last_id": self.models[-1] if self.models else None})


@dataclass(frozen=True)
class AutoReply:
    """The default answer: a message or a stream in the dialect the path implies."""

    def __call__(self, exchange: Exchange) -> None:
        is_openai = exchange.request.path.endswith("/chat/completions")
        if _wants_stream(exchange):
            return (OpenAIStream() if is_openai else AnthropicStream())(exchange)
        (OpenAICompletion() if is_openai else AnthropicMessage())(exchange)


# --- factories: the names tests use -----------------------------------------------------

def anthropic_message(text: str = "Hello", model: str | None = None, tool_uses: Iterable[ToolCallLike] = (),
                      stop_reason: str | None = None, usage: tuple[int, int] = (10, 5),
                      thinking: str | None = None) -> AnthropicMessage:
    """A 200 Anthropic message; the model echoes the request's when None."""
    return AnthropicMessage(text, model, _tool_calls(tool_uses, "toolu_fake"), stop_reason, tuple(usage), thinking)


def anthropic_stream(text_chunks: Iterable[str] = ("Hel", "lo"), *, tool_uses: Iterable[ToolCallLike] = (),
                     thinking: str | None = None, **options: Any) -> AnthropicStream:
    """A 200 Anthropic SSE stream; options are StreamTiming fields plus model, stop_reason, usage."""
    return AnthropicStream(text_chunks=tuple(text_chunks), tool_uses=_tool_calls(tool_uses, "toolu_fake"),
                           thinking=thinking, **options)


def openai_completion(text: str | None = "Hello", tool_calls: Iterable[ToolCallLike] = (),
                      reasoning: str | None = None, finish_reason: str | None = None,
                      usage: tuple[int, int] = (10, 5), model: str | None = None) -> OpenAICompletion:
    """A 200 OpenAI chat.completion."""
    return OpenAICompletion(text, _tool_calls(tool_calls, "call_fake"), reasoning, finish_reason, tuple(usage), model)


def openai_stream(text_chunks: Iterable[str] = ("Hel", "lo"), *, tool_calls: Iterable[ToolCallLike] = (),
                  reasoning_chunks: Iterable[str] = (), **options: Any) -> OpenAIStream:
    """A 200 OpenAI chunk stream; options are StreamTiming fields plus the OpenAIStream fields."""
    return OpenAIStream(text_chunks=tuple(text_chunks), tool_calls=_tool_calls(tool_calls, "call_fake"),
                        reasoning_chunks=tuple(reasoning_chunks), **options)


def status(code: int, json_body: Any = None, body: bytes = b"", headers: Mapping[str, str] | None = None,
           content_type: str = "application/json") -> Status:
    """Any status, body and headers."""
    return Status(code, json_body, body, tuple((headers or {}).items()), content_type)


def anthropic_error(code: int, error_type: str | None = None, message: str = "fake backend error",
                    headers: Mapping[str, str] | None = None) -> Status:
    """An Anthropic error body; the type follows the status (529 overloaded_error, ...)."""
    error = {"type": error_type or ERROR_TYPES.get(code, "api_error"), "message": message}
    return status(code, {"type": "error", "error": error}, headers=headers)


def garbage(body: bytes = b"<html>this is not json {", content_type: str = "application/json") -> Status:
    """A 200 whose body does not parse as JSON."""
    return status(200, body=body, content_type=content_type)


def hang(seconds: float) -> Hang:
    """Accept the request and send nothing for `seconds`."""
    return Hang(seconds)


def slow_first_byte(seconds: float, then: Behaviour | None = None) -> SlowFirstByte:
    """Wait `seconds` before the status line, then answer like `then` (default: AutoReply)."""
    return SlowFirstByte(seconds, then or AutoReply())


def echo_request() -> EchoRequest:
    """A 200 Anthropic message echoing what was received."""
    return EchoRequest()
