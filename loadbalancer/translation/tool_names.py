"""Reversible renaming of tool names that an OpenAI-compatible backend would reject.

OpenAI accepts function names matching ``^[a-zA-Z0-9_-]+$`` of at most 64 characters;
Anthropic clients (MCP tools in Claude Code especially) send longer names and names with
dots or colons. Such names get a readable prefix plus a hash of the original, so distinct
names never collide and the same tools always map to the same backend names.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, Mapping

DEFAULT_MAX_TOOL_NAME_LENGTH = 64
HASH_LENGTH = 8
_ALLOWED_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
_DISALLOWED_CHARACTER = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class ToolNameMap:
    """Reversible shortening of tool names longer than a backend allows."""

    to_backend: Mapping[str, str] = field(default_factory=dict)

    def backend_name(self, original: str) -> str:
        """The name to send to the backend for a client's tool name."""
        return self.to_backend.get(original, original)

    def original_name(self, backend: str) -> str:
        """The client's tool name for a name the backend used; unknown names come back unchanged."""
        for original, shortened in self.to_backend.items():
            if shortened == backend:
                return original
        return backend


def is_acceptable_tool_name(name: str, max_length: int = DEFAULT_MAX_TOOL_NAME_LENGTH) -> bool:
    """Whether an OpenAI-compatible backend takes this name as it is."""
    return len(name) <= max_length and bool(_ALLOWED_NAME.match(name))


def _hashed_name(original: str, max_length: int, hash_length: int) -> str:
    """A valid name: the sanitised start of ``original``, "_", and a hash of all of it."""
    digest = hashlib.sha1(original.encode("utf-8")).hexdigest()[:hash_length]
    sanitised = _DISALLOWED_CHARACTER.sub("_", original)
    prefix = sanitised[: max(max_length - hash_length - 1, 0)]
    return f"{prefix}_{digest}" if prefix else digest[:max_length]


def build_tool_name_map(
    names: Iterable[str], max_length: int = DEFAULT_MAX_TOOL_NAME_LENGTH
) -> ToolNameMap:
    """A deterministic map that renames only the names a backend would reject."""
    unique_names = list(dict.fromkeys(names))
    taken = set(unique_names)
    to_backend: dict[str, str] = {}
    for original in unique_names:
        if is_acceptable_tool_name(original, max_length):
            continue
        # A longer hash resolves the (astronomically rare) clash with another name.
        for hash_length in range(HASH_LENGTH, 41):
            candidate = _hashed_name(original, max_length, hash_length)
            if candidate not in taken:
                break
        taken.add(candidate)
        to_backend[original] = candidate
    return ToolNameMap(to_backend=to_backend)
