"""Requests-per-minute limits per client key, shared by every gunicorn worker.

A sliding-window estimate (this minute's count plus the previous minute's, weighted by how
much of it still overlaps the last 60 seconds) avoids the double burst a fixed window allows
at its edges. The counts live in one small file per client in the state directory, updated
under an exclusive `flock`, so all workers see the same numbers. Only clients configured with
`requests_per_minute` ever touch a file. File names are hashes: client names stay out of paths.
"""

from __future__ import annotations

import fcntl
import hashlib
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from loadbalancer.settings.records import ClientKey
from loadbalancer.errors import RateLimited

WINDOW_SECONDS = 60.0
EPSILON = 1e-9  # float slack, so "exactly at the limit" counts as within it


@dataclass(frozen=True)
class WindowCounts:
    """Accepted requests in the current window and the one before it."""

    window: int  # index of the current window: floor(now / WINDOW_SECONDS)
    current: int
    previous: int


@dataclass(frozen=True)
class Decision:
    """Whether a request may pass, the counts to store, and when to retry if not."""

    allowed: bool
    counts: WindowCounts
    retry_after: int


def decide(counts: WindowCounts | None, now: float, limit: int) -> Decision:
    """Admit one request if the sliding-window estimate stays under `limit` (pure)."""
    window = math.floor(now / WINDOW_SECONDS)
    counts = _advance(counts, window)
    elapsed = (now / WINDOW_SECONDS) - window  # fraction of the current window gone by
    estimate = counts.previous * (1.0 - elapsed) + counts.current
    if estimate + 1 <= limit + EPSILON:
        admitted = WindowCounts(window, counts.current + 1, counts.previous)
        return Decision(True, admitted, 0)
    return Decision(False, counts, _seconds_until_room(counts, elapsed, limit))


def _advance(counts: WindowCounts | None, window: int) -> WindowCounts:
    """Roll stored counts forward to `window`."""
    if counts is None or counts.window < window - 1:
        return WindowCounts(window, 0, 0)
    if counts.window == window - 1:
        return WindowCounts(window, 0, counts.current)
    return counts


def _seconds_until_room(counts: WindowCounts, elapsed: float, limit: int) -> int:
    """Whole seconds until the estimate leaves room for one more request (at least 1)."""
    spare = limit - 1 - counts.current  # room left once the previous window weighs nothing
    if spare > 0 and counts.previous:
        # Room appears within this window, as the previous window's weight decays.
        wait = (1.0 - spare / counts.previous - elapsed) * WINDOW_SECONDS
    else:
        # Only after this window ends, when its count becomes the decaying one.
        next_fraction = max(0.0, 1.0 - (limit - 1) / counts.current) if counts.current else 0.0
        wait = (1.0 - elapsed + next_fraction) * WINDOW_SECONDS
    return max(1, math.ceil(wait - EPSILON))


class RateLimiter:
    """Checks clients against their limits, with counts in files under `directory`."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._clock = clock

    def check(self, client: ClientKey) -> None:
        """Count one request by `client`, or refuse it.

        :raises RateLimited: the client is over its requests_per_minute (429, retry-after).
        """
        limit = client.requests_per_minute
        if not limit:
            return
        self._directory.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(client.name.encode()).hexdigest()[:32]
        descriptor = os.open(self._directory / f"{digest}.window", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)  # held for one read and one write
            decision = decide(_read_counts(descriptor), self._clock(), limit)
            if decision.allowed:
                _write_counts(descriptor, decision.counts)
        finally:
            os.close(descriptor)
        if not decision.allowed:
            raise RateLimited(
                f"client {client.name!r} is over its limit of {limit} requests per minute; "
                f"retry in {decision.retry_after} s",
                headers={"retry-after": str(decision.retry_after)})


def _read_counts(descriptor: int) -> WindowCounts | None:
    """The stored counts: three integers, or None for a new or unreadable file."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    numbers = os.read(descriptor, 64).split()
    if len(numbers) != 3 or not all(number.isdigit() for number in numbers):
        return None
    window, current, previous = (int(number) for number in numbers)
    return WindowCounts(window, current, previous)


def _write_counts(descriptor: int, counts: WindowCounts) -> None:
    """Replace the stored counts in place."""
    os.lseek(descriptor, 0, os.SEEK_SET)
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"{counts.window} {counts.current} {counts.previous}".encode())
