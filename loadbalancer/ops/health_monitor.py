"""One background prober for the whole service, however many workers and instances run.

Every worker runs a `HealthMonitor` thread (a greenlet under gevent). Each tick it tries to
take or renew the prober role in the shared state store (a lease: the embedded store shares
it between the workers of one instance, the Redis store between every instance); the holder
probes every provider each `health.interval` seconds and publishes the results through the
store. Every worker (the holder included) reads them when they change, feeds them to its
balancer, and answers `/health` from them. When the holder dies its lease lapses and another
worker takes over within PROBER_LEASE_SECONDS; a stopping holder gives the role up at once.
Interval 0 disables the monitor.

Live probes (`/health?probe=1`) go through the same role and results: whoever asks, in
whichever worker or instance, the providers are probed at most once per interval (30 s with the
monitor off), so the endpoint cannot be used to spend provider credit on paid probes.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import orjson

from loadbalancer.runtime import Runtime, RuntimeHolder

log = logging.getLogger("loadbalancer.health")

MAX_TICK_SECONDS = 1.0  # how soon a worker notices new results or a dead prober
LIVE_PROBE_INTERVAL_WITHOUT_MONITOR = 30.0  # the default health.interval
LIVE_PROBE_POLL_SECONDS = 0.05  # a live probe that found another one running waits for its results
LIVE_PROBE_WAIT_SLACK = 1.0  # beyond health.timeout
# The role outlives a few missed ticks and one whole probe round (bounded by health.timeout).
PROBER_LEASE_TICKS = 3


@dataclass(frozen=True)
class ProbeResult:
    """What one probe of one provider found."""

    name: str
    reachable: bool
    auth_ok: bool | None
    latency_ms: float | None
    models: tuple[str, ...]
    error: str | None
    checked_at: float

    @property
    def usable(self) -> bool:
        """Reachable, answered 2xx, key accepted: anything else is not a provider to count on."""
        return self.reachable and self.auth_ok is True and self.error is None


def encode_results(results: list[ProbeResult]) -> bytes:
    """Probe results as the bytes the prober publishes."""
    return orjson.dumps({"written_at": time.time(), "pid": os.getpid(),
                         "results": [asdict(result) for result in results]})


def decode_results(payload: bytes | None) -> dict[str, ProbeResult]:
    """The results by provider name; empty when there are none (yet) or the payload is bad."""
    if not payload:
        return {}
    try:
        decoded = orjson.loads(payload)
    except orjson.JSONDecodeError:
        log.warning("ignoring unreadable health results")
        return {}
    results = {}
    for item in decoded.get("results", []) if isinstance(decoded, dict) else []:
        try:
            result = ProbeResult(**{**item, "models": tuple(item.get("models") or ())})
        except TypeError:
            continue  # written by another version of the service
        results[result.name] = result
    return results


class HealthMonitor:
    """Probes (while it holds the prober role) and shares probe results between workers."""

    def __init__(self, holder: RuntimeHolder, probe: Callable[[Runtime], list[ProbeResult]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._holder = holder
        self._probe = probe
        self._clock = clock
        self._owner = ""
        self._owner_pid = -1
        self._is_prober = False
        self._last_probe: float | None = None
        self._seen: bytes | None = None
        self._results: dict[str, ProbeResult] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_prober(self) -> bool:
        """Whether this worker held the prober role at its last tick."""
        return self._is_prober

    @property
    def interval(self) -> float:
        """Seconds between probes, from the current configuration (0: disabled)."""
        return self._holder.current.config.health.interval

    def results(self) -> dict[str, ProbeResult]:
        """The last probe result per provider, as every worker sees it."""
        return dict(self._results)

    def describe(self) -> dict:
        """The monitor's settings and freshness, for `/health` and the status page."""
        taken = [result.checked_at for result in self._results.values()]
        return {"enabled": self.interval > 0, "interval_s": self.interval,
                "this_worker_probes": self.is_prober, "last_checked_at": max(taken, default=None)}

    @property
    def live_probe_interval(self) -> float:
        """The shortest time between two probes of the providers that `probe_now` allows."""
        return self.interval if self.interval > 0 else LIVE_PROBE_INTERVAL_WITHOUT_MONITOR

    def probe_now(self) -> dict[str, ProbeResult]:
        """Results no older than one interval: probes now only when the last ones are older.

        The probing is done under the prober role, so one worker of the fleet probes; a worker
        that cannot take the role (another is probing) waits for that one's results.
        """
        runtime = self._holder.current
        deadline = time.monotonic() + runtime.config.health.timeout + LIVE_PROBE_WAIT_SLACK
        while self._live_probe_is_due(runtime) and time.monotonic() < deadline:
            if runtime.store.claim_prober(self.owner, self._lease_seconds()):
                try:
                    if self._live_probe_is_due(runtime):  # another may have probed meanwhile
                        self._last_probe = self._clock()
                        runtime.store.publish_probe_results(encode_results(self._probe(runtime)))
                finally:
                    if not self._is_prober:
                        runtime.store.release_prober(self.owner)  # borrowed for this probe only
                break
            time.sleep(LIVE_PROBE_POLL_SECONDS)  # gevent-friendly
        self.load_results()
        return self.results()

    def _live_probe_is_due(self, runtime: Runtime) -> bool:
        """Whether some enabled provider has no result younger than the live probe interval."""
        known = decode_results(runtime.store.read_probe_results())
        now = time.time()
        return any(name not in known or now - known[name].checked_at >= self.live_probe_interval
                   for name in runtime.clients)

    def _lease_seconds(self) -> float:
        # The role outlives a few missed ticks and one whole probe round (bounded by health.timeout).
        return PROBER_LEASE_TICKS * MAX_TICK_SECONDS + self._holder.current.config.health.timeout

    def start(self) -> None:
        """Run `tick` in a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give the prober role up, so another worker takes it at once."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._give_up_role()

    def tick(self) -> None:
        """One step: take or renew the prober role, probe when due, pick up new results."""
        if self.interval <= 0:
            self._give_up_role()
            return
        store = self._holder.current.store
        was_prober, self._is_prober = self._is_prober, store.claim_prober(self.owner, self._lease_seconds())
        if self._is_prober and not was_prober:
            log.info("health monitor: this worker (pid %d) probes the providers", os.getpid())
        if self._is_prober and self._probe_is_due():
            self._last_probe = self._clock()
            store.publish_probe_results(encode_results(self._probe(self._holder.current)))
        self.load_results()

    @property
    def owner(self) -> str:
        """This process's name for the prober role (new after a fork)."""
        if self._owner_pid != os.getpid():
            self._owner_pid = os.getpid()
            self._owner = f"{socket.gethostname()[:24]}:{self._owner_pid}:{secrets.token_hex(3)}"
        return self._owner

    def _give_up_role(self) -> None:
        if self._is_prober:
            self._holder.current.store.release_prober(self.owner)
            self._is_prober = False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except OSError as err:
                # A full disk or a removed state dir must not kill monitoring for good.
                log.error("health monitor: %s", err)
            interval = self.interval
            self._stop.wait(MAX_TICK_SECONDS if interval <= 0 else min(interval, MAX_TICK_SECONDS))

    def _probe_is_due(self) -> bool:
        return self._last_probe is None or self._clock() - self._last_probe >= self.interval

    def load_results(self) -> None:
        """Pick up results the prober published since the last look and feed them to the balancer."""
        payload = self._holder.current.store.read_probe_results()
        if payload is None or payload == self._seen:
            return
        self._seen = payload
        self._results = decode_results(payload)
        balancer = self._holder.current.balancer
        for result in self._results.values():
            balancer.probe_result(result.name, result.usable, result.latency_ms, result.error)
