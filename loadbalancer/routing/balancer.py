"""Which providers a request tries, in which order; cooldowns, circuit breaker, weights, affinity.

Pure selection logic: no Flask, no network. What must be one truth across workers and
instances (cooldowns and their reasons, the circuit and its single half-open trial,
consecutive failures, the load elsewhere) lives in a `ProviderStateStore` that is passed in;
what is this worker's own (round-robin position, counters for /health, its live in-flight
count and latency, probe verdicts) lives here. Time and randomness are injected so tests are
deterministic. One Balancer lives per worker and configuration; a reload builds a new one on
the same store and calls `carry_state_from`.
"""

from __future__ import annotations

import itertools
import random as random_module
import secrets
import threading
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Callable, Collection, Sequence

from loadbalancer.routing.affinity import rendezvous_pick
from loadbalancer.routing.needs import RequestNeeds
from loadbalancer.routing.state import FailurePolicy, ProviderShared, ProviderStateStore, Snapshot
from loadbalancer.routing.state.memory import MemoryStore
from loadbalancer.routing.state.transitions import ewma

if TYPE_CHECKING:
    from loadbalancer.settings.records import ProviderConfig, RoutingConfig

EXPLORATION_PROBABILITY = 0.1
# While a half-open trial runs elsewhere we cannot know when it ends; callers waiting re-check this often.
TRIAL_RECHECK_SECONDS = 1.0
SERVING_MODELS_KEPT = 1024  # model names whose providers are kept (see Balancer.serving)


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
    cooldown_reason: str | None = None  # why it cools down, while it does


@dataclass
class _LocalState:
    """What stays per worker; only touched under the Balancer's lock."""

    in_flight: int = 0  # this worker's requests to the provider right now
    requests: int = 0
    failures: int = 0
    latency_seconds: float | None = None  # this worker's EWMA of time to first byte
    probe_unhealthy: bool = False
    probe_error: str | None = None
    probe_error_at: float | None = None
    probe_latency_seconds: float | None = None
    trial_owner: str | None = None  # the fleet's half-open trial, when this worker holds it
    swrr_current: int = 0


