"""`/v1/models`: the models clients may ask for, and which providers serve each.

Behind a glob (`"claude-*": "*"`) the configuration names no model, so the listing also takes
the models the providers themselves report: the health monitor's probe already fetches each
provider's model listing, and `ModelCatalog` caches what it found (probing now, once per
`CACHE_SECONDS`, a provider the monitor has no result for). A name is listed only when some
enabled provider's routes accept it, with every provider that does. The page and object shapes
of Anthropic's and OpenAI's APIs are built here too; only routes.py touches Flask.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from loadbalancer.errors import InvalidRequest
from loadbalancer.ops.health_monitor import ProbeResult
from loadbalancer.runtime import Runtime
from loadbalancer.settings.records import Config

CACHE_SECONDS = 300.0        # a provider's model list changes rarely
FAILED_PROBE_CACHE_SECONDS = 30.0  # an unreachable provider is asked again soon, but not per request
DEFAULT_PAGE_SIZE = 20       # Anthropic's default `limit`
MAX_PAGE_SIZE = 1000         # Anthropic's largest `limit`
CREATED_AT = "1970-01-01T00:00:00Z"  # no provider tells when it got a model; a fixed date is honest
OWNER = "anthropic-loadbalancer"


@dataclass(frozen=True)
class ListedModel:
    """One model clients may ask for, and the providers whose routes accept it."""

    id: str
    providers: tuple[str, ...]


def list_models(config: Config, reported: Mapping[str, tuple[str, ...]]) -> list[ListedModel]:
    """Exact configured names and reported models that some enabled provider serves, by id."""
    enabled = [provider for provider in config.providers if provider.enabled]
    candidates = {route.pattern for provider in enabled for route in provider.models if not route.is_glob}
    candidates.update(model for models in reported.values() for model in models)
    listed = []
    for model in sorted(candidates):
        serving = tuple(provider.name for provider in enabled if provider.model_for(model) is not None)
        if serving:
            listed.append(ListedModel(model, serving))
    return listed


def served_model(config: Config, models: list[ListedModel], model_id: str) -> ListedModel | None:
    """The listed model, or one a route accepts without listing it (a glob); None when no one serves it."""
    for model in models:
        if model.id == model_id:
            return model
    serving = tuple(provider.name for provider in config.providers
                    if provider.enabled and provider.model_for(model_id) is not None)
    return ListedModel(model_id, serving) if serving else None


def anthropic_model(model: ListedModel) -> dict:
    """Anthropic's model object, plus the providers that serve it."""
    return {"type": "model", "id": model.id, "display_name": model.id, "created_at": CREATED_AT,
            "providers": list(model.providers)}


def openai_model(model: ListedModel) -> dict:
    """OpenAI's model object, plus the providers that serve it."""
    return {"id": model.id, "object": "model", "created": 0, "owned_by": OWNER, "providers": list(model.providers)}


def anthropic_page(models: list[ListedModel], args: Mapping[str, str]) -> dict:
    """One page of Anthropic's list: `limit`, then the models after `after_id` or before `before_id`."""
    limit = _page_size(args.get("limit"))
    ids = [model.id for model in models]
    after_id, before_id = args.get("after_id"), args.get("before_id")
    if after_id and before_id:
        raise InvalidRequest("after_id and before_id cannot be used together")
    if before_id:
        end = _position(ids, before_id, "before_id")
        start = max(0, end - limit)
        page, has_more = models[start:end], start > 0
    else:
        start = _position(ids, after_id, "after_id") + 1 if after_id else 0
        page, has_more = models[start:start + limit], start + limit < len(models)
    return {"data": [anthropic_model(model) for model in page], "has_more": has_more,
            "first_id": page[0].id if page else None, "last_id": page[-1].id if page else None}


def _page_size(value: str | None) -> int:
    """`limit` as an int from 1 to MAX_PAGE_SIZE; DEFAULT_PAGE_SIZE when absent."""
    if value is None:
        return DEFAULT_PAGE_SIZE
    if not value.isdigit() or not 1 <= int(value) <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"limit: must be an integer from 1 to {MAX_PAGE_SIZE}, got {value!r}")
    return int(value)


def _position(ids: list[str], model_id: str, name: str) -> int:
    """Where a cursor id is in the list; a 400 when it is not listed."""
    try:
        return ids.index(model_id)
    except ValueError:
        raise InvalidRequest(f"{name}: {model_id!r} is not a listed model") from None


class ModelCatalog:
    """The model ids each provider reported, cached per worker.

    `probe(runtime, names)` asks those providers' listings now, in parallel
    (health.probe_listings), for providers the shared health monitor has no result for (it may
    be off: interval 0). Providers with a paid probe are never asked here: that costs tokens.
    """

    def __init__(self, probe: Callable[[Runtime, list[str]], dict[str, ProbeResult]],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._probe = probe
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[str, ...]]] = {}  # name -> (expires, models)
        self._lock = threading.Lock()

    def reported_models(self, runtime: Runtime, monitored: Mapping[str, ProbeResult]) -> dict[str, tuple[str, ...]]:
        """Model ids by enabled provider: the monitor's last probe, the cache, or a probe now."""
        for name, result in monitored.items():
            if name in runtime.clients and result.usable:
                self._remember(name, result)
        now = self._clock()
        with self._lock:
            missing = [name for name in runtime.clients
                       if (name not in self._cache or self._cache[name][0] <= now)
                       and not runtime.providers[name].config.health_paid_probe]
        if missing:
            for name, result in self._probe(runtime, missing).items():
                self._remember(name, result)
        with self._lock:
            return {name: self._cache[name][1] for name in runtime.clients if name in self._cache}

    def _remember(self, name: str, result: ProbeResult) -> None:
        lifetime = CACHE_SECONDS if result.usable else FAILED_PROBE_CACHE_SECONDS
        with self._lock:
            self._cache[name] = (self._clock() + lifetime, result.models if result.usable else ())
