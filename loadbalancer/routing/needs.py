"""What a request needs from a provider, and which conversation it belongs to.

Pure: read once from the request body (and headers) before the balancer plans attempts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

BYTES_PER_TOKEN = 4
THINKING_TYPES = frozenset({"enabled", "adaptive"})
SESSION_HEADERS = ("x-claude-code-session-id", "x-session-id")


@dataclass(frozen=True)
class RequestNeeds:
    """What a request needs from a provider, read once from the body."""

    model: str
    estimated_input_tokens: int = 0
    max_tokens: int = 0
    has_images: bool = False
    wants_thinking: bool = False

    @classmethod
    def from_body(cls, body: Mapping[str, Any], body_size: int | None = None) -> RequestNeeds:
        """Read model, max_tokens, thinking, images and a rough token estimate from a Messages body.

        Pass `body_size` (the raw request length) when known: re-serialising a multi-megabyte
        body only to measure it would cost milliseconds per request.
        """
        thinking = body.get("thinking")
        messages = body.get("messages")
        messages = messages if isinstance(messages, list) else []
        return cls(
            model=str(body.get("model") or ""),
            estimated_input_tokens=(len(_serialize(body)) if body_size is None else body_size) // BYTES_PER_TOKEN,
            max_tokens=_as_int(body.get("max_tokens")),
            has_images=any(isinstance(m, dict) and _has_image(m.get("content")) for m in messages),
            wants_thinking=isinstance(thinking, dict) and thinking.get("type") in THINKING_TYPES,
        )


def affinity_key_for(body: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """Key that keeps one conversation on one provider (so its prompt cache stays warm)."""
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return user_id
    for header in SESSION_HEADERS:
        value = headers.get(header) or headers.get(header.title())
        if value:
            return value
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    first_user = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), {})
    seed = _text_of(body.get("system")) + "\x00" + _text_of(first_user.get("content"))
    if seed == "\x00":
        return None
    return hashlib.sha256(seed.encode("utf-8")).hexdigest()


def _serialize(body: Mapping[str, Any]) -> bytes:
    """Compact JSON bytes of the body, only to estimate its size."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:  # e.g. integers beyond 64 bits, which json handles
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def _as_int(value: Any) -> int:
    """An int from the body, or 0 when absent or not an integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _has_image(content: Any) -> bool:
    """Whether message content holds an image block, also inside tool_result content."""
    if not isinstance(content, list):
        return False
    for block in content:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "image":
            return True
        if block.get("type") == "tool_result" and _has_image(block.get("content")):
            return True
    return False


def _text_of(content: Any) -> str:
    """Plain text of a system prompt or message content (string or list of text blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""
