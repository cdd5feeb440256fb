"""What happened to one request, and its single log line.

The route creates a `RequestRecord`, the forwarding loop fills in the attempts, and the
record writes one line when the request ends (for a stream: when the stream ends). Only
names, statuses and counts go into it: never a key, never a body.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

import orjson

from loadbalancer.toolcalls.rewrite import ToolCallStats

log = logging.getLogger("loadbalancer.access")
# Outcomes that say nothing against the provider: it answered, or the attempt never got a verdict.
NOT_A_FAILURE_OUTCOMES = frozenset({"ok", "pending", "aborted"})


MAX_CLIENT_REQUEST_ID_LENGTH = 128
# RFC 9110 token characters: safe in a header and in a log line, never a space or a quote.
_TOKEN_CHARACTERS = frozenset("!#$%&'*+-.^_`|~0123456789"
                              "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def new_request_id() -> str:
    """A fresh request id (also sent back as `x-request-id`)."""
    return "req_" + uuid.uuid4().hex[:24]


def request_id_for(client_value: str | None) -> str:
    """The client's own `x-request-id` when it is a token of at most 128 characters, else a new one."""
    if (client_value and len(client_value) <= MAX_CLIENT_REQUEST_ID_LENGTH
            and all(character in _TOKEN_CHARACTERS for character in client_value)):
        return client_value
    return new_request_id()


@dataclass
class Attempt:
    """One try at one provider."""

    provider: str
    started: float
    outcome: str = "pending"
    seconds: float = 0.0

    def finish(self, outcome: str) -> None:
        """Record how the attempt ended."""
        self.outcome = outcome
        self.seconds = time.monotonic() - self.started

    @property
    def failed(self) -> bool:
        """Whether the provider failed this attempt (a failover, in logs and metrics)."""
        return self.outcome not in NOT_A_FAILURE_OUTCOMES and not self.outcome.endswith("passed through")


@dataclass
class RequestRecord:
    """The facts of one request, written as one log line at its end."""

    request_id: str
    method: str
    path: str
    client: str | None = None
    model: str | None = None
    stream: bool = False
    status: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    first_byte_seconds: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    tool_call_stats: ToolCallStats = field(default_factory=ToolCallStats)
    stream_error: str | None = None
    error: str | None = None
    dropped_tools: list[str] = field(default_factory=list)  # tools the front door could not offer
    started: float = field(default_factory=time.monotonic)
    json_format: bool = False
    on_finish: Callable[["RequestRecord"], None] | None = None
    _done: bool = False

    def start_attempt(self, provider: str) -> Attempt:
        """Begin an attempt at `provider`."""
        attempt = Attempt(provider, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    @property
    def provider(self) -> str | None:
        """The provider that answered, if any."""
        for attempt in reversed(self.attempts):
            if attempt.outcome == "ok" or attempt.outcome.endswith("passed through"):
                return attempt.provider
        return None

    @property
    def elapsed_seconds(self) -> float:
        """Seconds since the request arrived."""
        return time.monotonic() - self.started

    @property
    def failovers(self) -> int:
        """Attempts that failed before the one that answered."""
        return sum(1 for attempt in self.attempts if attempt.failed)

    def finish(self) -> None:
        """Write the log line once (a stream calls this when it ends)."""
        if self._done:
            return
        self._done = True
        try:
            if self.on_finish is not None:
                self.on_finish(self)
        except OSError as err:
            # Metrics files that cannot be written (a full disk, no file descriptors left) are
            # the load balancer's own trouble: the request and its log line must not suffer.
            log.warning("request %s: could not record metrics: %s", self.request_id, err)
        log.info("%s", self.format_line())

    def fields(self) -> dict:
        """The record as a flat dict for structured logs."""
        stats = self.tool_call_stats
        return {
            "request_id": self.request_id, "method": self.method, "path": self.path,
            "client": self.client, "model": self.model, "stream": self.stream,
            "status": self.status, "provider": self.provider,
            "attempts": [f"{a.provider}:{a.outcome}:{a.seconds * 1000:.0f}ms" for a in self.attempts],
            "latency_ms": round(self.elapsed_seconds * 1000, 1),
            "first_byte_ms": None if self.first_byte_seconds is None else round(self.first_byte_seconds * 1000, 1),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "text_tool_calls": {"parsed": stats.parsed, "repaired": stats.repaired, "rejected": stats.rejected},
            "stream_error": self.stream_error, "error": self.error, "dropped_tools": self.dropped_tools,
        }

    def format_line(self) -> str:
        """The log line: JSON when LOG_FORMAT=json, readable key=value text otherwise."""
        values = self.fields()
        if self.json_format:
            return orjson.dumps(values).decode()
        tools = values["text_tool_calls"]
        parts = [
            f"request_id={values['request_id']}", f"{self.method} {self.path}",
            f"model={self.model or '-'}", f"stream={'yes' if self.stream else 'no'}",
            f"status={self.status}", f"provider={self.provider or '-'}",
            "tried=" + (",".join(values["attempts"]) or "-"),
            f"latency_ms={values['latency_ms']}",
        ]
        if self.client:
            parts.append(f"client={self.client}")
        if values["first_byte_ms"] is not None:
            parts.append(f"first_byte_ms={values['first_byte_ms']}")
        if self.input_tokens or self.output_tokens:
            parts.append(f"tokens={self.input_tokens}/{self.output_tokens}")
        if any(tools.values()):
            parts.append("text_tool_calls=parsed:{parsed},repaired:{repaired},rejected:{rejected}".format(**tools))
        if self.dropped_tools:
            parts.append("dropped_tools=" + ",".join(self.dropped_tools))
        if self.stream_error:
            parts.append(f"stream_error={self.stream_error!r}")
        if self.error:
            parts.append(f"error={self.error!r}")
        return " ".join(parts)
