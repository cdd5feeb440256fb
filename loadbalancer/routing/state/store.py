"""The seam: `ProviderStateStore`, what the balancer asks of shared provider state per request.

`ProviderStateStore` is the interface. `StoreBase` holds what every backend shares: the
snapshot cache (handed out again while the backend's version is unchanged), the local
load accumulator (in-flight and latency are approximate: counted in memory and published
every `LOAD_FLUSH_SECONDS` by `maintain`), fork detection and the maintenance thread
(a greenlet under gevent). Backends supply the storage primitives.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
import threading
import time
from abc import ABC, abstractmethod
from typing import Callable, Iterable

from loadbalancer.routing.state.records import (OWNER_MAX_BYTES, FailurePolicy, LoadEntry, ProviderShared,
                                                ProviderView, RateDecision, Snapshot, StoreStatus)
from loadbalancer.routing.state.transitions import (after_claim_trial, after_failure, after_release_trial,
                                                    after_success, clip, combine_load, ewma)

log = logging.getLogger("loadbalancer.state")

LOAD_FLUSH_SECONDS = 0.25  # how often a process publishes its in-flight counts and latency
LOAD_REPUBLISH_SECONDS = 1.0  # publish even when unchanged, so readers know the reporter lives
LOAD_STALE_SECONDS = 3.0  # a reporter silent this long (a dead worker) no longer counts
COOLDOWN_JITTER = 0.1  # ±10%, so the retries of many workers do not line up

Update = Callable[[ProviderShared], "tuple[object, ProviderShared | None]"]


class ProviderStateStore(ABC):
    """Provider state shared by all workers (embedded) or all instances (redis)."""

    @abstractmethod
    def snapshot(self) -> Snapshot:
        """Every provider's shared state and approximate load elsewhere; cheap when nothing changed.

        This is the per-request read path: no lock, no system call beyond a version check,
        no network round trip (redis: the local copy, kept fresh by invalidation).
        """

    @abstractmethod
    def record_success(self, name: str) -> None:
        """A request to `name` worked: reset its failures and close its circuit (no write when clean)."""

    @abstractmethod
    def record_failure(self, name: str, reason: str, *, retry_after: float | None = None,
                       policy: FailurePolicy = FailurePolicy()) -> ProviderShared:
        """A request to `name` failed: count it, cool the provider down (at least `retry_after`
        seconds), trip the circuit at `policy.failure_threshold`; end any half-open trial.

        :returns: the provider's shared state after the failure.
        """

    @abstractmethod
    def claim_trial(self, name: str, owner: str, lease_seconds: float) -> bool:
        """Try to take the fleet's single half-open trial of `name` for `lease_seconds`.

        True when the caller may send: it now holds the trial, or the circuit is closed.
        False when the circuit is still open or another request holds a live trial lease.
        """

    @abstractmethod
    def release_trial(self, name: str, owner: str) -> None:
        """Give back a trial held by `owner` without a verdict (the request ended otherwise)."""

    @abstractmethod
    def add_in_flight(self, name: str, delta: int) -> None:
        """Count a request to `name` starting (+1) or ending (-1); local, published later."""

    @abstractmethod
    def record_latency(self, name: str, seconds: float) -> None:
        """Feed one first-byte latency sample of `name` into this process's EWMA."""

    @abstractmethod
    def hit_rate_limit(self, client_key: str, limit_per_minute: int) -> RateDecision:
        """Count one request of `client_key` against its requests-per-minute limit, or refuse it."""

    @abstractmethod
    def claim_prober(self, owner: str, lease_seconds: float) -> bool:
        """Take or renew the health-prober role; True while `owner` holds it."""

    @abstractmethod
    def release_prober(self, owner: str) -> None:
        """Give the prober role up (a stopping worker), so another takes it at once."""

    @abstractmethod
    def publish_probe_results(self, payload: bytes) -> None:
        """Store the prober's latest results (opaque bytes) for every worker to read."""

    @abstractmethod
    def read_probe_results(self) -> bytes | None:
        """The latest probe results any prober published; None when there are none."""

    @abstractmethod
    def retain(self, names: Iterable[str]) -> None:
        """The providers configured now; the state of others may be dropped when room runs out."""

    @abstractmethod
    def status(self) -> StoreStatus:
        """Which backend this is, whom it shares with, and whether it is degraded."""

    @abstractmethod
    def start(self) -> None:
        """Start the background maintenance (call in the worker, after gunicorn forked)."""

    @abstractmethod
    def close(self) -> None:
        """Stop the maintenance thread and release files or connections."""


