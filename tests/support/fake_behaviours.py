"""The behaviours a fake backend answers with: canned answers, streams, errors, network faults.

Each behaviour is a callable taking an `Exchange` (see fake_backend.py); the lower-case
factories at the bottom (`anthropic_stream(...)`, `status(...)`, ...) build them.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

if TYPE_CHECKING:
    from .fake_backend import Exchange

Behaviour = Callable[["Exchange"], None]
DEFAULT_INPUT_TOKENS = 42

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
