"""Pure state transitions, shared by the local backends and mirrored in Lua for Redis.

No I/O and no clock: `now` and the jitter factor come in as arguments, so the embedded and
memory backends apply these under their lock and the tests compare them with the Lua scripts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from loadbalancer.routing.state.records import (OWNER_MAX_BYTES, REASON_MAX_BYTES, FailurePolicy,
                                                LoadEntry, ProviderShared, RateDecision)

RATE_WINDOW_SECONDS = 60.0
EPSILON = 1e-9  # float slack, so "exactly at the limit" counts as within it
LATENCY_EWMA_ALPHA = 0.3
MAX_BACKOFF_EXPONENT = 64  # 2 ** (failures - 1) overflows a float after ~1000 failures


def clip(text: str, limit: int = REASON_MAX_BYTES) -> str:
    """`text` cut to `limit` UTF-8 bytes without splitting a character."""
    return text.encode()[:limit].decode(errors="ignore")


def after_failure(state: ProviderShared, *, now: float, reason: str, retry_after: float | None,
                  policy: FailurePolicy, jitter: float) -> ProviderShared:
    """Count a failure: exponential cooldown (at least retry-after), maybe trip the circuit.

    A failure also ends any half-open trial: the circuit is open again until the new cooldown.
    """
    failures = state.consecutive_failures + 1
    exponent = min(failures - 1, MAX_BACKOFF_EXPONENT)
    base = min(policy.max_cooldown_seconds, policy.cooldown_seconds * 2.0 ** exponent)
    cooldown = min(policy.max_cooldown_seconds, base * jitter)
    if retry_after is not None and retry_after > 0:
        cooldown = max(cooldown, retry_after)  # the provider's own word outranks max_cooldown
    return replace(
        state,
        cooldown_until=max(state.cooldown_until, now + cooldown),
        cooldown_reason=clip(reason),
        consecutive_failures=failures,
        circuit_tripped=state.circuit_tripped or failures >= policy.failure_threshold,
        trial_owner="", trial_until=0.0, last_error_at=now)


def after_success(state: ProviderShared) -> ProviderShared | None:
    """Reset failures and close the circuit; None when there is nothing to change (no write)."""
    if state.consecutive_failures == 0 and not state.circuit_tripped and not state.trial_owner:
        return None
    return replace(state, consecutive_failures=0, circuit_tripped=False, trial_owner="", trial_until=0.0)


def after_claim_trial(state: ProviderShared, *, now: float, owner: str,
                      lease_seconds: float) -> tuple[bool, ProviderShared | None]:
    """(may send, new state or None). Grants the single trial of a half-open circuit.

    A closed circuit needs no trial: the caller may send. An open one, or a half-open one whose
    trial is held by someone else with a live lease, refuses.
    """
    if not state.circuit_tripped:
        return True, None
    if now < state.cooldown_until or state.trial_busy(now):
        return False, None
    return True, replace(state, trial_owner=clip(owner, OWNER_MAX_BYTES), trial_until=now + lease_seconds)


def after_release_trial(state: ProviderShared, *, owner: str) -> ProviderShared | None:
    """Give the trial back without a verdict; None when `owner` does not hold it."""
    if not state.trial_owner or state.trial_owner != clip(owner, OWNER_MAX_BYTES):
        return None
    return replace(state, trial_owner="", trial_until=0.0)


@dataclass(frozen=True)
class WindowCounts:
    """Accepted requests in the current minute window and the one before it."""

    window: int  # index of the current window: floor(now / RATE_WINDOW_SECONDS)
    current: int
    previous: int


def decide_rate(counts: WindowCounts | None, now: float, limit: int) -> tuple[RateDecision, WindowCounts]:
    """Admit one request if the sliding-window estimate stays under `limit`.

    The estimate is this minute's count plus the previous minute's, weighted by how much of it
    still overlaps the last 60 seconds: no double burst at a fixed window's edges.
    """
    window = math.floor(now / RATE_WINDOW_SECONDS)
    if counts is None or counts.window < window - 1:
        counts = WindowCounts(window, 0, 0)
    elif counts.window == window - 1:
        counts = WindowCounts(window, 0, counts.current)
    elapsed = now / RATE_WINDOW_SECONDS - window  # fraction of the current window gone by
    estimate = counts.previous * (1.0 - elapsed) + counts.current
    if estimate + 1 <= limit + EPSILON:
        return RateDecision(True, 0), WindowCounts(window, counts.current + 1, counts.previous)
    return RateDecision(False, _seconds_until_room(counts, elapsed, limit)), counts


def _seconds_until_room(counts: WindowCounts, elapsed: float, limit: int) -> int:
    """Whole seconds until the estimate leaves room for one more request (at least 1)."""
    spare = limit - 1 - counts.current  # room left once the previous window weighs nothing
    if spare > 0 and counts.previous:
        # Room appears within this window, as the previous window's weight decays.
        wait = (1.0 - spare / counts.previous - elapsed) * RATE_WINDOW_SECONDS
    else:
        # Only after this window ends, when its count becomes the decaying one.
        next_fraction = max(0.0, 1.0 - (limit - 1) / counts.current) if counts.current else 0.0
        wait = (1.0 - elapsed + next_fraction) * RATE_WINDOW_SECONDS
    return max(1, math.ceil(wait - EPSILON))


def ewma(previous: float | None, sample: float) -> float:
    """Exponentially weighted moving average; the first sample stands alone."""
    if previous is None:
        return sample
    return LATENCY_EWMA_ALPHA * sample + (1 - LATENCY_EWMA_ALPHA) * previous


def combine_load(reports: list[dict[str, LoadEntry]]) -> dict[str, tuple[int, float | None, int]]:
    """Per provider: (in-flight summed, mean latency of the reporters that measured, how many did)."""
    in_flight: dict[str, int] = {}
    latencies: dict[str, list[float]] = {}
    for report in reports:
        for name, entry in report.items():
            in_flight[name] = in_flight.get(name, 0) + max(0, entry.in_flight)
            if entry.latency_ms is not None:
                latencies.setdefault(name, []).append(entry.latency_ms)
    combined = {}
    for name in set(in_flight) | set(latencies):
        measured = latencies.get(name, [])
        mean = sum(measured) / len(measured) if measured else None
        combined[name] = (in_flight.get(name, 0), mean, len(measured))
    return combined
