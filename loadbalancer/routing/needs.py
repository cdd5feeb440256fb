"""What a request needs from a provider: model, size, images, thinking.

Pure: read once from the request body before the balancer plans attempts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

import orjson

BYTES_PER_TOKEN = 4
THINKING_TYPES = frozenset({"enabled", "adaptive"})


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
