"""One background prober for the whole service, however many workers gunicorn runs.

Every worker runs a `HealthMonitor` thread (a greenlet under gevent). They compete for a
non-blocking `flock` on `<state dir>/health.lock`; the holder probes every provider each
`health.interval` seconds and writes the results atomically to `<state dir>/health.json`.
Every worker (the holder included) reads that file when it changes, feeds the results to
its balancer, and answers `/health` from them. When the holder dies the kernel drops its
lock and another worker takes over on its next tick. Interval 0 disables the monitor.

Live probes (`/health?probe=1`) go through the same file under `probe.lock`: whoever asks, in
whichever worker, a provider is probed at most once per interval (30 s when the monitor is
off), so the endpoint cannot be used to spend provider credit on paid probes.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import orjson

from loadbalancer.runtime import Runtime, RuntimeHolder

log = logging.getLogger("loadbalancer.health")

STATE_DIR_ENV = "LB_STATE_DIR"
LOCK_FILE = "health.lock"
RESULTS_FILE = "health.json"
PROBE_LOCK_FILE = "probe.lock"
MAX_TICK_SECONDS = 1.0  # how soon a worker notices new results or a dead prober
LIVE_PROBE_INTERVAL_WITHOUT_MONITOR = 30.0  # the default health.interval
LOCK_POLL_SECONDS = 0.05  # flock is not cooperative under gevent: poll a non-blocking one
LOCK_WAIT_SLACK = 1.0  # beyond the probe timeout, how long a live probe waits for another


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


def state_directory() -> Path:
    """The directory workers share: $LB_STATE_DIR (gunicorn.conf.py sets it), else a fresh one."""
    configured = os.environ.get(STATE_DIR_ENV)
    if not configured:
        # Outside gunicorn there is one process: a private directory keeps apps apart.
        return Path(tempfile.mkdtemp(prefix="anthropic-lb-"))
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_results(path: Path, results: list[ProbeResult]) -> None:
    """Write probe results so that a reader never sees half a file."""
    payload = {"written_at": time.time(), "pid": os.getpid(),
               "results": [asdict(result) for result in results]}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(orjson.dumps(payload))
    os.replace(temporary, path)


def read_results(path: Path) -> dict[str, ProbeResult]:
    """The last results by provider name; empty when there are none (yet) or the file is bad."""
    try:
        payload = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError:
        log.warning("ignoring unreadable health results in %s", path)
        return {}
    results = {}
    for item in payload.get("results", []) if isinstance(payload, dict) else []:
        try:
            result = ProbeResult(**{**item, "models": tuple(item.get("models") or ())})
        except TypeError:
            continue  # written by another version of the service
        results[result.name] = result
    return results


class HealthMonitor:
    """Probes (when it holds the lock) and shares probe results between workers."""

    def __init__(self, holder: RuntimeHolder, directory: Path,
                 probe: Callable[[Runtime], list[ProbeResult]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._holder = holder
        self._lock_path = directory / LOCK_FILE
        self._results_path = directory / RESULTS_FILE
        self._probe_lock_path = directory / PROBE_LOCK_FILE
        self._probe = probe
        self._clock = clock
        self._lock_file: int | None = None
        self._last_probe: float | None = None
        self._seen_mtime: int | None = None
        self._results: dict[str, ProbeResult] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def is_prober(self) -> bool:
        """Whether this worker holds the lock and does the probing."""
        return self._lock_file is not None

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
        """The shortest time between two probes of a provider that `probe_now` allows."""
        return self.interval if self.interval > 0 else LIVE_PROBE_INTERVAL_WITHOUT_MONITOR

    def probe_now(self) -> dict[str, ProbeResult]:
        """Results no older than one interval: probes now only when the last ones are older."""
        runtime = self._holder.current
        wait = runtime.config.health.timeout + LOCK_WAIT_SLACK
        with _exclusive_lock(self._probe_lock_path, wait) as locked:
            if locked and self._live_probe_is_due(runtime, read_results(self._results_path)):
                write_results(self._results_path, self._probe(runtime))
        self.load_results()
        return self.results()

    def _live_probe_is_due(self, runtime: Runtime, known: dict[str, ProbeResult]) -> bool:
        """Whether some enabled provider has no result younger than the live probe interval."""
        now = time.time()
        return any(name not in known or now - known[name].checked_at >= self.live_probe_interval
                   for name in runtime.clients)

    def start(self) -> None:
        """Run `tick` in a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._run, name="health-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and give up the lock."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._release_lock()

    def tick(self) -> None:
        """One step: take the lock if free, probe when due, pick up new results."""
        if self.interval <= 0:
            return
        if not self.is_prober:
            self._try_lock()
        if self.is_prober and self._probe_is_due():
            self._last_probe = self._clock()
            results = self._probe(self._holder.current)
            with _exclusive_lock(self._probe_lock_path, LOCK_WAIT_SLACK + self._holder.current.config.health.timeout):
                write_results(self._results_path, results)
        self.load_results()

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

    def _try_lock(self) -> None:
        descriptor = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return
        self._lock_file = descriptor
        log.info("health monitor: this worker (pid %d) probes the providers", os.getpid())

    def _release_lock(self) -> None:
        if self._lock_file is not None:
            os.close(self._lock_file)  # closing the descriptor drops the flock
            self._lock_file = None

    @property
    def results_path(self) -> Path:
        """The file the prober writes and every worker reads."""
        return self._results_path

    def load_results(self) -> None:
        """Pick up results the prober wrote since the last look and feed them to the balancer."""
        try:
            mtime = self._results_path.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if mtime == self._seen_mtime:
            return
        self._seen_mtime = mtime
        self._results = read_results(self._results_path)
        balancer = self._holder.current.balancer
        for result in self._results.values():
            balancer.probe_result(result.name, result.usable, result.latency_ms, result.error)


@contextlib.contextmanager
def _exclusive_lock(path: Path, wait_seconds: float) -> Iterator[bool]:
    """Hold an exclusive flock on `path`; yields False when it stayed taken for `wait_seconds`."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_seconds
    locked = False
    try:
        while not locked:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    break
                time.sleep(LOCK_POLL_SECONDS)  # a gevent-friendly wait
        yield locked
    finally:
        os.close(descriptor)  # closing drops the lock
