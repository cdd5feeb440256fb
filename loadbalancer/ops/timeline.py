"""The last hour per minute and the latest requests, shared by every worker, for the status page.

Each worker counts its finished requests in memory (per provider and minute: attempts,
failed attempts, a histogram of the time to first token) and keeps its latest requests in a
ring. Every few seconds it writes both to its own file, `<state dir>/timeline/<pid>-<start>.json`,
atomically; the page merges the files of all workers. Everything is bounded: 60 minutes, a
fixed histogram, `RECENT_PER_WORKER` requests per file, files older than an hour deleted, at
most `MAX_FILES` read. Only names, statuses, counts and times are kept: never a key or a body.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import orjson

from loadbalancer.request_record import RequestRecord

log = logging.getLogger("loadbalancer.timeline")

MINUTES = 60
SECONDS_PER_MINUTE = 60
RECENT_PER_WORKER = 200
MAX_FILES = 64
HOUR = MINUTES * SECONDS_PER_MINUTE
SERVICE = "*"  # the row for the whole service: client requests rather than attempts
# Upper bounds (seconds) of the time-to-first-token histogram; the last one catches the rest.
LATENCY_BOUNDS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300,
                  math.inf)


@dataclass
class MinuteCounts:
    """One provider's minute: attempts (or requests, for the service row), failures, latencies."""

    requests: int = 0
    errors: int = 0
    latency: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BOUNDS))

    def add(self, other: "MinuteCounts") -> None:
        """Merge another worker's counts into these."""
        self.requests += other.requests
        self.errors += other.errors
        self.latency = [mine + theirs for mine, theirs in zip(self.latency, other.latency)]

    def observe_latency(self, seconds: float) -> None:
        """Count one time to first token."""
        for position, bound in enumerate(LATENCY_BOUNDS):
            if seconds <= bound:
                self.latency[position] += 1
                return

    def percentile(self, fraction: float) -> float | None:
        """The latency below which `fraction` of the observations fall; None when there are none.

        Interpolated inside the bucket that holds the rank, as Prometheus' histogram_quantile does.
        """
        total = sum(self.latency)
        if not total:
            return None
        rank = fraction * total
        seen = 0
        for position, count in enumerate(self.latency):
            if count and seen + count >= rank:
                lower = LATENCY_BOUNDS[position - 1] if position else 0.0
                upper = LATENCY_BOUNDS[position]
                if upper == math.inf:
                    return lower  # beyond the last finite bound: that bound is all one can say
                return lower + (upper - lower) * (rank - seen) / count
            seen += count
        return None

    def encode(self) -> list:
        return [self.requests, self.errors, self.latency]

    @classmethod
    def decode(cls, value: object) -> "MinuteCounts | None":
        if (isinstance(value, list) and len(value) == 3 and isinstance(value[2], list)
                and len(value[2]) == len(LATENCY_BOUNDS)):
            return cls(int(value[0]), int(value[1]), [int(count) for count in value[2]])
        return None


def recent_entry(record: RequestRecord) -> dict:
    """What the page's request table shows about one request."""
    fields = record.fields()
    return {key: fields[key] for key in (
        "request_id", "client", "client_addr", "model", "upstream_model", "provider", "status", "stream", "tried",
        "latency_ms", "first_token_ms", "input_tokens", "output_tokens", "stop_reason")} | {
        "time": record.started_at, "error": record.status >= 400 or record.stream_error is not None}


