"""Which providers a request tries, in which order; cooldowns, circuit breaker, weights, affinity.

Pure logic: no Flask, no network. Time and randomness are injected so tests are deterministic.
One Balancer lives per worker; a config reload builds a new one and calls `carry_state_from`.
"""

from __future__ import annotations

import random as random_module
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Collection, Sequence

from loadbalancer.routing.needs import RequestNeeds

if TYPE_CHECKING:
    from loadbalancer.settings.records import ProviderConfig, RoutingConfig

AFFINITY_TABLE_LIMIT = 100_000
LATENCY_EWMA_ALPHA = 0.3
COOLDOWN_JITTER = 0.1
EXPLORATION_PROBABILITY = 0.1
# A plan that holds a half-open provider's single trial slot may never use it (the request
# ended first); the hold lapses after this long so the provider is not stranded.
TRIAL_RESERVATION_SECONDS = 30.0
# While a half-open trial runs we cannot know when it ends; callers waiting re-check this often.
TRIAL_RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ProviderSnapshot:
    """What /health and the logs show about one provider."""

    name: str
    state: str
    circuit: str
    last_error: str | None
    last_error_at: float | None
    latency_ms: float | None
    consecutive_failures: int
    cooldown_remaining: float
    in_flight: int
    requests: int
    failures: int


@dataclass
class _ProviderState:
    """Mutable per-provider bookkeeping; only touched under the Balancer's lock."""

    in_flight: int = 0
    requests: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    circuit_tripped: bool = False  # open until cooldown_until, half-open after
    trial_in_flight: bool = False
    trial_reserved_until: float = 0.0
    probe_unhealthy: bool = False
    last_failed: bool = False
    last_error: str | None = None
    last_error_at: float | None = None
    latency_seconds: float | None = None
    swrr_current: int = 0


