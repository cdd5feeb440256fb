"""Turn text tool calls in Anthropic answers (messages and event streams) into tool_use blocks.

Policy for a call whose required arguments are still missing after repair: it stays text (the
text it was written as) and is counted as rejected; the other calls of the same block still
become tool_use blocks. A client would run it and fail ("Missing file_path argument"); as text the
model's intent stays visible. Reasoning the model wrote as text becomes a thinking block when the
client asked for thinking, and is dropped otherwise: its markers never reach the client.
"""
from __future__ import annotations

import json
import secrets
import string
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from loadbalancer.toolcalls.arguments import ToolIndex, build_tool_index
from loadbalancer.toolcalls.parser import (ReasoningSegment, Segment, StreamingToolCallParser, TextSegment, ToolCall,
                                           parse_tool_calls)

_ID_ALPHABET = string.ascii_letters + string.digits
_ID_LENGTH = 24
# How far into an answer's first text a bare </think> still closes reasoning that the chat template
# opened in the prompt (DeepSeek-R1/V3.1, Qwen3-Thinking, Step, ERNIE): that much text is held back
# until it is known. When the client asked for thinking, reasoning is expected and may be long.
REASONING_REACH = 1_024
THINKING_REASONING_REACH = 16_384


@dataclass
class ToolCallStats:
    """Counts of what the rewriter did."""

    parsed: int = 0       # text tool calls turned into tool_use blocks
    repaired: int = 0     # of those, how many needed repair or coercion
    rejected: int = 0     # calls left as text because required arguments were missing after repair

    def add(self, other: ToolCallStats) -> None:
        """Add another set of counts to this one."""
        self.parsed += other.parsed
        self.repaired += other.repaired
        self.rejected += other.rejected


def new_tool_use_id() -> str:
    """A fresh id in Anthropic's shape: toolu_ and 24 letters or digits."""
    return "toolu_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(_ID_LENGTH))


def _is_active(tools: ToolIndex, mode: str) -> bool:
    return mode != "off" and bool(tools.schemas)


def accepted_segments(segments: Sequence[Segment], stats: ToolCallStats) -> Iterator[Segment]:
    """Segments with rejected calls (missing arguments) turned back into their text; counts into stats."""
    for segment in segments:
        if not isinstance(segment, ToolCall):
            yield segment
        elif segment.missing:
            stats.rejected += 1
            if segment.markup:
                yield TextSegment(segment.markup)
        else:
            stats.parsed += 1
            stats.repaired += segment.repaired
            yield segment


def tool_use_block(call: ToolCall) -> dict:
    """An Anthropic tool_use content block for a call."""
    return {"type": "tool_use", "id": new_tool_use_id(), "name": call.name, "input": call.input}


def thinking_block(text: str) -> dict:
    """An Anthropic thinking block for reasoning the model wrote as text (it carries no signature)."""
    return {"type": "thinking", "thinking": text, "signature": ""}


def reasoning_reach(thinking: bool, first_block: bool) -> int:
    """How long the start of a text block waits for a bare </think>: only the answer's first block does."""
    if not first_block:
        return 0
    return THINKING_REASONING_REACH if thinking else REASONING_REACH


def _content_for_text(text: str, tools: ToolIndex, mode: str, thinking: bool, first_block: bool,
                      stats: ToolCallStats) -> list[dict]:
    blocks: list[dict] = []
    segments = parse_tool_calls(text, tools, mode, reasoning_reach(thinking, first_block))
    for segment in accepted_segments(segments, stats):
        if isinstance(segment, ToolCall):
            blocks.append(tool_use_block(segment))
        elif isinstance(segment, ReasoningSegment):
            if thinking:
                blocks.append(thinking_block(segment.text))
        elif blocks and blocks[-1]["type"] == "text":
            blocks[-1]["text"] += segment.text
        else:
            blocks.append({"type": "text", "text": segment.text})
    return blocks


def rewrite_message(message: dict, tools: Sequence[dict] | None, mode: str = "auto",
                    thinking: bool = False) -> tuple[dict, ToolCallStats]:
    """Anthropic message with text tool calls turned into tool_use blocks: a new dict, or `message`
    itself when its content comes out the same (so its provider's bytes can go to the client as
    they came). The input is never modified.

    thinking: the client asked for thinking, so reasoning written as text becomes thinking blocks.
    """
    stats = ToolCallStats()
    index = build_tool_index(tools)  # once for the whole answer, not once per text block
    if not _is_active(index, mode):
        return message, stats
    content: list[dict] = []
    for position, block in enumerate(message.get("content") or ()):
        if isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            content.extend(_content_for_text(block["text"], index, mode, thinking, position == 0, stats))
        else:
            content.append(block)
    if not stats.parsed and content == message.get("content"):
        return message, stats  # no call, and nothing held back or dropped (rejected calls stay text)
    rewritten = {**message, "content": content}
    if stats.parsed:
        rewritten["stop_reason"] = "tool_use"
    return rewritten, stats


