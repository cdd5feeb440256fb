"""What happened to one request, and its single log line.

The route creates a `RequestRecord`, the forwarding loop fills in the attempts, and the
record writes one line when the request ends (for a stream: when the stream ends). Only
names, statuses and counts go into it: never a key, never a body. The line's fields travel
on the log record (`ACCESS_FIELDS`); `ops/logging_setup` writes them as JSON or logfmt.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable

from loadbalancer.toolcalls.rewrite import ToolCallStats

log = logging.getLogger("loadbalancer.access")
ACCESS_FIELDS = "access_fields"  # the LogRecord attribute the formatters write as the line's fields


@dataclass(frozen=True)
class AnswerUsage:
    """What a provider's answer reports besides its content: tokens, cache use, why it stopped."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str | None = None


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


OK = "ok"
PENDING = "pending"
ABORTED = "aborted"  # ended without a verdict on the provider (a local fault, a bad client body)
NO_VERDICT_OUTCOMES = frozenset({PENDING, ABORTED})
PASSED_THROUGH = "passed_through"  # the provider answered a client error, handed on as it is
USER_AGENT_LIMIT = 200  # a client-chosen string: bounded before it reaches logs and the page


@dataclass
class Attempt:
    """One try at one provider."""

    provider: str
    started: float
    outcome: str = PENDING
    seconds: float = 0.0

    def finish(self, outcome: str) -> None:
        """Record how the attempt ended: "ok", a status or failure kind, or "404_passed_through"."""
        self.outcome = outcome
        self.seconds = time.monotonic() - self.started

    def finish_passed_through(self, status: int) -> None:
        """The provider answered; its client error goes to the client unchanged."""
        self.finish(f"{status}_{PASSED_THROUGH}")

    @property
    def answered(self) -> bool:
        """Whether the provider gave the answer the client got (a success or a passed-on 4xx)."""
        return self.outcome == OK or self.outcome.endswith(PASSED_THROUGH)

    @property
    def failed(self) -> bool:
        """Whether the attempt failed (the request moved on, or gave up)."""
        return self.outcome not in NO_VERDICT_OUTCOMES and not self.answered

    def summary(self) -> dict:
        """The attempt as the log and the status page show it."""
        return {"provider": self.provider, "outcome": self.outcome, "ms": round(self.seconds * 1000)}


@dataclass
class RequestRecord:
    """The facts of one request, written as one log line at its end."""

    request_id: str
    method: str
    path: str
    client: str | None = None
    client_addr: str | None = None
    user_agent: str | None = None
    model: str | None = None
    upstream_model: str | None = None
    stream: bool = False
    status: int = 0
    attempts: list[Attempt] = field(default_factory=list)
    first_token_seconds: float | None = None  # arrival to first content (a stream) or the answer
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    stop_reason: str | None = None
    tool_call_stats: ToolCallStats = field(default_factory=ToolCallStats)
    stream_error: str | None = None
    error: str | None = None
    dropped_tools: list[str] = field(default_factory=list)  # tools the front door could not offer
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # wall clock, for the status page
    latency_seconds: float | None = None  # set when the request ends
    on_finish: Callable[["RequestRecord"], None] | None = None
    _done: bool = False
    _final_fields: dict | None = field(default=None, repr=False, compare=False)  # fields() once it ended

    def start_attempt(self, provider: str) -> Attempt:
        """Begin an attempt at `provider`."""
        attempt = Attempt(provider, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    def note_usage(self, usage: AnswerUsage) -> None:
        """Take the tokens, cache use and stop reason the provider reported."""
        self.input_tokens, self.output_tokens = usage.input_tokens, usage.output_tokens
        self.cache_read_tokens, self.cache_write_tokens = usage.cache_read_tokens, usage.cache_write_tokens
        self.stop_reason = usage.stop_reason or self.stop_reason

    @property
    def provider(self) -> str | None:
        """The provider that answered, if any."""
        for attempt in reversed(self.attempts):
            if attempt.answered:
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
        self.latency_seconds = self.elapsed_seconds
        try:
            if self.on_finish is not None:
                self.on_finish(self)
        except OSError as err:
            # Metrics files that cannot be written (a full disk, no file descriptors left) are
            # the load balancer's own trouble: the request and its log line must not suffer.
            log.warning("request %s: could not record metrics: %s", self.request_id, err)
        log.info("request", extra={ACCESS_FIELDS: self.fields()})

    def fields(self) -> dict:
        """The record as the fields of its log line (JSON, or logfmt in text logs).

        Built once after the request ended: the log line and the status page's table both
        read them then. Treat the dict as read-only.
        """
        if self._final_fields is not None:
            return self._final_fields
        fields = self._build_fields()
        if self._done:
            self._final_fields = fields
        return fields

    def _build_fields(self) -> dict:
        stats = self.tool_call_stats
        first_token = self.first_token_seconds
        return {
            "request_id": self.request_id, "method": self.method, "path": self.path,
            "client": self.client, "client_addr": self.client_addr, "user_agent": self.user_agent,
            "model": self.model, "upstream_model": self.upstream_model, "stream": self.stream,
            "status": self.status, "provider": self.provider,
            "tried": [attempt.summary() for attempt in self.attempts],
            "latency_ms": round((self.latency_seconds or self.elapsed_seconds) * 1000, 1),
            "first_token_ms": None if first_token is None else round(first_token * 1000, 1),
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cache_read_tokens": self.cache_read_tokens, "cache_write_tokens": self.cache_write_tokens,
            "stop_reason": self.stop_reason,
            "text_tool_calls": {"parsed": stats.parsed, "repaired": stats.repaired, "rejected": stats.rejected},
            "stream_error": self.stream_error, "error": self.error, "dropped_tools": self.dropped_tools,
        }
