"""Client side, outbound: an Anthropic message or event stream -> OpenAI Chat Completions.

Answers, streams and errors in the shapes the `openai` SDK expects, for clients of the
`/v1/chat/completions` front door whose request was served as an Anthropic one.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

_FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def openai_error_body(status: int, message: str, error_type: str) -> dict:
    """An OpenAI-style error body for the front door."""
    return {"error": {"message": message, "type": error_type, "code": str(status)}}


def openai_finish_reason(stop_reason: Any) -> str:
    """The OpenAI finish_reason for an Anthropic stop_reason."""
    return _FINISH_REASONS.get(stop_reason, "stop")


def _completion_id() -> str:
    """A fresh chat.completion id."""
    return "chatcmpl-" + secrets.token_hex(12)


def _openai_usage(usage: Any) -> dict:
    """OpenAI usage for Anthropic usage: cached and cache-written tokens count as prompt tokens."""
    usage = usage if isinstance(usage, dict) else {}
    counts = {key: value for key, value in usage.items() if isinstance(value, int) and value > 0}
    prompt = sum(
        counts.get(key, 0)
        for key in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    )
    completion = counts.get("output_tokens", 0)
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}


def anthropic_to_openai_response(message: dict, requested_model: str) -> dict:
    """An OpenAI chat.completion for an Anthropic message."""
    blocks = [block for block in message.get("content") or [] if isinstance(block, dict)]
    text = "".join(block.get("text") or "" for block in blocks if block.get("type") == "text")
    reasoning = "".join(block.get("thinking") or "" for block in blocks if block.get("type") == "thinking")
    tool_calls = [
        {
            "id": block.get("id") or _completion_id(),
            "type": "function",
            "function": {"name": block.get("name") or "", "arguments": json.dumps(block.get("input") or {})},
        }
        for block in blocks
        if block.get("type") == "tool_use"
    ]
    reply: dict[str, Any] = {"role": "assistant", "content": text or None}
    if reasoning:
        reply["reasoning_content"] = reasoning
    if tool_calls:
        reply["tool_calls"] = tool_calls
    choice = {"index": 0, "message": reply, "finish_reason": openai_finish_reason(message.get("stop_reason"))}
    return {
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": requested_model,
        "choices": [choice],
        "usage": _openai_usage(message.get("usage")),
    }


class AnthropicToOpenAIStream:
    """Anthropic events -> OpenAI chat.completion.chunk dicts (the caller frames them as `data: {json}\n\n` and ends with `data: [DONE]`).

    An Anthropic `error` event comes back as a single `{"error": {...}}` dict (see
    openai_error_body), which the caller frames as `data: {"error": ...}` and then stops.
    """

    def __init__(self, requested_model: str, include_usage: bool) -> None:
        self._model = requested_model
        self._include_usage = include_usage
        self._id = _completion_id()
        self._created = int(time.time())
        self._tool_positions: dict[int, int] = {}
        self._usage: dict[str, int] = {}
        self._finish_sent = False
        self._finished = False

    def feed(self, event: dict) -> list[dict]:
        """The OpenAI chunks for one Anthropic event (possibly none)."""
        if self._finished or not isinstance(event, dict):
            return []
        event_type = event.get("type")
        if event_type == "message_start":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            self._remember_usage(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if event_type == "content_block_start":
            return self._block_start(event)
        if event_type == "content_block_delta":
            return self._block_delta(event)
        if event_type == "message_delta":
            self._remember_usage(event.get("usage"))
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            self._finish_sent = True
            return [self._chunk({}, openai_finish_reason(delta.get("stop_reason")))]
        if event_type == "error":
            self._finished = True
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            message = error.get("message") if isinstance(error.get("message"), str) else "provider error"
            return [openai_error_body(500, message, error.get("type") or "api_error")]
        return []

    def finish(self) -> list[dict]:
        """A finish chunk if none was sent, then the usage chunk if asked for; idempotent."""
        if self._finished:
            return []
        self._finished = True
        chunks = [] if self._finish_sent else [self._chunk({}, "stop")]
        if self._include_usage:
            usage_chunk = self._chunk({})
            usage_chunk["choices"] = []
            usage_chunk["usage"] = _openai_usage(self._usage)
            chunks.append(usage_chunk)
        return chunks

    def _block_start(self, event: dict) -> list[dict]:
        """A tool call's opening chunk (id and name); text with an initial value."""
        block = event.get("content_block") if isinstance(event.get("content_block"), dict) else {}
        if block.get("type") == "tool_use":
            position = len(self._tool_positions)
            self._tool_positions[event.get("index")] = position
            call = {"index": position, "id": block.get("id") or _completion_id(), "type": "function",
                    "function": {"name": block.get("name") or "", "arguments": ""}}
            return [self._chunk({"tool_calls": [call]})]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, event: dict) -> list[dict]:
        """Text, reasoning or tool argument chunks for one content_block_delta."""
        delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        position = self._tool_positions.get(event.get("index"))
        if kind == "input_json_delta" and delta.get("partial_json") and position is not None:
            call = {"index": position, "function": {"arguments": delta["partial_json"]}}
            return [self._chunk({"tool_calls": [call]})]
        return []

    def _remember_usage(self, usage: Any) -> None:
        """Keep the latest token counts (message_delta usage is cumulative)."""
        if isinstance(usage, dict):
            self._usage.update({key: value for key, value in usage.items() if isinstance(value, int)})

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> dict:
        """One chat.completion.chunk with a single choice."""
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