class ToolCallStreamRewriter:
    """Rewrites an Anthropic event stream so text tool calls become tool_use blocks."""

    def __init__(self, tools: Sequence[dict] | None, mode: str = "auto", thinking: bool = False) -> None:
        self._tools = build_tool_index(tools)  # once for the stream; each block's parser reuses it
        self._mode = mode
        self._thinking = thinking
        self._active = _is_active(self._tools, mode)
        self.stats = ToolCallStats()
        self._parsers: dict[int, StreamingToolCallParser] = {}
        self._passthrough: dict[int, int] = {}   # upstream index -> emitted index
        self._next_index = 0
        self._open_text: int | None = None
        self._open_kind = "text"
        self._blocks_seen = 0

    @property
    def active(self) -> bool:
        """False when there is nothing to do (no tools, or mode off): the caller may bypass the rewriter."""
        return self._active

    def feed(self, event: dict) -> list[dict]:
        """Events to send downstream for one upstream event."""
        if not self._active:
            return [event]
        kind = event.get("type")
        if kind == "content_block_start":
            return self._start_block(event)
        if kind == "content_block_delta":
            return self._delta(event)
        if kind == "content_block_stop":
            return self._stop_block(event)
        if kind == "message_delta" and self.stats.parsed:
            return [{**event, "delta": {**(event.get("delta") or {}), "stop_reason": "tool_use"}}]
        if kind == "message_stop":
            return self.finish() + [event]
        return [event]

    def finish(self) -> list[dict]:
        """Flush text still held by any parser and close open blocks."""
        events: list[dict] = []
        for parser in self._parsers.values():
            events.extend(self._emit(parser.finish()))
        self._parsers.clear()
        events.extend(self._close_text())
        return events

    def _start_block(self, event: dict) -> list[dict]:
        block = event.get("content_block") or {}
        upstream_index = event.get("index", 0)
        self._blocks_seen += 1
        if block.get("type") == "text":
            # not forwarded: a text block is opened downstream only when there is text to send
            reach = reasoning_reach(self._thinking, self._blocks_seen == 1)
            parser = StreamingToolCallParser(self._tools, self._mode, reach)
            self._parsers[upstream_index] = parser
            return self._emit(parser.feed(block.get("text") or ""))
        events = self._close_text()
        self._passthrough[upstream_index] = self._next_index
        events.append({**event, "index": self._next_index})
        self._next_index += 1
        return events

    def _delta(self, event: dict) -> list[dict]:
        upstream_index = event.get("index", 0)
        parser = self._parsers.get(upstream_index)
        if parser is not None:
            delta = event.get("delta") or {}
            return self._emit(parser.feed(delta.get("text") or "")) if delta.get("type") == "text_delta" else []
        if upstream_index in self._passthrough:
            return [{**event, "index": self._passthrough[upstream_index]}]
        return []

    def _stop_block(self, event: dict) -> list[dict]:
        upstream_index = event.get("index", 0)
        parser = self._parsers.pop(upstream_index, None)
        if parser is not None:
            return self._emit(parser.finish()) + self._close_text()
        if upstream_index in self._passthrough:
            return [{**event, "index": self._passthrough.pop(upstream_index)}]
        return []

    def _emit(self, segments: list[Segment]) -> list[dict]:
        if not segments:
            return []  # the parser holds the text back (most deltas while it waits to decide)
        events: list[dict] = []
        for segment in accepted_segments(segments, self.stats):
            if isinstance(segment, TextSegment):
                events.extend(self._text_delta(segment.text))
            elif isinstance(segment, ReasoningSegment):
                if self._thinking:
                    events.extend(self._text_delta(segment.text, "thinking"))
            else:
                events.extend(self._close_text())
                events.extend(self._tool_use_events(segment))
        return events

    def _text_delta(self, text: str, kind: str = "text") -> list[dict]:
        """A text (or thinking) delta, opening a block of that kind first when needed."""
        events: list[dict] = []
        if self._open_text is not None and self._open_kind != kind:
            events.extend(self._close_text())
        if self._open_text is None:
            self._open_text, self._next_index, self._open_kind = self._next_index, self._next_index + 1, kind
            block = {"type": "text", "text": ""} if kind == "text" else thinking_block("")
            events.append({"type": "content_block_start", "index": self._open_text, "content_block": block})
        delta = ({"type": "text_delta", "text": text} if kind == "text"
                 else {"type": "thinking_delta", "thinking": text})
        events.append({"type": "content_block_delta", "index": self._open_text, "delta": delta})
        return events

    def _close_text(self) -> list[dict]:
        if self._open_text is None:
            return []
        index, self._open_text = self._open_text, None
        return [{"type": "content_block_stop", "index": index}]

    def _tool_use_events(self, call: ToolCall) -> list[dict]:
        index, self._next_index = self._next_index, self._next_index + 1
        block = {**tool_use_block(call), "input": {}}
        return [
            {"type": "content_block_start", "index": index, "content_block": block},
            {"type": "content_block_delta", "index": index,
             "delta": {"type": "input_json_delta", "partial_json": json.dumps(call.input, ensure_ascii=False)}},
            {"type": "content_block_stop", "index": index},
        ]
