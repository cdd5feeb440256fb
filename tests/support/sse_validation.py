"""Strict readers for the streams the load balancer sends, as unforgiving as G3's parser.

`read_frames` splits raw SSE bytes and rejects any line that is not `event: X`, `data: X`
(with the space) or a `:` comment. `check_anthropic_stream` enforces the Anthropic event
grammar and returns what a client would rebuild from it; `read_openai_stream` decodes an
OpenAI chunk stream and insists on the closing `data: [DONE]`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Iterator

import requests

BLOCK_DELTA_TYPES = {"text": {"text_delta"}, "tool_use": {"input_json_delta"},
                     "thinking": {"thinking_delta", "signature_delta"},
                     "redacted_thinking": set()}
BLOCK_START_FIELDS = {"text": "text", "tool_use": "input", "thinking": "thinking"}


class StreamGrammarError(AssertionError):
    """The stream breaks a rule a strict client relies on."""


@dataclass(frozen=True)
class Frame:
    """One SSE frame: its `event:` name (None when absent) and its `data:` text."""

    event: str | None
    data: str


@dataclass(frozen=True)
class AnthropicStream:
    """A validated Anthropic stream and the message a client rebuilds from it."""

    events: tuple[dict[str, Any], ...]
    content: tuple[dict[str, Any], ...]  # blocks with text / thinking joined and tool inputs parsed
    stop_reason: str | None
    error: dict[str, Any] | None  # the closing `error` event's error, when the stream ended in one

    @property
    def text(self) -> str:
        """All text blocks joined."""
        return "".join(block["text"] for block in self.content if block["type"] == "text")

    @property
    def tool_uses(self) -> list[dict[str, Any]]:
        """The tool_use blocks, inputs decoded."""
        return [block for block in self.content if block["type"] == "tool_use"]

    def count(self, event_type: str) -> int:
        """How many events of `event_type` the stream carried."""
        return sum(1 for event in self.events if event["type"] == event_type)


def split_frames(raw: bytes) -> Iterator[bytes]:
    """Complete frames (without the blank line) of a whole SSE body; a trailing fragment is an error."""
    text = raw.replace(b"\r\n", b"\n")
    *frames, rest = text.split(b"\n\n")
    if rest.strip():
        raise StreamGrammarError(f"stream ends inside a frame: {rest[:200]!r}")
    return (frame for frame in frames if frame.strip())


def parse_frame(raw: bytes) -> Frame | None:
    """One frame's event and data; None for a comment-only frame."""
    event: str | None = None
    data: list[str] = []
    for line in raw.decode("utf-8").split("\n"):
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            event = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
        else:
            raise StreamGrammarError(f"line is neither 'event: ', 'data: ' nor a comment: {line!r}")
    if not data:
        if event is not None:
            raise StreamGrammarError(f"event {event!r} has no data line")
        return None
    return Frame(event, "\n".join(data))


def read_frames(raw: bytes) -> list[Frame]:
    """Every non-comment frame of a whole SSE body."""
    return [frame for frame in map(parse_frame, split_frames(raw)) if frame is not None]


def iter_timed_frames(response: requests.Response) -> Iterator[tuple[float, Frame]]:
    """(monotonic arrival time, frame) as each frame arrives from a streamed response."""
    pending = b""
    for chunk in response.iter_content(chunk_size=None):
        arrived = time.monotonic()
        pending += chunk.replace(b"\r\n", b"\n")
        *complete, pending = pending.split(b"\n\n")
        for raw in complete:
            frame = parse_frame(raw) if raw.strip() else None
            if frame is not None:
                yield arrived, frame
    if pending.strip():
        raise StreamGrammarError(f"stream ends inside a frame: {pending[:200]!r}")


def check_anthropic_stream(raw: bytes, *, allow_error: bool = False) -> AnthropicStream:
    """Validate a whole Anthropic stream body and rebuild its content.

    :raises StreamGrammarError: on the first broken rule.
    """
    events = []
    for frame in read_frames(raw):
        event = json.loads(frame.data)
        if not isinstance(event, dict) or frame.event != event.get("type"):
            raise StreamGrammarError(f"frame named {frame.event!r} carries {frame.data[:200]!r}")
        events.append(event)
    return _AnthropicGrammar(allow_error).check(events)


