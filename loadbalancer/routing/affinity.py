"""Which conversation a request belongs to: the key that keeps it on one provider.

Pure: read once from the request body and headers. Keeping a conversation on one provider
keeps that provider's prompt cache warm.
"""

from __future__ import annotations

import hashlib
from typing import Any, Mapping

SESSION_HEADERS = ("x-claude-code-session-id", "x-session-id")


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


def _text_of(content: Any) -> str:
    """Plain text of a system prompt or message content (string or list of text blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""
