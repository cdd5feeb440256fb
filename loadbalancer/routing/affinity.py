"""Which conversation a request belongs to, and which provider it stays on.

Pure: the key is read once from the request body and headers, and is always a fixed-size
digest, so a client's 1 MiB `user_id` costs one hash and is not kept (only the partial digests
of the last few long system prompts are, to spare an agent hashing its prompt every turn). The provider is
chosen by rendezvous (highest random weight) hashing over the eligible providers: it needs
no table, gives the same answer on every worker and instance, and when a provider leaves
only the conversations it held move. Keeping a conversation on one provider keeps that
provider's prompt cache warm.
"""

from __future__ import annotations

import hashlib
import math
import threading
from typing import Any, Mapping, Protocol, Sequence, TypeVar

SESSION_HEADERS = ("x-claude-code-session-id", "x-session-id")
HASH_SPACE = float(2 ** 64)
_DIGEST_OPENING = b"first turn\x00"  # what `_digest("first turn", seed)` hashes first
# An agent sends the same system prompt every turn, and `body_scan` gives every turn that sends
# the same bytes the same object: the text of one from this size on is hashed once (15 KB: ~16
# µs a turn) and its digest so far found again by the object. A few sessions' worth is kept.
REMEMBERED_SYSTEM_FROM = 2048
REMEMBERED_SYSTEMS_KEPT = 64
_system_digests: dict[int, tuple[Any, Any]] = {}
_remembering = threading.Lock()


class Weighted(Protocol):
    """What rendezvous hashing reads of a provider."""

    name: str
    weight: int


P = TypeVar("P", bound=Weighted)


def affinity_key_for(body: Mapping[str, Any], headers: Mapping[str, str]) -> str | None:
    """Key that keeps one conversation on one provider (so its prompt cache stays warm)."""
    metadata = body.get("metadata")
    if isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return _digest("user_id", user_id)
    for header in SESSION_HEADERS:
        value = headers.get(header) or headers.get(header.title())
        if value:
            return _digest(header, value)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    first_user = next((m for m in messages if isinstance(m, dict) and m.get("role") == "user"), {})
    system = body.get("system")
    first_text = _text_of(first_user.get("content"))
    remembered = _system_digests.get(id(system))
    if remembered is not None and remembered[0] is system:
        digest = remembered[1].copy()  # the system prompt's text hashed already
    else:
        system_text = _text_of(system)
        if not system_text and not first_text:
            return None
        digest = hashlib.sha256(_DIGEST_OPENING + system_text.encode("utf-8", errors="surrogatepass"))
        if len(system_text) >= REMEMBERED_SYSTEM_FROM:
            _remember(system, digest.copy())
    digest.update(("\x00" + first_text).encode("utf-8", errors="surrogatepass"))
    return digest.hexdigest()


def _remember(system: Any, digest: Any) -> None:
    """Keep a system prompt's digest so far, with the prompt itself (so its id stays its own)."""
    with _remembering:  # gthread workers: the oldest is looked up and dropped by one thread at a time
        if len(_system_digests) >= REMEMBERED_SYSTEMS_KEPT:
            _system_digests.pop(next(iter(_system_digests)), None)
        _system_digests[id(system)] = (system, digest)


def rendezvous_pick(key: str, providers: Sequence[P]) -> P | None:
    """The provider with the highest weighted random score for `key` (None for no providers).

    Score = weight / -ln(u), u uniform in (0, 1) from a hash of key and name: each provider
    wins a share of keys proportional to its weight, and the winner for a key depends only on
    the key and the candidates, never on their order or on any earlier request.
    """
    best: P | None = None
    best_score = -1.0
    for provider in providers:
        digest = hashlib.blake2b(f"{key}\x00{provider.name}".encode(), digest_size=8).digest()
        uniform = (int.from_bytes(digest, "big") + 0.5) / HASH_SPACE
        score = provider.weight / -math.log(uniform)
        if score > best_score:
            best, best_score = provider, score
    return best


def _digest(source: str, value: str) -> str:
    """A fixed-size key: where it came from and what it said, hashed."""
    return hashlib.sha256(f"{source}\x00{value}".encode("utf-8", errors="surrogatepass")).hexdigest()


def _text_of(content: Any) -> str:
    """Plain text of a system prompt or message content (string or list of text blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content
                       if isinstance(b, dict) and isinstance(b.get("text"), str))
    return ""
