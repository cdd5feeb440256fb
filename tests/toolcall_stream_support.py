"""Helpers for the tool-call tests: cut texts into deltas, wrap them as Anthropic streams, reassemble streams."""
from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence

from loadbalancer.toolcalls.parser import Segment, StreamingToolCallParser, merge_text_segments
from loadbalancer.toolcalls.rewrite import ToolCallStreamRewriter


def random_chunks(text: str, seed: int, largest: int = 12) -> list[str]:
    """The text cut at seeded random places."""
    generator = random.Random(seed)
    chunks, position = [], 0
    while position < len(text):
        size = generator.randint(1, largest)
        chunks.append(text[position:position + size])
        position += size
    return chunks


def stream_parse(chunks: Iterable[str], tools: Sequence[dict], mode: str = "auto",
                 reasoning_reach: int = 0) -> list[Segment]:
    """What StreamingToolCallParser makes of the chunks, adjacent text merged."""
    parser = StreamingToolCallParser(tools, mode, reasoning_reach)
    segments: list[Segment] = []
    for chunk in chunks:
        segments.extend(parser.feed(chunk))
    return merge_text_segments(segments + parser.finish())


def anthropic_events(chunks: Sequence[str], stop_reason: str = "end_turn") -> list[dict]:
    """An upstream Anthropic stream with one text block made of the chunks."""
    events = [{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
                                                    "content": [], "stop_reason": None}},
              {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
    events += [{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": chunk}}
               for chunk in chunks]
    events += [{"type": "content_block_stop", "index": 0},
               {"type": "message_delta", "delta": {"stop_reason": stop_reason}, "usage": {"output_tokens": 5}},
               {"type": "message_stop"}]
    return events


def rewrite_stream(events: Iterable[dict], tools: Sequence[dict] | None, mode: str = "auto") -> tuple[list[dict], ToolCallStreamRewriter]:
    """Every event the rewriter sends for an upstream stream."""
    rewriter = ToolCallStreamRewriter(tools, mode)
    output: list[dict] = []
    for event in events:
        output.extend(rewriter.feed(event))
    return output, rewriter


def assemble_message(events: Sequence[dict]) -> dict:
    """The message a strict client builds from a stream; asserts indices are 0,1,2… and never interleave."""
    content: list[dict] = []
    partial_json: dict[int, list[str]] = {}
    open_index = None
    stop_reason = None
    for event in events:
        kind = event["type"]
        if kind == "content_block_start":
            assert open_index is None, "blocks interleave"
            assert event["index"] == len(content), "indices are not consecutive"
            open_index = event["index"]
            content.append(json.loads(json.dumps(event["content_block"])))
            partial_json[open_index] = []
        elif kind == "content_block_delta":
            assert event["index"] == open_index
            delta = event["delta"]
            if delta["type"] == "text_delta":
                content[open_index]["text"] += delta["text"]
            elif delta["type"] == "input_json_delta":
                partial_json[open_index].append(delta["partial_json"])
            elif delta["type"] == "thinking_delta":
                content[open_index]["thinking"] += delta["thinking"]
        elif kind == "content_block_stop":
            assert event["index"] == open_index
            if content[open_index]["type"] == "tool_use" and partial_json[open_index]:
                content[open_index]["input"] = json.loads("".join(partial_json[open_index]))
            open_index = None
        elif kind == "message_delta":
            stop_reason = event["delta"].get("stop_reason")
    assert open_index is None, "a block was never closed"
    return {"content": content, "stop_reason": stop_reason}


def without_ids(content: Sequence[dict]) -> list[dict]:
    """Content blocks with tool_use ids blanked, for comparing two rewrites."""
    return [{**block, "id": "toolu_x"} if block.get("type") == "tool_use" else block for block in content]