class Balancer:
    """Orders providers per request and keeps per-provider state from traffic and probes."""

    def __init__(
        self,
        providers: Sequence[ProviderConfig],
        routing: RoutingConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        random: random_module.Random | None = None,
        affinity_limit: int = AFFINITY_TABLE_LIMIT,
    ) -> None:
        self._providers = tuple(providers)
        self._routing = routing
        self._clock = clock
        self._wall_clock = wall_clock
        self._random = random if random is not None else random_module.Random()
        self._affinity_limit = affinity_limit
        self._lock = threading.Lock()
        self._states = {p.name: _ProviderState() for p in self._providers}
        self._affinity: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def plan(self, needs: RequestNeeds, affinity_key: str | None = None,
             exclude: Collection[str] = ()) -> list[ProviderConfig]:
        """Providers to try for this request, in order; each at most once. Empty when none is eligible right now.

        `exclude` names providers the caller will not try (already tried, or unable to serve
        the request's kind): they are left out before a half-open trial slot is reserved.
        """
        with self._lock:
            now = self._clock()
            eligible = [p for p in self._providers
                        if p.name not in exclude and self._is_capable(p, needs)
                        and self._wait_for(self._states[p.name], now) == 0.0]
            trusted = [p for p in eligible if not self._states[p.name].probe_unhealthy]
            doubted = [p for p in eligible if self._states[p.name].probe_unhealthy]
            ordered = self._order(trusted) + self._order(doubted)
            ordered = self._apply_affinity(ordered, trusted, affinity_key, now)
            chosen = ordered[: max(1, self._routing.max_attempts)]
            # Only the head of a plan is sure to be tried (forwarding re-plans after each failure),
            # so only there does a half-open provider's single trial slot get held for this request.
            if chosen and self._states[chosen[0].name].circuit_tripped:
                self._states[chosen[0].name].trial_reserved_until = now + TRIAL_RESERVATION_SECONDS
            return chosen

    def serving(self, model: str) -> list[ProviderConfig]:
        """Enabled providers that serve `model`, whatever their state."""
        return [p for p in self._providers if p.enabled and p.model_for(model) is not None]

    def seconds_until_available(self, needs: RequestNeeds) -> float | None:
        """Seconds until the first capable provider takes traffic again; None if none ever will."""
        with self._lock:
            now = self._clock()
            waits = [self._wait_for(self._states[p.name], now)
                     for p in self._providers if self._is_capable(p, needs)]
            return min(waits) if waits else None

    def begin(self, name: str) -> None:
        """Record that a request to `name` started."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                return  # removed by a config reload while the request was planned
            state.in_flight += 1
            state.requests += 1
            if state.circuit_tripped:
                state.trial_in_flight = True
                state.trial_reserved_until = 0.0

    def succeeded(self, name: str, first_byte_seconds: float, affinity_key: str | None = None) -> None:
        """End a request that worked: reset failures, close the circuit, update latency, pin affinity."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                return
            now = self._clock()
            self._end_request(state)
            state.consecutive_failures = 0
            state.circuit_tripped = False
            state.last_failed = False
            state.probe_unhealthy = False  # real traffic outranks a probe's opinion
            state.latency_seconds = _ewma(state.latency_seconds, first_byte_seconds)
            if affinity_key and self._routing.affinity:
                self._pin(affinity_key, name, now)

    def failed(self, name: str, reason: str, retry_after: float | None = None) -> None:
        """End a request that failed: count it, cool the provider down, maybe open its circuit."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                return
            now = self._clock()
            self._end_request(state)
            state.failures += 1
            state.consecutive_failures += 1
            state.last_failed = True
            state.last_error = reason
            state.last_error_at = self._wall_clock()
            cooldown = self._cooldown_for(state.consecutive_failures)
            if retry_after is not None:
                cooldown = max(cooldown, retry_after)
            state.cooldown_until = max(state.cooldown_until, now + cooldown)
            if state.consecutive_failures >= self._routing.failure_threshold:
                state.circuit_tripped = True  # a tripped circuit stays tripped until a success

    def released(self, name: str) -> None:
        """End a request without a verdict on the provider (e.g. a client error passed through)."""
        with self._lock:
            state = self._states.get(name)
            if state is not None:
                self._end_request(state)

    def probe_result(self, name: str, ok: bool, latency_ms: float | None, error: str | None) -> None:
        """Take a health probe's verdict: a failed probe sends the provider to the end of plans."""
        with self._lock:
            state = self._states.get(name)
            if state is None:
                return
            state.probe_unhealthy = not ok
            if ok and latency_ms is not None and state.latency_seconds is None:
                state.latency_seconds = latency_ms / 1000.0
            if not ok:
                state.last_error = error or "health probe failed"
                state.last_error_at = self._wall_clock()

    def snapshot(self) -> list[ProviderSnapshot]:
        """State of every provider in config order, disabled ones included."""
        with self._lock:
            now = self._clock()
            return [self._snapshot_of(p, now) for p in self._providers]

    def carry_state_from(self, old: Balancer) -> None:
        """Keep the state of providers whose name survived a config reload."""
        with old._lock:
            carried = {name: replace(state) for name, state in old._states.items() if name in self._states}
            pins = [(key, pin) for key, pin in old._affinity.items() if pin[0] in self._states]
        with self._lock:
            for name, state in carried.items():
                # Requests in flight finish on the old Balancer; counting them here would stick forever.
                state.in_flight = 0
                state.trial_in_flight = False
                state.trial_reserved_until = 0.0
                state.swrr_current = 0  # weights may have changed
                self._states[name] = state
            for key, pin in pins:
                self._affinity[key] = pin
            self._trim_affinity()

    def _is_capable(self, provider: ProviderConfig, needs: RequestNeeds) -> bool:
        """Whether the provider is enabled, serves the model and can take this request's size and features."""
        if not provider.enabled or provider.model_for(needs.model) is None:
            return False
        caps = provider.capabilities
        if needs.has_images and not caps.images:
            return False
        if needs.wants_thinking and not caps.thinking:
            return False
        if caps.max_context_tokens is not None and \
                needs.estimated_input_tokens + needs.max_tokens > caps.max_context_tokens:
            return False
        return caps.max_output_tokens is None or needs.max_tokens <= caps.max_output_tokens

    @staticmethod
    def _wait_for(state: _ProviderState, now: float) -> float:
        """Seconds until this provider takes traffic again: 0 when not cooling and any trial slot is free."""
        if now < state.cooldown_until:
            return state.cooldown_until - now
        if state.circuit_tripped and state.trial_in_flight:
            return TRIAL_RECHECK_SECONDS
        if state.circuit_tripped and state.trial_reserved_until > now:
            return state.trial_reserved_until - now
        return 0.0

    def _order(self, providers: list[ProviderConfig]) -> list[ProviderConfig]:
        """Order eligible providers by the configured strategy."""
        strategy = self._routing.strategy
        if strategy == "weighted":
            return self._swrr_order(providers)
        if strategy == "least_busy":
            return self._grouped_order(providers, lambda p: (self._states[p.name].in_flight, p.priority))
        if strategy == "latency":
            return self._latency_order(providers)
        return self._grouped_order(providers, lambda p: (p.priority,))

    def _grouped_order(self, providers: list[ProviderConfig],
                       group_key: Callable[[ProviderConfig], tuple]) -> list[ProviderConfig]:
        """Groups by ascending key; smooth weighted round-robin inside each group."""
        ordered: list[ProviderConfig] = []
        for key in sorted({group_key(p) for p in providers}):
            ordered += self._swrr_order([p for p in providers if group_key(p) == key])
        return ordered

    def _swrr_order(self, members: list[ProviderConfig]) -> list[ProviderConfig]:
        """nginx smooth weighted round-robin: one real pick, then the rest in preview order."""
        if len(members) <= 1:
            return list(members)
        current = {p.name: self._states[p.name].swrr_current for p in members}
        first = _swrr_pick(members, current)
        for p in members:
            self._states[p.name].swrr_current = current[p.name]
        ordered = [first]
        remaining = [p for p in members if p is not first]
        while remaining:
            pick = _swrr_pick(remaining, current)
            ordered.append(pick)
            remaining.remove(pick)
        return ordered

    def _latency_order(self, providers: list[ProviderConfig]) -> list[ProviderConfig]:
        """Fastest first; unmeasured count as fastest; sometimes explore the runner-up."""
        def speed(p: ProviderConfig) -> tuple[bool, float, int]:
            latency = self._states[p.name].latency_seconds
            return (latency is not None, latency or 0.0, p.priority)

        ordered = sorted(providers, key=speed)
        if len(ordered) >= 2 and self._random.random() < EXPLORATION_PROBABILITY:
            ordered[0], ordered[1] = ordered[1], ordered[0]
        return ordered

    def _apply_affinity(self, ordered: list[ProviderConfig], trusted: list[ProviderConfig],
                        affinity_key: str | None, now: float) -> list[ProviderConfig]:
        """Put the conversation's pinned provider first when it is eligible and trusted."""
        if not (self._routing.affinity and affinity_key):
            return ordered
        pin = self._affinity.get(affinity_key)
        if pin is None:
            return ordered
        name, expires_at = pin
        if expires_at <= now:
            del self._affinity[affinity_key]
            return ordered
        pinned = next((p for p in trusted if p.name == name), None)
        if pinned is None:
            return ordered
        self._pin(affinity_key, name, now)
        return [pinned] + [p for p in ordered if p is not pinned]

    def _pin(self, affinity_key: str, name: str, now: float) -> None:
        """Pin (or refresh) a conversation to a provider for affinity_ttl seconds."""
        self._affinity[affinity_key] = (name, now + self._routing.affinity_ttl)
        self._affinity.move_to_end(affinity_key)
        self._trim_affinity()

    def _trim_affinity(self) -> None:
        """Drop the least recently used pins beyond the table limit so memory stays bounded."""
        while len(self._affinity) > self._affinity_limit:
            self._affinity.popitem(last=False)

    def _cooldown_for(self, consecutive_failures: int) -> float:
        """Exponential cooldown with jitter, so retries from many workers do not line up."""
        routing = self._routing
        base = min(routing.max_cooldown, routing.cooldown * 2 ** (consecutive_failures - 1))
        jittered = base * self._random.uniform(1 - COOLDOWN_JITTER, 1 + COOLDOWN_JITTER)
        return min(routing.max_cooldown, jittered)

    @staticmethod
    def _end_request(state: _ProviderState) -> None:
        """A request ended; floor at zero because reload can hand us requests we never began."""
        state.in_flight = max(0, state.in_flight - 1)
        state.trial_in_flight = False
        state.trial_reserved_until = 0.0

    def _snapshot_of(self, provider: ProviderConfig, now: float) -> ProviderSnapshot:
        """One provider's state as /health shows it."""
        state = self._states[provider.name]
        remaining = max(0.0, state.cooldown_until - now)
        circuit = "closed" if not state.circuit_tripped else ("open" if remaining > 0 else "half_open")
        if not provider.enabled:
            status = "disabled"
        elif remaining > 0 or circuit == "open":
            status = "cooling_down"
        elif state.probe_unhealthy or state.last_failed:
            status = "unhealthy"
        else:
            status = "healthy"
        latency = state.latency_seconds
        return ProviderSnapshot(
            name=provider.name, state=status, circuit=circuit,
            last_error=state.last_error, last_error_at=state.last_error_at,
            latency_ms=None if latency is None else latency * 1000.0,
            consecutive_failures=state.consecutive_failures, cooldown_remaining=remaining,
            in_flight=state.in_flight, requests=state.requests, failures=state.failures,
        )


def _swrr_pick(members: list[ProviderConfig], current: dict[str, int]) -> ProviderConfig:
    """One step of nginx's smooth weighted round-robin over `current` (mutated)."""
    total = 0
    best: ProviderConfig | None = None
    for p in members:
        current[p.name] += p.weight
        total += p.weight
        if best is None or current[p.name] > current[best.name]:
            best = p
    assert best is not None  # members is never empty here
    current[best.name] -= total
    return best


def _ewma(previous: float | None, sample: float) -> float:
    """Exponentially weighted moving average; the first sample stands alone."""
    if previous is None:
        return sample
    return LATENCY_EWMA_ALPHA * sample + (1 - LATENCY_EWMA_ALPHA) * previous