class _AnthropicGrammar:
    """The state machine behind check_anthropic_stream."""

    def __init__(self, allow_error: bool) -> None:
        self.allow_error = allow_error
        self.blocks: list[dict[str, Any]] = []
        self.open: dict[str, Any] | None = None
        self.partial_json = ""
        self.stop_reason: str | None = None
        self.error: dict[str, Any] | None = None

    def check(self, events: list[dict[str, Any]]) -> AnthropicStream:
        if not events or events[0]["type"] != "message_start":
            raise StreamGrammarError(f"first event is not message_start: {events[:1]}")
        for position, event in enumerate(events[1:], start=1):
            last = position == len(events) - 1
            kind = event["type"]
            if kind == "message_start":
                raise StreamGrammarError(f"second message_start at event {position}")
            if kind in ("message_stop", "error") and not last:
                raise StreamGrammarError(f"{kind} at event {position} is not the last event")
            self._handle(kind, event)
        final = events[-1]["type"]
        if final != "message_stop" and not (self.allow_error and final == "error"):
            raise StreamGrammarError(f"the last event is {final!r}, not message_stop")
        return AnthropicStream(tuple(events), tuple(self.blocks), self.stop_reason, self.error)

    def _handle(self, kind: str, event: dict[str, Any]) -> None:
        if kind == "content_block_start":
            self._start(event)
        elif kind == "content_block_delta":
            self._delta(event)
        elif kind == "content_block_stop":
            self._stop(event)
        elif kind == "message_delta":
            if self.open is not None:
                raise StreamGrammarError("message_delta while a content block is open")
            self.stop_reason = (event.get("delta") or {}).get("stop_reason")
        elif kind == "message_stop":
            if self.open is not None:
                raise StreamGrammarError("message_stop while a content block is open")
        elif kind == "error":
            if self.open is not None:
                raise StreamGrammarError("error event while a content block is open")
            self.error = event.get("error")
        elif kind != "ping":
            raise StreamGrammarError(f"unknown event type {kind!r}")

    def _start(self, event: dict[str, Any]) -> None:
        if self.open is not None:
            raise StreamGrammarError(f"block {event.get('index')} starts while block {self.open['index']} is open")
        if event.get("index") != len(self.blocks):
            raise StreamGrammarError(f"block index {event.get('index')} where {len(self.blocks)} was due")
        block = dict(event.get("content_block") or {})
        required = BLOCK_START_FIELDS.get(block.get("type"))
        if block.get("type") not in BLOCK_DELTA_TYPES or (required and required not in block):
            raise StreamGrammarError(f"content_block_start without its {required!r} field: {block}")
        self.open = {"index": event["index"], "block": block}
        self.partial_json = ""

    def _delta(self, event: dict[str, Any]) -> None:
        if self.open is None or event.get("index") != self.open["index"]:
            raise StreamGrammarError(f"delta for block {event.get('index')} which is not open")
        block, delta = self.open["block"], event.get("delta") or {}
        if delta.get("type") not in BLOCK_DELTA_TYPES[block["type"]]:
            raise StreamGrammarError(f"{delta.get('type')!r} inside a {block['type']} block")
        if delta["type"] == "text_delta":
            block["text"] += delta["text"]
        elif delta["type"] == "thinking_delta":
            block["thinking"] += delta["thinking"]
        elif delta["type"] == "input_json_delta":
            self.partial_json += delta["partial_json"]

    def _stop(self, event: dict[str, Any]) -> None:
        if self.open is None or event.get("index") != self.open["index"]:
            raise StreamGrammarError(f"content_block_stop for block {event.get('index')} which is not open")
        block = self.open["block"]
        if block["type"] == "tool_use":
            try:
                tool_input = json.loads(self.partial_json) if self.partial_json else block["input"]
            except ValueError as err:
                raise StreamGrammarError(f"partial_json does not join into JSON: {self.partial_json!r}") from err
            if not isinstance(tool_input, dict):
                raise StreamGrammarError(f"tool input is not a JSON object: {self.partial_json!r}")
            block["input"] = tool_input
        self.blocks.append(block)
        self.open = None


def read_openai_stream(raw: bytes) -> list[dict[str, Any]]:
    """The chunks of an OpenAI stream; it must end with exactly one `data: [DONE]`."""
    frames = read_frames(raw)
    if not frames or frames[-1].data != "[DONE]":
        raise StreamGrammarError(f"OpenAI stream does not end with [DONE]: {frames[-1:]}")
    chunks = [json.loads(frame.data) for frame in frames[:-1]]
    if any(frame.data == "[DONE]" for frame in frames[:-1]):
        raise StreamGrammarError("[DONE] before the end of the stream")
    return chunks
