"""The Redis connections of one process: short timeouts, no retries, fail-open, one log line.

Every Redis call of the store goes through `RedisLink.call`. Calls on a request's path use
a client whose timeouts are REQUEST_TIMEOUT (50 ms: Redis never adds more to a request);
the background thread's calls (subscriber, load, prober, reconnection) use a client of their
own with BACKGROUND_TIMEOUT, so one slow moment of Redis does not flip a healthy fleet into
"degraded". When a call times out or is refused, Redis is marked down for RETRY_SECONDS:
request-path calls then raise `RedisDown` at once (the store serves on local state), and
only the background thread tries again. The loss and the return are each logged once.
"""

from __future__ import annotations

import logging
import time
from typing import Callable
from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("loadbalancer.state")

REQUEST_TIMEOUT = 0.05  # connect and read, seconds: a slow Redis must never slow requests down
BACKGROUND_TIMEOUT = 0.5  # the background thread may wait longer: nobody waits for it
RETRY_SECONDS = 1.0  # while down, the background thread tries Redis again this often
CLOCK_SAMPLES = 3
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class RedisDown(Exception):
    """Redis is marked down: the caller serves on local state."""


ClientFactory = Callable[[float], redis.Redis]


def client_factory(url: str) -> ClientFactory:
    """Makes redis-py clients with the given timeout and NO retries (its defaults: 5 s and 10 retries)."""
    options: dict = {"retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    try:
        from redis.maint_notifications import MaintNotificationsConfig
        # redis-py 8 asks every new connection about cloud maintenance: a round trip we never need.
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    except ImportError:
        pass

    def factory(timeout: float) -> redis.Redis:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, **options)
    return factory


def redacted_url(url: str) -> str:
    """`url` without user or password, for logs and /health."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RedisLink:
    """One process's Redis clients (request path, background) and their up/down state."""

    def __init__(self, factory: ClientFactory, where: str, *, request_timeout: float = REQUEST_TIMEOUT,
                 background_timeout: float = BACKGROUND_TIMEOUT) -> None:
        self._factory = factory
        self._timeouts = (request_timeout, background_timeout)
        self.where = where  # redacted: safe to log
        self.client: redis.Redis | None = None
        self.background: redis.Redis | None = None
        self._down_until = 0.0  # monotonic
        self.down_since: float | None = None  # wall clock, while marked down
        self.offset = 0.0  # the Redis server's clock minus ours, in seconds
        self.on_recovery: Callable[[], None] = lambda: None
        self.background_running: Callable[[], bool] = lambda: False

    def open(self) -> None:
        """Fresh clients for this process (their pools connect lazily)."""
        self.close()
        self.client, self.background = (self._factory(timeout) for timeout in self._timeouts)

    def close(self) -> None:
        """Drop the clients and their pooled connections."""
        for client in (self.client, self.background):
            if client is not None:
                client.close()
        self.client = self.background = None

    @property
    def is_down(self) -> bool:
        """Whether Redis is marked down (local state in use)."""
        return self.down_since is not None

    def call(self, operation: Callable[[redis.Redis], object], *, background: bool = False) -> object:
        """Run `operation` on the request-path or the background client, or raise RedisDown.

        :raises RedisDown: Redis is marked down, or this call found it unreachable or slow.
        """
        if self.is_down and not background and self.background_running():
            raise RedisDown()
        client = self.background if background else self.client
        if time.monotonic() < self._down_until or client is None:
            raise RedisDown()
        try:
            result = operation(client)
        except REDIS_ERRORS as err:
            self._mark_down(err)
            raise RedisDown() from err
        if self.is_down:
            log.warning("redis %s reachable again: provider state is shared again", self.where)
            self.down_since = None
            self._down_until = 0.0
            self.on_recovery()
        return result

    def _mark_down(self, err: Exception) -> None:
        self._down_until = time.monotonic() + RETRY_SECONDS
        if not self.is_down:
            self.down_since = time.time()
            log.warning("redis %s unreachable (%s): serving on this process's provider state, "
                        "retrying every %.0f s", self.where, type(err).__name__, RETRY_SECONDS)

    def sync_clock(self, client: redis.Redis) -> None:
        """Estimate the server clock's offset from the fastest of a few TIME round trips."""
        samples = []
        for _ in range(CLOCK_SAMPLES):
            before = time.time()
            seconds, micros = client.time()
            after = time.time()
            samples.append((after - before, seconds + micros / 1e6 - (before + after) / 2))
        self.offset = min(samples)[1]
