"""Provider state that must be one truth: per worker, per instance (embedded) or per fleet (Redis).

`ProviderStateStore` (store.py) is the seam the balancer, the rate limiter and the health
monitor call; one module per backend implements it: `memory` (one process), `embedded`
(the workers of one instance, through the state directory) and `redis_store` (every
instance). `open_store` picks the backend the configuration names.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from loadbalancer.routing.state.records import (FailurePolicy, ProviderShared, ProviderView, RateDecision,
                                                Snapshot, StoreStatus)
from loadbalancer.routing.state.store import ProviderStateStore
from loadbalancer.settings.records import StateConfig

STATE_DIR_ENV = "LB_STATE_DIR"
EMBEDDED_SUBDIRECTORY = "provider-state"

__all__ = ["FailurePolicy", "ProviderShared", "ProviderStateStore", "ProviderView", "RateDecision",
           "Snapshot", "StoreStatus", "open_store", "state_directory"]


def state_directory() -> Path:
    """The directory workers share: $LB_STATE_DIR (gunicorn.conf.py sets it), else a fresh one."""
    configured = os.environ.get(STATE_DIR_ENV)
    if not configured:
        # Outside gunicorn there is one process: a private directory keeps apps apart.
        return Path(tempfile.mkdtemp(prefix="anthropic-lb-"))
    path = Path(configured)
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_store(settings: StateConfig, directory: Path) -> ProviderStateStore:
    """The backend `settings` names: Redis when it has a URL, else the embedded store in `directory`."""
    if settings.redis_url:
        # Imported here: an instance without Redis never needs the client library loaded.
        from loadbalancer.routing.state.redis_link import client_factory, redacted_url
        from loadbalancer.routing.state.redis_store import RedisStore
        return RedisStore(client_factory(settings.redis_url), settings.prefix,
                          where=redacted_url(settings.redis_url))
    from loadbalancer.routing.state.embedded import EmbeddedStore
    return EmbeddedStore(directory / EMBEDDED_SUBDIRECTORY)
