"""Fake-backend behaviours of providers that misbehave on purpose: they echo the key they were
sent, redirect, answer arbitrary bytes as a stream, or trickle a body byte by byte.

Plain callables taking a fake_backend `Exchange`, like the behaviours of fake_behaviours.py.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from support.fake_backend import Exchange, encode_sse

ECHO_SHAPES = ("anthropic_json", "openai_json", "plain_text", "html", "anthropic_stream_error",
               "openai_stream_error", "anthropic_error_event_before_content")


def key_sent(exchange: Exchange) -> str:
    """The credential the load balancer sent: x-api-key, or the Bearer token."""
    headers = exchange.request.headers
    return headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")


@dataclass(frozen=True)
class EchoKey:
    """An error answer that quotes the key it was sent (and the configured extra header), in one shape."""

    shape: str
    status: int = 400
    header: str = "x-extra-secret"

    def __call__(self, exchange: Exchange) -> None:
        leak = f"{key_sent(exchange)} / {exchange.request.headers.get(self.header, '')}"
        if self.shape == "anthropic_json":
            exchange.send_json(self.status, {"type": "error", "error": {
                "type": "authentication_error", "message": f"invalid x-api-key {leak}"}})
        elif self.shape == "openai_json":
            exchange.send_json(self.status, {"error": {"message": f"Incorrect API key provided: {leak}.",
                                                       "type": "invalid_request_error", "code": "invalid_api_key"}})
        elif self.shape == "plain_text":
            exchange.send(self.status, f"bad credentials {leak}\n".encode(), "text/plain")
        elif self.shape == "html":
            exchange.send(self.status, f"<html><body>key {leak} refused</body></html>".encode(), "text/html")
        else:
            self._stream(exchange, leak)

    def _stream(self, exchange: Exchange, leak: str) -> None:
        exchange.start_stream()
        if self.shape == "openai_stream_error":
            frames = [b'data: {"id":"c","object":"chat.completion.chunk","choices":[{"index":0,'
                      b'"delta":{"content":"Hi"},"finish_reason":null}]}\n\n',
                      b"data: " + json.dumps({"error": {"message": f"quota for key {leak}"}}).encode() + b"\n\n"]
        else:
            frames = [encode_sse({"type": "message_start", "message": _empty_message()})]
            if self.shape == "anthropic_stream_error":
                frames += [encode_sse({"type": "content_block_start", "index": 0,
                                       "content_block": {"type": "text", "text": ""}}),
                           encode_sse({"type": "content_block_delta", "index": 0,
                                       "delta": {"type": "text_delta", "text": "Hi"}})]
            frames.append(encode_sse({"type": "error", "error": {"type": "api_error",
                                                                  "message": f"key {leak} was revoked"}}))
        for frame in frames:
            exchange.write_chunk(frame)
        exchange.end_stream()


@dataclass(frozen=True)
class Redirect:
    """A 3xx pointing elsewhere."""

    code: int = 307
    location: str = "http://127.0.0.1:9/elsewhere"

    def __call__(self, exchange: Exchange) -> None:
        exchange.send(self.code, b"", "text/plain", [("Location", self.location)])


@dataclass(frozen=True)
class RawStream:
    """A 200 event stream of exactly these bytes, one chunk each, then a clean end."""

    chunks: tuple[bytes, ...]
    content_type: str = "text/event-stream"

    def __call__(self, exchange: Exchange) -> None:
        exchange.start_stream(content_type=self.content_type)
        for chunk in self.chunks:
            if chunk:
                exchange.write_chunk(chunk)
        exchange.end_stream()


@dataclass(frozen=True)
class Trickle:
    """A 200 JSON answer whose body arrives one byte every `delay` seconds."""

    body: bytes
    delay: float

    def __call__(self, exchange: Exchange) -> None:
        exchange.send_headers(200, "application/json", [("Content-Length", str(len(self.body)))])
        for position in range(len(self.body)):
            if exchange.wait(self.delay):
                return
            exchange.write(self.body[position:position + 1])


def _empty_message() -> dict[str, Any]:
    return {"id": "msg_hostile", "type": "message", "role": "assistant", "model": "claude-test-1",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}
