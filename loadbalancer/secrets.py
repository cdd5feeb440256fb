"""One scrubber for every secret the service holds, applied to everything that leaves it.

Pure: no Flask, no network. A `SecretScrubber` asks its source for the secrets each time it
scrubs (provider keys, configured header values, cloud credentials and cached access tokens
through `Provider.secret_values()`, client keys), so a token refreshed a minute ago is found
too; the search patterns are rebuilt only when that set changes. Every written form of a
secret a provider or a log line could carry is replaced by `REDACTED`: the raw value, its
JSON-escaped forms, its Python repr and its URL-encoded forms. JSON is scrubbed value by
value (and re-encoded only when a secret was found), so the result stays valid JSON.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator
from urllib.parse import quote, quote_plus

import orjson

REDACTED = "[redacted]"
# Shorter values would match ordinary words and numbers; they are no secrets worth the name.
MIN_SECRET_LENGTH = 8
# Stream chunks are scanned only when they could carry an error event (or error text).
_STREAM_ERROR_MARK = b"error"


def written_forms(secret: str) -> set[str]:
    """The ways a secret can be written in text: raw, JSON-escaped, repr, URL-encoded."""
    return {secret, orjson.dumps(secret).decode()[1:-1], json.dumps(secret)[1:-1],
            repr(secret)[1:-1], quote(secret, safe=""), quote_plus(secret, safe="")}


@dataclass(frozen=True)
class _Patterns:
    """Search patterns for one set of secrets."""

    secrets: frozenset[str]
    text_forms: tuple[str, ...]
    byte_forms: tuple[bytes, ...]
    text_pattern: re.Pattern[str] | None
    bytes_pattern: re.Pattern[bytes] | None
    # Every form as it reads inside a JSON string (orjson's escaping): finds, in a value
    # encoded whole, every string that holds a form, since JSON escapes character by character.
    encoded_pattern: re.Pattern[bytes] | None

    @classmethod
    def build(cls, secrets: frozenset[str]) -> "_Patterns":
        forms = {form for secret in secrets for form in written_forms(secret)}
        # Longest first: a secret that contains another is replaced whole.
        text_forms = tuple(sorted(forms, key=lambda form: (-len(form), form)))
        byte_forms = tuple(form.encode() for form in text_forms)
        if not text_forms:
            return cls(secrets, (), (), None, None, None)
        encoded_forms = {orjson.dumps(form)[1:-1] for form in text_forms}
        return cls(secrets, text_forms, byte_forms,
                   re.compile("|".join(re.escape(form) for form in text_forms)),
                   re.compile(b"|".join(re.escape(form) for form in byte_forms)),
                   re.compile(b"|".join(re.escape(form) for form in sorted(encoded_forms, key=len, reverse=True))))


class SecretScrubber:
    """Replaces every secret of its source by `REDACTED` in text, bytes, JSON and SSE."""

    def __init__(self, secret_values: Callable[[], Iterable[str]]) -> None:
        self._secret_values = secret_values
        self._patterns = _Patterns.build(frozenset())
        self._values_seen: object = None

    def _current(self) -> _Patterns:
        """The patterns for the secrets as they are now (rebuilt only when they changed)."""
        values = self._secret_values()
        if isinstance(values, tuple) and values is self._values_seen:
            return self._patterns  # the very same (immutable) values came back: nothing changed
        secrets = frozenset(value for value in values
                            if isinstance(value, str) and len(value) >= MIN_SECRET_LENGTH)
        patterns = self._patterns
        if patterns.secrets != secrets:
            patterns = _Patterns.build(secrets)
            self._patterns = patterns  # one attribute store: safe when threads race to rebuild
        self._values_seen = values
        return patterns

    def text(self, value: str) -> str:
        """`value` with every secret replaced; the same object when it holds none."""
        return _scrub_text(value, self._current())

    def raw_bytes(self, data: bytes) -> bytes:
        """Bytes scrubbed as text (for bodies that are neither JSON nor SSE)."""
        patterns = self._current()
        if not self._holds_secret(patterns, data):
            return data
        return patterns.bytes_pattern.sub(REDACTED.encode(), data)

    def json_bytes(self, data: bytes) -> bytes:
        """A JSON document scrubbed value by value, so it stays valid; as text when it is not JSON."""
        patterns = self._current()
        if not self._holds_secret(patterns, data):
            return data
        try:
            return orjson.dumps(_scrub_value(orjson.loads(data), patterns))
        except (orjson.JSONDecodeError, orjson.JSONEncodeError, RecursionError):
            return patterns.bytes_pattern.sub(REDACTED.encode(), data)

    def json_value(self, value: object) -> object:
        """A decoded JSON value with every string (keys included) scrubbed.

        The secrets are read once for the whole value: a log record's three dozen fields
        asked the providers for their secrets three dozen times, a tenth of a request.
        """
        return _scrub_value(value, self._current())

    def sse_bytes(self, data: bytes) -> bytes:
        """SSE frames with every `data:` payload scrubbed as JSON and every other line as text."""
        patterns = self._current()
        if not self._holds_secret(patterns, data):
            return data
        lines = []
        for line in data.split(b"\n"):
            if line.startswith(b"data:"):
                payload = line[5:].lstrip(b" ")
                line = b"data: " + self.json_bytes(payload)
            else:
                line = patterns.bytes_pattern.sub(REDACTED.encode(), line)
            lines.append(line)
        return b"\n".join(lines)

    def body(self, data: bytes, content_type: str | None) -> bytes:
        """A whole response body, scrubbed the way its content type is written."""
        kind = (content_type or "").lower()
        if "event-stream" in kind:
            return self.sse_bytes(data)
        if "json" in kind:
            return self.json_bytes(data)
        return self.raw_bytes(data)

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        """An SSE stream passed on chunk by chunk; chunks that may carry an error are scrubbed.

        Content frames go through untouched (one substring test each); closing this
        generator closes the stream it wraps, so the upstream connection is released.
        """
        try:
            for chunk in chunks:
                yield self.sse_bytes(chunk) if _STREAM_ERROR_MARK in chunk else chunk
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()

    @staticmethod
    def _holds_secret(patterns: _Patterns, data: bytes) -> bool:
        return patterns.bytes_pattern is not None and any(form in data for form in patterns.byte_forms)


def _scrub_text(value: str, patterns: _Patterns) -> str:
    """`value` with every secret of `patterns` replaced; the same object when it holds none."""
    if patterns.text_pattern is None or not any(form in value for form in patterns.text_forms):
        return value
    return patterns.text_pattern.sub(REDACTED, value)


def _scrub_value(value: object, patterns: _Patterns) -> object:
    """A decoded JSON value with every string (keys included) scrubbed."""
    if patterns.text_pattern is None:
        return value  # no secret configured at all
    if isinstance(value, dict) and not _may_hold_secret(value, patterns):
        return value
    if isinstance(value, str):
        return _scrub_text(value, patterns)
    if isinstance(value, list):
        return [_scrub_value(item, patterns) for item in value]
    if isinstance(value, dict):
        return {_scrub_value(key, patterns): _scrub_value(item, patterns) for key, item in value.items()}
    return value


def _may_hold_secret(value: dict, patterns: _Patterns) -> bool:
    """One search over a whole record: a log line's dozens of fields almost never hold a secret.

    The record encoded by orjson (a microsecond) is searched for the forms as JSON writes
    them; a record orjson cannot encode has its strings gathered and searched instead.
    """
    try:
        encoded = orjson.dumps(value)
    except (TypeError, orjson.JSONEncodeError):
        return patterns.text_pattern.search("\x00".join(_strings_of(value))) is not None
    return patterns.encoded_pattern.search(encoded) is not None


def _strings_of(value: object) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _strings_of(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings_of(key)
            yield from _strings_of(item)