class StoreBase(ProviderStateStore):
    """Snapshot caching, local load, fork detection and maintenance shared by all backends."""

    maintain_seconds = LOAD_FLUSH_SECONDS  # tick of the maintenance thread

    def __init__(self, *, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self._clock = clock
        self._random = rng if rng is not None else random.Random()
        self._pid = -1
        self._load_lock = threading.Lock()
        # One writer per process at a time: threads of one process share its flock fds
        # (gthread workers); under gevent nothing yields inside anyway.
        self._io_lock = threading.RLock()
        self._in_flight: dict[str, int] = {}
        self._latency: dict[str, float] = {}
        self._load_dirty = True
        self._last_published = 0.0
        self._last_load_tick = 0.0
        self._fleet_load: dict[str, tuple[int, float | None, int]] = {}
        self._states_version: object = object()  # matches no backend version
        self._states: dict[str, ProviderShared] = {}
        self._snap: Snapshot | None = None
        self._retained: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reporter = ""

    # -- backend primitives -------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Open files or connections for this process (called again in a forked child)."""

    @abstractmethod
    def _close_handles(self) -> None:
        """Release what `_open` opened."""

    @abstractmethod
    def _read_version(self) -> object:
        """A cheap value that changes whenever any provider's shared state changes."""

    @abstractmethod
    def _read_states(self) -> tuple[object, dict[str, ProviderShared]]:
        """(version, state by provider) read consistently."""

    @abstractmethod
    def _update_provider(self, name: str, update: Update) -> object:
        """Apply `update` to `name`'s state atomically; store the new state unless it is None."""

    @abstractmethod
    def _publish_load(self, entries: dict[str, LoadEntry], now: float) -> None:
        """Store this reporter's load."""

    @abstractmethod
    def _collect_load(self, now: float) -> dict[str, dict[str, LoadEntry]]:
        """Every live reporter's load, by reporter."""

    # -- the interface ------------------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """See `ProviderStateStore.snapshot`."""
        self._ensure_process()
        version = self._read_version()
        if version != self._states_version:
            self._states_version, self._states = self._read_states()
            self._snap = None
        snap = self._snap
        if snap is None:
            snap = self._snap = self._build_snapshot()
        return snap

    def record_success(self, name: str) -> None:
        """See `ProviderStateStore.record_success`."""
        if after_success(self.snapshot().get(name).shared) is None:
            return  # clean as far as we know: no write on the common path
        self._update_provider(name, lambda state: (None, after_success(state)))

    def record_failure(self, name: str, reason: str, *, retry_after: float | None = None,
                       policy: FailurePolicy = FailurePolicy()) -> ProviderShared:
        """See `ProviderStateStore.record_failure`."""
        self._ensure_process()
        jitter = self._jitter()
        now = self._clock()

        def update(state: ProviderShared) -> tuple[object, ProviderShared]:
            new = after_failure(state, now=now, reason=reason, retry_after=retry_after,
                                policy=policy, jitter=jitter)
            return new, new

        return self._update_provider(name, update)  # type: ignore[return-value]

    def claim_trial(self, name: str, owner: str, lease_seconds: float) -> bool:
        """See `ProviderStateStore.claim_trial`."""
        self._ensure_process()
        now = self._clock()
        return bool(self._update_provider(name, lambda state: after_claim_trial(
            state, now=now, owner=owner, lease_seconds=lease_seconds)))

    def release_trial(self, name: str, owner: str) -> None:
        """See `ProviderStateStore.release_trial`."""
        self._ensure_process()
        self._update_provider(name, lambda state: (None, after_release_trial(state, owner=owner)))

    def add_in_flight(self, name: str, delta: int) -> None:
        """See `ProviderStateStore.add_in_flight`."""
        with self._load_lock:
            self._in_flight[name] = max(0, self._in_flight.get(name, 0) + delta)
            self._load_dirty = True

    def record_latency(self, name: str, seconds: float) -> None:
        """See `ProviderStateStore.record_latency`."""
        with self._load_lock:
            self._latency[name] = ewma(self._latency.get(name), seconds * 1000.0)
            self._load_dirty = True

    def retain(self, names: Iterable[str]) -> None:
        """See `ProviderStateStore.retain`."""
        self._retained = frozenset(names)

    def maintain(self) -> None:
        """Publish this process's load and collect the others', every LOAD_FLUSH_SECONDS."""
        self._ensure_process()
        now = self._clock()
        if now - self._last_load_tick < LOAD_FLUSH_SECONDS:
            return
        self._last_load_tick = now
        with self._load_lock:
            due = self._load_dirty or now - self._last_published >= LOAD_REPUBLISH_SECONDS
            entries = {name: LoadEntry(self._in_flight.get(name, 0), self._latency.get(name))
                       for name in set(self._in_flight) | set(self._latency)}
            self._load_dirty = False
        if due:
            self._publish_load(entries, now)
            self._last_published = now
        reports = self._collect_load(now)
        reports.pop(self.reporter, None)  # our own load is known live, by the balancer
        fleet = combine_load(list(reports.values()))
        if fleet != self._fleet_load:
            self._fleet_load = fleet
            self._snap = None

    def start(self) -> None:
        """Run `maintain` every `maintain_seconds` in a daemon thread (call after gunicorn forks)."""
        self._ensure_process()
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="provider-state", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and release this process's handles."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2)
        self._thread = None
        if self._pid == os.getpid():
            self._close_handles()
        self._pid = -1  # a late call (a request that outlived a reload) reopens

    # -- helpers ------------------------------------------------------------------------
    def _jitter(self) -> float:
        return self._random.uniform(1 - COOLDOWN_JITTER, 1 + COOLDOWN_JITTER)

    def _run(self) -> None:
        while not self._stop.wait(self.maintain_seconds):
            try:
                self.maintain()
            except OSError as err:  # a full disk or a vanished state dir must not end it
                log.error("provider state maintenance: %s", err)

    def _ensure_process(self) -> None:
        """Open per-process handles; reopen in a forked child (inherited flock fds are shared)."""
        pid = os.getpid()
        if pid == self._pid:
            return
        forked = self._pid != -1
        self._pid = pid
        self.reporter = clip(f"{socket.gethostname()[:24]}:{pid}:{secrets.token_hex(3)}", OWNER_MAX_BYTES)
        if forked:
            # A lock some parent thread held at fork time stays held in the child forever: new locks.
            self._load_lock, self._io_lock = threading.Lock(), threading.RLock()
            self._in_flight, self._latency, self._load_dirty = {}, {}, True  # the parent's, not ours
            self._thread = None  # threads do not survive fork: start() again in the child
        self._states_version, self._snap = object(), None
        self._open()

    def _build_snapshot(self) -> Snapshot:
        views = {}
        for name in set(self._states) | set(self._fleet_load):
            in_flight, latency, reporters = self._fleet_load.get(name, (0, None, 0))
            views[name] = ProviderView(name, self._states.get(name, ProviderShared()),
                                       in_flight_elsewhere=in_flight, latency_ms_elsewhere=latency,
                                       reporters_elsewhere=reporters)
        return Snapshot(views, self._states_version)
