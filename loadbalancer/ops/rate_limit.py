"""Requests-per-minute limits per client key, counted in the shared provider state.

The window lives in the state store (`routing/state`): the embedded store shares it between
the workers of one instance, the Redis store between every instance, so a client's limit is
enforced fleet-wide. The estimate is a sliding window (`transitions.decide_rate`). Only
clients configured with `requests_per_minute` are ever counted, under a hash of their name.
"""

from __future__ import annotations

from typing import Callable

from loadbalancer.errors import RateLimited
from loadbalancer.routing.state import ProviderStateStore
from loadbalancer.settings.records import ClientKey


class RateLimiter:
    """Checks clients against their limits in the store the current runtime uses."""

    def __init__(self, store_of: Callable[[], ProviderStateStore]) -> None:
        self._store_of = store_of

    def check(self, client: ClientKey) -> None:
        """Count one request by `client`, or refuse it.

        :raises RateLimited: the client is over its requests_per_minute (429, retry-after).
        """
        limit = client.requests_per_minute
        if not limit:
            return
        decision = self._store_of().hit_rate_limit(client.name, limit)
        if not decision.allowed:
            raise RateLimited(
                f"client {client.name!r} is over its limit of {limit} requests per minute; "
                f"retry in {decision.retry_after} s",
                headers={"retry-after": str(decision.retry_after)})