class Timeline:
    """This worker's last hour and latest requests, and the merged view of all workers."""

    def __init__(self, directory: Path, clock: Callable[[], float] = time.time) -> None:
        self._directory = directory
        self._clock = clock
        self._file = directory / f"{os.getpid()}-{time.time_ns()}.json"
        self._lock = threading.Lock()
        self._minutes: dict[str, dict[int, MinuteCounts]] = {}
        self._recent: deque[dict] = deque(maxlen=RECENT_PER_WORKER)
        self._dirty = False

    def observe(self, record: RequestRecord) -> None:
        """Count one finished request (a `LoadBalancerState.request_observers` hook)."""
        minute = int(self._clock() // SECONDS_PER_MINUTE)
        with self._lock:
            for attempt in record.attempts:
                counts = self._counts(attempt.provider, minute)
                counts.requests += 1
                counts.errors += attempt.failed
            service = self._counts(SERVICE, minute)
            service.requests += 1
            service.errors += record.status >= 500 or record.stream_error is not None
            if record.provider and record.first_token_seconds is not None and record.status < 400:
                self._counts(record.provider, minute).observe_latency(record.first_token_seconds)
                service.observe_latency(record.first_token_seconds)
            self._recent.append(recent_entry(record))
            self._dirty = True

    def _counts(self, provider: str, minute: int) -> MinuteCounts:
        # Looked up, not setdefault: a request asks three or four times a minute that already
        # exists, and setdefault would build (and throw away) a MinuteCounts each time (~2 µs).
        minutes = self._minutes.get(provider)
        if minutes is None:
            minutes = self._minutes[provider] = {}
        counts = minutes.get(minute)
        if counts is None:
            counts = minutes[minute] = MinuteCounts()
        return counts

    def flush(self) -> None:
        """Write this worker's file if anything changed since the last write."""
        with self._lock:
            if not self._dirty:
                return
            self._drop_old_minutes()
            payload = self._encode()
            self._dirty = False
        self._directory.mkdir(parents=True, exist_ok=True)
        temporary = self._file.with_name(f".{self._file.name}.tmp")
        temporary.write_bytes(orjson.dumps(payload))
        os.replace(temporary, self._file)

    def _drop_old_minutes(self) -> None:
        oldest = int(self._clock() // SECONDS_PER_MINUTE) - MINUTES
        for minutes in self._minutes.values():
            for minute in [minute for minute in minutes if minute <= oldest]:
                del minutes[minute]

    def _encode(self) -> dict:
        return {"updated_at": self._clock(), "recent": list(self._recent),
                "minutes": {provider: {str(minute): counts.encode() for minute, counts in minutes.items()}
                            for provider, minutes in self._minutes.items()}}

    def merged(self) -> tuple[dict[str, dict[int, MinuteCounts]], list[dict]]:
        """Every worker's minutes (per provider) and latest requests (newest first)."""
        with self._lock:
            own = self._encode()
        payloads = [own] + [payload for path, payload in self._other_files()]
        minutes: dict[str, dict[int, MinuteCounts]] = {}
        recent: list[dict] = []
        oldest = int(self._clock() // SECONDS_PER_MINUTE) - MINUTES
        for payload in payloads:
            _merge_minutes(minutes, payload.get("minutes"), oldest)
            recent.extend(item for item in payload.get("recent") or () if isinstance(item, dict))
        recent.sort(key=lambda item: item.get("time") or 0, reverse=True)
        return minutes, recent

    def _other_files(self) -> list[tuple[Path, dict]]:
        """The other workers' files (dead ones too, for an hour); older ones are deleted."""
        try:
            paths = sorted(self._directory.glob("*.json"), key=_modified, reverse=True)
        except OSError:
            return []
        loaded = []
        for path in paths[:MAX_FILES]:
            if path == self._file:
                continue
            payload = _read_payload(path)
            updated = payload.get("updated_at") if payload is not None else None
            if not isinstance(updated, (int, float)):
                if time.time() - _modified(path) > HOUR:
                    path.unlink(missing_ok=True)  # unreadable for an hour: not being written
                continue
            if self._clock() - updated > HOUR:
                path.unlink(missing_ok=True)
                continue
            loaded.append((path, payload))
        return loaded


def _read_payload(path: Path) -> dict | None:
    try:
        payload = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None  # vanished, or another version's: the next look will tell
    return payload if isinstance(payload, dict) else None


def _merge_minutes(into: dict[str, dict[int, MinuteCounts]], encoded: object, oldest: int) -> None:
    """Add one file's minutes (JSON) into `into`, skipping what is malformed or too old."""
    if not isinstance(encoded, dict):
        return
    for provider, minutes in encoded.items():
        if not isinstance(minutes, dict):
            continue
        for minute_text, value in minutes.items():
            counts = MinuteCounts.decode(value)
            if counts is None or not minute_text.lstrip("-").isdigit() or int(minute_text) <= oldest:
                continue
            into.setdefault(provider, {}).setdefault(int(minute_text), MinuteCounts()).add(counts)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
