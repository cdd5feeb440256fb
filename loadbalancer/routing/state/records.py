"""The records every state backend stores and returns: shared provider state, load, decisions.

All expiries are wall-clock epoch seconds (`time.time()`): monotonic clocks have a different
origin in every process and on every machine, so they cannot be compared across them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

REASON_MAX_BYTES = 120  # what the fixed-size (embedded) records keep of a failure reason
OWNER_MAX_BYTES = 40  # a trial or prober owner: host:pid:random


@dataclass(frozen=True)
class FailurePolicy:
    """How a failure cools a provider down (the routing section's settings)."""

    cooldown_seconds: float = 10.0
    max_cooldown_seconds: float = 300.0
    failure_threshold: int = 3  # consecutive failures that trip the circuit


@dataclass(frozen=True)
class ProviderShared:
    """The part of a provider's state that must be one truth across workers and instances."""

    cooldown_until: float = 0.0
    cooldown_reason: str = ""
    consecutive_failures: int = 0
    circuit_tripped: bool = False  # open until cooldown_until, half-open after, until a success
    trial_owner: str = ""  # holder of the fleet's single half-open trial ("" = none)
    trial_until: float = 0.0  # the trial lease lapses then, so a dead holder strands nothing
    last_error_at: float = 0.0

    def circuit(self, now: float) -> str:
        """'closed', 'open' (cooling down) or 'half_open' (one trial may go)."""
        if not self.circuit_tripped:
            return "closed"
        return "open" if now < self.cooldown_until else "half_open"

    def trial_busy(self, now: float) -> bool:
        """Whether some request in the fleet holds the half-open trial right now."""
        return bool(self.trial_owner) and self.trial_until > now

    def seconds_until_available(self, now: float) -> float:
        """0 when a request may be sent now (a half-open circuit still needs `claim_trial`)."""
        if now < self.cooldown_until:
            return self.cooldown_until - now
        if self.circuit_tripped and self.trial_busy(now):
            return self.trial_until - now
        return 0.0


CLEAN = ProviderShared()


@dataclass(frozen=True)
class ProviderView:
    """One provider as a worker sees it: shared state plus the approximate load elsewhere."""

    name: str
    shared: ProviderShared = CLEAN
    in_flight_elsewhere: int = 0  # summed over the other reporters heard from recently
    latency_ms_elsewhere: float | None = None  # mean of the other reporters' EWMAs
    reporters_elsewhere: int = 0  # how many other reporters measured a latency


@dataclass(frozen=True)
class Snapshot:
    """Every provider's view at one moment; handed out again while nothing changes."""

    providers: Mapping[str, ProviderView] = field(default_factory=dict)
    version: object = None  # opaque: equal versions mean equal shared state

    def get(self, name: str) -> ProviderView:
        """The view of `name`; a provider nobody wrote about yet is clean."""
        view = self.providers.get(name)
        return view if view is not None else ProviderView(name)


@dataclass(frozen=True)
class RateDecision:
    """A rate-limit verdict: allowed, or refused with whole seconds to wait."""

    allowed: bool
    retry_after: int = 0


@dataclass(frozen=True)
class LoadEntry:
    """One reporter's load on one provider: requests in flight and its latency EWMA."""

    in_flight: int
    latency_ms: float | None


@dataclass(frozen=True)
class StoreStatus:
    """What /health and the metrics say about the state backend itself."""

    backend: str  # "memory", "embedded" or "redis"
    shared_with: str  # "this process", "the workers of this instance", "every instance"
    degraded: bool = False  # True while the shared state cannot be reached (local state in use)
    detail: str = ""  # where it lives, without credentials; why it is degraded
