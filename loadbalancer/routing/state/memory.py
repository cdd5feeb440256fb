"""The simplest backend: state in this process only (unit tests, a lone `flask run`).

It keeps the same promises as the shared backends within one process, so the balancer's
tests can run on it with a fake clock and no files.
"""

from __future__ import annotations

import threading
from typing import Iterable

from loadbalancer.routing.state.records import LoadEntry, ProviderShared, RateDecision, StoreStatus
from loadbalancer.routing.state.store import StoreBase, Update
from loadbalancer.routing.state.transitions import WindowCounts, clip, decide_rate


class MemoryStore(StoreBase):
    """Provider state, rate windows and the prober role in this process's memory."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lock = threading.Lock()
        self._version = 0
        self._shared: dict[str, ProviderShared] = {}
        self._rates: dict[str, WindowCounts] = {}
        self._prober: tuple[str, float] = ("", 0.0)
        self._probe_results: bytes | None = None

    def start(self) -> None:
        """Nothing to maintain: no other process to publish to or hear from."""

    def _open(self) -> None:
        """Nothing to open: the state is this object."""

    def _close_handles(self) -> None:
        """Nothing to release."""

    def _read_version(self) -> object:
        return self._version

    def _read_states(self) -> tuple[object, dict[str, ProviderShared]]:
        with self._lock:
            return self._version, dict(self._shared)

    def _update_provider(self, name: str, update: Update) -> object:
        with self._lock:
            result, new = update(self._shared.get(name, ProviderShared()))
            if new is not None:
                self._shared[name] = new
                self._version += 1
            return result

    def _publish_load(self, entries: dict[str, LoadEntry], now: float) -> None:
        """One process: nobody else to tell."""

    def _collect_load(self, now: float) -> dict[str, dict[str, LoadEntry]]:
        return {}

    def hit_rate_limit(self, client_key: str, limit_per_minute: int) -> RateDecision:
        """See `ProviderStateStore.hit_rate_limit`."""
        with self._lock:
            decision, counts = decide_rate(self._rates.get(client_key), self._clock(), limit_per_minute)
            if decision.allowed:
                self._rates[client_key] = counts
            return decision

    def claim_prober(self, owner: str, lease_seconds: float) -> bool:
        """See `ProviderStateStore.claim_prober`."""
        owner, now = clip(owner, 40), self._clock()
        with self._lock:
            holder, until = self._prober
            if holder not in ("", owner) and until > now:
                return False
            self._prober = (owner, now + lease_seconds)
            return True

    def release_prober(self, owner: str) -> None:
        """See `ProviderStateStore.release_prober`."""
        with self._lock:
            if self._prober[0] == clip(owner, 40):
                self._prober = ("", 0.0)

    def publish_probe_results(self, payload: bytes) -> None:
        """See `ProviderStateStore.publish_probe_results`."""
        self._probe_results = payload

    def read_probe_results(self) -> bytes | None:
        """See `ProviderStateStore.read_probe_results`."""
        return self._probe_results

    def retain(self, names: Iterable[str]) -> None:
        """See `ProviderStateStore.retain`: state of providers gone from the config is dropped."""
        kept = frozenset(names)
        super().retain(kept)
        with self._lock:
            if set(self._shared) - kept:
                self._shared = {name: state for name, state in self._shared.items() if name in kept}
                self._version += 1

    def status(self) -> StoreStatus:
        """See `ProviderStateStore.status`."""
        return StoreStatus("memory", "this process")
