"""Scenario 5: many long streams open at once, each event's delay measured on arrival.

Every delta sent by bench/slow_upstream.py carries `ts=<CLOCK_MONOTONIC>;`, the moment it
was written. This client opens N streams at once (raw asyncio sockets, one connection
each), notes when each delta arrives and computes arrival minus send time per event.
"""

from __future__ import annotations

import asyncio
import json
import re
import resource
import time
from dataclasses import dataclass

_TIMESTAMP = re.compile(rb"ts=(\d+\.\d+);")
CONNECT_TIMEOUT = 30.0
# Events sent this long after the first stream was opened count as "steady": by then every
# stream is open, so their delays are not those of the opening burst.
OPENING_BURST_SECONDS = 2.0


@dataclass(frozen=True)
class StreamsResult:
    """Outcome of one many-streams run; delays in milliseconds."""

    streams: int
    completed: int
    events: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    steady_p99_ms: float
    errors: tuple[str, ...]


def raise_open_file_limit(needed: int) -> None:
    """Each stream holds a socket; make sure the descriptor limit allows them all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def request_bytes(port: int, model: str) -> bytes:
    """A streaming Messages API request for the paced model."""
    body = json.dumps({"model": model, "max_tokens": 1024, "stream": True,
                       "messages": [{"role": "user", "content": "stream slowly"}]}).encode()
    return (f"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"content-type: application/json\r\nanthropic-version: 2023-06-01\r\n"
            f"x-api-key: bench\r\nconnection: close\r\ncontent-length: {len(body)}\r\n\r\n").encode() + body


async def one_stream(port: int, request: bytes, delays: list[tuple[float, float]], deadline: float) -> bool:
    """Read one stream to its end, appending (sent, delay) per delta; True when it completed."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), CONNECT_TIMEOUT)
    try:
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n", 1)[0].decode("latin-1"))
        pending = b""
        while time.monotonic() < deadline:
            # Chunk-size lines cannot contain `ts=`, so the raw bytes can be scanned as they are.
            data = await asyncio.wait_for(reader.read(65536), max(0.1, deadline - time.monotonic()))
            arrived = time.monotonic()
            if not data:
                return False
            pending += data
            last_end = 0
            for match in _TIMESTAMP.finditer(pending):
                sent = float(match.group(1))
                delays.append((sent, arrived - sent))
                last_end = match.end()
            # Keep the tail for message_stop detection and timestamps split across reads.
            pending = pending[max(last_end, len(pending) - 256):]
            if b"message_stop" in pending:
                return True
        return False
    finally:
        writer.close()


async def _run(port: int, streams: int, model: str, limit_seconds: float) -> StreamsResult:
    delays: list[tuple[float, float]] = []
    opened = time.monotonic()
    deadline = opened + limit_seconds
    request = request_bytes(port, model)
    outcomes = await asyncio.gather(*(one_stream(port, request, delays, deadline) for _ in range(streams)),
                                    return_exceptions=True)
    errors = tuple(sorted({f"{type(item).__name__}: {item}" for item in outcomes
                           if isinstance(item, BaseException)}))
    completed = sum(1 for item in outcomes if item is True)
    every = sorted(delay for _, delay in delays)
    steady = sorted(delay for sent, delay in delays if sent > opened + OPENING_BURST_SECONDS)
    return StreamsResult(streams, completed, len(every), percentile_ms(every, 0.50), percentile_ms(every, 0.99),
                         percentile_ms(every, 1.0), percentile_ms(steady, 0.99), errors)


def percentile_ms(ordered: list[float], fraction: float) -> float:
    """The value at `fraction` of a sorted list of seconds, in milliseconds."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def run_streams(port: int, streams: int, *, interval_ms: int = 250, deltas: int = 40,
                limit_seconds: float = 60.0) -> StreamsResult:
    """Open `streams` paced streams at once against port and measure every event's delay."""
    raise_open_file_limit(streams + 256)
    return asyncio.run(_run(port, streams, f"slow-{interval_ms}-{deltas}", limit_seconds))
