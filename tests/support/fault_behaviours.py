"""Fake-backend behaviours for resilience tests and the soak script: endless streams that
notice when the load balancer hangs up, random failures, and a strict SSE reader.

Behaviours are plain callables taking a fake_backend `Exchange`, so they plug into
`FakeBackend.queue(...)` and `FakeBackend.default` like the built-in ones.
"""
from __future__ import annotations

import json
import random
import threading
import time
from typing import Any, Iterator, Sequence

import requests

from support.fake_backend import CLIENT_GONE_ERRORS, AutoReply, Behaviour, Exchange, encode_sse

ENDLESS_TICK_SECONDS = 0.05
ENDLESS_LIMIT_SECONDS = 30.0  # an endless stream still ends, so a broken test cannot hang forever


class EndlessStream:
    """An Anthropic stream that sends a text delta every tick until the reader goes away.

    It records when it started and when a write failed (the load balancer closed the
    upstream connection), so a test can prove no orphaned generation keeps running.
    """

    def __init__(self, tick: float = ENDLESS_TICK_SECONDS, limit: float = ENDLESS_LIMIT_SECONDS) -> None:
        self.tick = tick
        self.limit = limit
        self.started = threading.Event()
        self.closed = threading.Event()
        self.closed_at: float | None = None
        self.deltas_sent = 0

    def __call__(self, exchange: Exchange) -> None:
        exchange.start_stream()
        opening = [{"type": "message_start", "message": _empty_message()},
                   {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]
        try:
            for event in opening:
                exchange.write_chunk(encode_sse(event))
            self.started.set()
            ends_at = time.monotonic() + self.limit
            while time.monotonic() < ends_at and not exchange.wait(self.tick):
                delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}
                exchange.write_chunk(encode_sse(delta))
                self.deltas_sent += 1
        except CLIENT_GONE_ERRORS:
            self.closed_at = time.monotonic()
            self.closed.set()
            raise


class RandomFailures:
    """Fail a share of requests with one of `failures`, answer the rest like AutoReply.

    Seeded and locked so a run is reproducible and safe from the backend's many threads.
    """

    def __init__(self, share: float, failures: Sequence[Behaviour], seed: int = 7) -> None:
        self.share = share
        self.failures = tuple(failures)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self.failed = 0
        self.answered = 0

    def __call__(self, exchange: Exchange) -> None:
        with self._lock:
            failure = self._random.choice(self.failures) if self._random.random() < self.share else None
            if failure is None:
                self.answered += 1
            else:
                self.failed += 1
        (failure or AutoReply())(exchange)


def read_events(response: requests.Response) -> list[dict[str, Any]]:
    """Decode a whole Anthropic stream; each frame's event name must equal its JSON type."""
    return list(iter_events(response))


def iter_events(response: requests.Response) -> Iterator[dict[str, Any]]:
    """Yield Anthropic events as they arrive, checking `event:` against the JSON type."""
    name = None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            event = json.loads(line[len("data: "):])
            if name != event.get("type"):
                raise AssertionError(f"frame named {name!r} carries an event of type {event.get('type')!r}")
            name = None
            yield event


def _empty_message() -> dict[str, Any]:
    return {"id": "msg_endless", "type": "message", "role": "assistant", "model": "claude-test-1",
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1}}