class Balancer:
    """Orders providers per request; keeps local counters and writes shared state to the store."""

    def __init__(
        self,
        providers: Sequence[ProviderConfig],
        routing: RoutingConfig,
        *,
        store: ProviderStateStore | None = None,
        clock: Callable[[], float] = time.time,
        random: random_module.Random | None = None,
    ) -> None:
        self._providers = tuple(providers)
        self._routing = routing
        self._clock = clock  # wall clock: shared expiries are compared across processes
        self._random = random if random is not None else random_module.Random()
        self._store = store if store is not None else MemoryStore(clock=clock, rng=self._random)
        self._store.retain(p.name for p in self._providers)
        self._policy = FailurePolicy(routing.cooldown, routing.max_cooldown, routing.failure_threshold)
        self._lock = threading.Lock()
        self._local = {p.name: _LocalState() for p in self._providers}
        self._trial_names = (f"{secrets.token_hex(5)}-{n}" for n in itertools.count())
        self._serving_by_model: dict[str, tuple[ProviderConfig, ...]] = {}

    @property
    def store(self) -> ProviderStateStore:
        """The shared state this balancer reads and writes."""
        return self._store

    def plan(self, needs: RequestNeeds, affinity_key: str | None = None,
             exclude: Collection[str] = ()) -> list[ProviderConfig]:
        """Providers to try for this request, in order; each at most once. Empty when none is eligible right now.

        `exclude` names providers this request already tried. The head of the plan is the one
        the caller tries next, so only there is a half-open provider's single trial claimed.
        """
        while True:
            snap = self._store.snapshot()
            with self._lock:
                now = self._clock()
                eligible = [p for p in self._served(needs.model)
                            if p.name not in exclude and self._fits(p, needs)
                            and self._wait_for(snap.get(p.name).shared, now) == 0.0]
                trusted = [p for p in eligible if not self._local[p.name].probe_unhealthy]
                doubted = [p for p in eligible if self._local[p.name].probe_unhealthy]
                ordered = self._order(trusted, snap) + self._order(doubted, snap)
                ordered = self._apply_affinity(ordered, trusted, affinity_key)
                chosen = ordered[: max(1, self._routing.max_attempts)]
            if not chosen or snap.get(chosen[0].name).shared.circuit(now) != "half_open":
                return chosen
            if self._claim_trial(chosen[0]):
                return chosen
            exclude = {*exclude, chosen[0].name}  # another request holds the trial: plan without it

    def serving(self, model: str) -> list[ProviderConfig]:
        """Enabled providers that serve `model`, whatever their state.

        Asked three or four times per request, `plan` included (and matching a model against
        each provider's patterns is ~1 µs), so the answer is kept per model name: the providers and their
        models are fixed for the life of a balancer (a reload builds a new one). The names are
        the clients', so only so many are kept.
        """
        return list(self._served(model))

    def _served(self, model: str) -> tuple[ProviderConfig, ...]:
        found = self._serving_by_model.get(model)
        if found is None:
            if len(self._serving_by_model) >= SERVING_MODELS_KEPT:
                self._serving_by_model.clear()
            found = self._serving_by_model[model] = tuple(
                p for p in self._providers if p.enabled and p.model_for(model) is not None)
        return found

    def seconds_until_available(self, needs: RequestNeeds) -> float | None:
        """Seconds until the first capable provider takes traffic again; None if none ever will."""
        snap = self._store.snapshot()
        now = self._clock()
        waits = [self._wait_for(snap.get(p.name).shared, now)
                 for p in self._providers if self._is_capable(p, needs)]
        return min(waits) if waits else None

    def begin(self, name: str) -> None:
        """Record that a request to `name` started."""
        with self._lock:
            local = self._local.get(name)
            if local is None:
                return  # removed by a config reload while the request was planned
            local.in_flight += 1
            local.requests += 1
        self._store.add_in_flight(name, 1)

    def succeeded(self, name: str, first_byte_seconds: float, affinity_key: str | None = None) -> None:
        """End a request that worked: reset failures, close the circuit, update latency.

        `affinity_key` is accepted for callers of the pinning days; rendezvous hashing keeps nothing.
        """
        with self._lock:
            local = self._local.get(name)
            if local is None:
                return
            self._end_request(local)
            local.probe_unhealthy = False  # real traffic outranks a probe's opinion
            local.latency_seconds = ewma(local.latency_seconds, first_byte_seconds)
        self._store.add_in_flight(name, -1)
        self._store.record_latency(name, first_byte_seconds)
        self._store.record_success(name)

    def failed(self, name: str, reason: str, retry_after: float | None = None) -> None:
        """End a request that failed: count it, cool the provider down, maybe open its circuit."""
        with self._lock:
            local = self._local.get(name)
            if local is None:
                return
            self._end_request(local)
            local.failures += 1
        self._store.add_in_flight(name, -1)
        self._store.record_failure(name, reason, retry_after=retry_after, policy=self._policy)

    def released(self, name: str) -> None:
        """End a request without a verdict on the provider (e.g. a client error passed through)."""
        with self._lock:
            local = self._local.get(name)
            if local is None:
                return
            trial_owner = local.trial_owner
            self._end_request(local)
        self._store.add_in_flight(name, -1)
        if trial_owner is not None:
            self._store.release_trial(name, trial_owner)

    def probe_result(self, name: str, ok: bool, latency_ms: float | None, error: str | None) -> None:
        """Take a health probe's verdict: a failed probe sends the provider to the end of plans."""
        with self._lock:
            local = self._local.get(name)
            if local is None:
                return
            local.probe_unhealthy = not ok
            if ok and latency_ms is not None:
                local.probe_latency_seconds = latency_ms / 1000.0
            if not ok:
                local.probe_error = error or "health probe failed"
                local.probe_error_at = self._clock()

    def snapshot(self) -> list[ProviderSnapshot]:
        """State of every provider in config order, disabled ones included."""
        snap = self._store.snapshot()
        with self._lock:
            now = self._clock()
            return [self._snapshot_of(p, snap, now) for p in self._providers]

    def carry_state_from(self, old: Balancer) -> None:
        """Keep this worker's counters of providers whose name survived a config reload."""
        with old._lock:
            carried = {name: replace(local) for name, local in old._local.items() if name in self._local}
        with self._lock:
            for name, local in carried.items():
                # Requests in flight finish on the old Balancer; counting them here would stick forever.
                local.in_flight = 0
                local.trial_owner = None
                local.swrr_current = 0  # weights may have changed
                self._local[name] = local

    def _claim_trial(self, provider: ProviderConfig) -> bool:
        """Take the fleet's single half-open trial of `provider` for this worker's next attempt."""
        owner = next(self._trial_names)
        # The lease covers the whole attempt up to its first byte; it only matters if we die.
        lease = min(self._routing.deadline, provider.timeout.connect + provider.timeout.read)
        if not self._store.claim_trial(provider.name, owner, lease):
            return False
        with self._lock:
            local = self._local.get(provider.name)
            if local is not None:
                local.trial_owner = owner
        return True

    def _is_capable(self, provider: ProviderConfig, needs: RequestNeeds) -> bool:
        """Whether the provider is enabled, serves the model and can take this request's size and features."""
        return provider.enabled and provider.model_for(needs.model) is not None and self._fits(provider, needs)

    @staticmethod
    def _fits(provider: ProviderConfig, needs: RequestNeeds) -> bool:
        """Whether a provider that serves the model can take this request's size and features."""
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
    def _wait_for(shared: ProviderShared, now: float) -> float:
        """Seconds until this provider takes traffic again: 0 when not cooling and its trial is free."""
        wait = shared.seconds_until_available(now)
        if wait > 0 and now >= shared.cooldown_until:
            return min(wait, TRIAL_RECHECK_SECONDS)  # a trial runs: it may end any moment
        return wait

    def _order(self, providers: list[ProviderConfig], snap: Snapshot) -> list[ProviderConfig]:
        """Order eligible providers by the configured strategy."""
        strategy = self._routing.strategy
        if strategy == "weighted":
            return self._swrr_order(providers)
        if strategy == "least_busy":
            return self._grouped_order(providers, lambda p: (self._in_flight(p.name, snap), p.priority))
        if strategy == "latency":
            return self._latency_order(providers, snap)
        return self._grouped_order(providers, lambda p: (p.priority,))

    def _in_flight(self, name: str, snap: Snapshot) -> int:
        """This worker's live count plus the others' last published ones (approximate)."""
        return self._local[name].in_flight + snap.get(name).in_flight_elsewhere

    def _latency_seconds(self, name: str, snap: Snapshot) -> float | None:
        """Mean first-byte latency over this worker and the others that measured; else the probe's."""
        view, own = snap.get(name), self._local[name].latency_seconds
        elsewhere = None if view.latency_ms_elsewhere is None else view.latency_ms_elsewhere / 1000.0
        if own is None and elsewhere is None:
            return self._local[name].probe_latency_seconds
        if elsewhere is None:
            return own
        if own is None:
            return elsewhere
        return (own + elsewhere * view.reporters_elsewhere) / (1 + view.reporters_elsewhere)

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
        current = {p.name: self._local[p.name].swrr_current for p in members}
        first = _swrr_pick(members, current)
        for p in members:
            self._local[p.name].swrr_current = current[p.name]
        ordered = [first]
        remaining = [p for p in members if p is not first]
        while remaining:
            pick = _swrr_pick(remaining, current)
            ordered.append(pick)
            remaining.remove(pick)
        return ordered

    def _latency_order(self, providers: list[ProviderConfig], snap: Snapshot) -> list[ProviderConfig]:
        """Fastest first; unmeasured count as fastest; sometimes explore the runner-up."""
        def speed(p: ProviderConfig) -> tuple[bool, float, int]:
            latency = self._latency_seconds(p.name, snap)
            return (latency is not None, latency or 0.0, p.priority)

        ordered = sorted(providers, key=speed)
        if len(ordered) >= 2 and self._random.random() < EXPLORATION_PROBABILITY:
            ordered[0], ordered[1] = ordered[1], ordered[0]
        return ordered

    def _apply_affinity(self, ordered: list[ProviderConfig], trusted: list[ProviderConfig],
                        affinity_key: str | None) -> list[ProviderConfig]:
        """Put the conversation's own provider first: rendezvous hashing over whom the strategy spreads over.

        That is every trusted provider under `weighted`, else those of the best priority
        among them, weighted by `weight`; the strategy still orders everything after it.
        """
        if not (self._routing.affinity and affinity_key and trusted):
            return ordered
        candidates = trusted
        if self._routing.strategy != "weighted":
            best = min(p.priority for p in trusted)
            candidates = [p for p in trusted if p.priority == best]
        home = rendezvous_pick(affinity_key, candidates)
        return [home] + [p for p in ordered if p is not home]

    @staticmethod
    def _end_request(local: _LocalState) -> None:
        """A request ended; floor at zero because reload can hand us requests we never began."""
        local.in_flight = max(0, local.in_flight - 1)
        local.trial_owner = None

    def _snapshot_of(self, provider: ProviderConfig, snap: Snapshot, now: float) -> ProviderSnapshot:
        """One provider's state as /health shows it."""
        local, shared = self._local[provider.name], snap.get(provider.name).shared
        remaining = max(0.0, shared.cooldown_until - now)
        circuit = shared.circuit(now)
        if not provider.enabled:
            status = "disabled"
        elif remaining > 0 or circuit == "open":
            status = "cooling_down"
        elif local.probe_unhealthy or shared.consecutive_failures > 0:
            status = "unhealthy"
        else:
            status = "healthy"
        last_error, last_error_at = (shared.cooldown_reason or None), (shared.last_error_at or None)
        if local.probe_unhealthy and (last_error_at is None or (local.probe_error_at or 0) >= last_error_at):
            last_error, last_error_at = local.probe_error, local.probe_error_at
        latency = self._latency_seconds(provider.name, snap)
        return ProviderSnapshot(
            name=provider.name, state=status, circuit=circuit,
            last_error=last_error, last_error_at=last_error_at,
            latency_ms=None if latency is None else latency * 1000.0,
            consecutive_failures=shared.consecutive_failures, cooldown_remaining=remaining,
            in_flight=self._in_flight(provider.name, snap), requests=local.requests,
            failures=local.failures, cooldown_reason=(shared.cooldown_reason or None) if remaining > 0 else None,
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
