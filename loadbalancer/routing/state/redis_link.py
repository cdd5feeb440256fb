"""The Redis connection of one process: short timeouts, no retries, fail-open, one log line.

Every Redis call of the store goes through `RedisLink.call`. When one times out or is
refused, Redis is marked down for RETRY_SECONDS: request-path calls then raise `RedisDown`
at once (the store serves on local state), and only the background thread tries again.
The loss and the return are each logged once.
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

DEFAULT_TIMEOUT = 0.05  # connect and read, seconds: a slow Redis must never slow requests down
RETRY_SECONDS = 1.0  # while down, the background thread tries Redis again this often
CLOCK_SAMPLES = 3
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


class RedisDown(Exception):
    """Redis is marked down: the caller serves on local state."""


def client_factory(url: str, timeout: float = DEFAULT_TIMEOUT) -> Callable[[], redis.Redis]:
    """redis-py clients with short timeouts and NO retries (its defaults: 5 s and 10 retries)."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout,
               "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    try:
        from redis.maint_notifications import MaintNotificationsConfig
        # redis-py 8 asks every new connection about cloud maintenance: a round trip we never need.
        options["maint_notifications_config"] = MaintNotificationsConfig(enabled=False)
    except ImportError:
        pass

    def factory() -> redis.Redis:
        return redis.Redis.from_url(url, **options)
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
    """One process's Redis client and its up/down state."""

    def __init__(self, factory: Callable[[], redis.Redis], where: str) -> None:
        self._factory = factory
        self.where = where  # redacted: safe to log
        self.client: redis.Redis | None = None
        self._down_until = 0.0  # monotonic
        self.down_since: float | None = None  # wall clock, while marked down
        self.offset = 0.0  # the Redis server's clock minus ours, in seconds
        self.on_recovery: Callable[[], None] = lambda: None
        self.background_running: Callable[[], bool] = lambda: False

    def open(self) -> redis.Redis:
        """A fresh client for this process (its pool connects lazily)."""
        self.close()
        self.client = self._factory()
        return self.client

    def close(self) -> None:
        """Drop the client and its pooled connections."""
        if self.client is not None:
            self.client.close()
            self.client = None

    @property
    def is_down(self) -> bool:
        """Whether Redis is marked down (local state in use)."""
        return self.down_since is not None

    def call(self, operation: Callable[[], object], *, background: bool = False) -> object:
        """Run one Redis operation, or raise RedisDown (at once while Redis is marked down).

        :raises RedisDown: Redis is marked down, or this call found it unreachable or slow.
        """
        if self.is_down and not background and self.background_running():
            raise RedisDown()
        if time.monotonic() < self._down_until or self.client is None:
            raise RedisDown()
        try:
            result = operation()
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

    def sync_clock(self) -> None:
        """Estimate the server clock's offset from the fastest of a few TIME round trips."""
        samples = []
        for _ in range(CLOCK_SAMPLES):
            before = time.time()
            seconds, micros = self.client.time()
            after = time.time()
            samples.append((after - before, seconds + micros / 1e6 - (before + after) / 2))
        self.offset = min(samples)[1]
