"""The per-worker state built from one configuration, and its atomic replacement.

A `Runtime` bundles a validated `Config` with the balancer, the provider interface objects
and the pooled provider clients made from it, and the shared state store the balancer
writes to. Requests take `holder.current` once and keep it to the end, so a reload never
changes the configuration under a request in flight. The store outlives reloads that keep
the `state` section, so what the fleet knows about each provider is never forgotten.
"""

from __future__ import annotations

import enum
import logging
import threading
from dataclasses import dataclass
from typing import Callable, Iterator
from urllib.parse import urlsplit

from loadbalancer.routing.balancer import Balancer
from loadbalancer.routing.state import ProviderStateStore
from loadbalancer.routing.state.memory import MemoryStore
from loadbalancer.secrets import SecretScrubber
from loadbalancer.settings.changes import describe_changes
from loadbalancer.settings.records import Config, StateConfig
from loadbalancer.settings.validation import ConfigError
from loadbalancer.providers.base import Provider
from loadbalancer.providers.http_client import ProviderClient
from loadbalancer.providers.registry import build_provider

log = logging.getLogger("loadbalancer")

StoreOpener = Callable[[StateConfig], ProviderStateStore]


def memory_store(settings: StateConfig) -> ProviderStateStore:
    """A store of this process only (unit tests, runtimes built without an opener)."""
    return MemoryStore()


@dataclass(frozen=True)
class Runtime:
    """One configuration with its balancer, and per enabled provider its interface and client.

    `scrubber` removes every secret of this runtime (and of the one it replaced, whose
    requests may still be running) from whatever leaves the service.
    """

    config: Config
    balancer: Balancer
    clients: dict[str, ProviderClient]
    providers: dict[str, Provider]
    store: ProviderStateStore
    scrubber: SecretScrubber

    @classmethod
    def build(cls, config: Config, previous: "Runtime | None" = None,
              open_store: StoreOpener = memory_store) -> "Runtime":
        """A runtime for `config`, keeping provider state and sessions from `previous`."""
        if previous is not None and previous.config.state == config.state:
            store = previous.store
        else:
            store = open_store(config.state)
            store.start()
        balancer = Balancer(config.providers, config.routing, store=store)
        clients: dict[str, ProviderClient] = {}
        providers: dict[str, Provider] = {}
        for provider in config.providers:
            if not provider.enabled:
                continue
            old = previous.clients.get(provider.name) if previous else None
            if old is not None and old.provider == provider:
                # Unchanged: keep the pooled connections and whatever the provider cached.
                clients[provider.name] = old
                providers[provider.name] = previous.providers[provider.name]
            else:
                clients[provider.name] = ProviderClient(provider)
                providers[provider.name] = build_provider(provider)
        if previous is not None:
            balancer.carry_state_from(previous.balancer)
        retired = tuple(previous.own_secret_values()) if previous is not None else ()
        scrubber = SecretScrubber(_secret_source(config, providers, retired))
        return cls(config, balancer, clients, providers, store, scrubber)

    def builds_body_for(self, model: str) -> bool:
        """Whether every provider serving `model` builds the body whole (so read it whole at once)."""
        serving = self.balancer.serving(model)
        return bool(serving) and all(self.providers[provider.name].builds_body_for(model) for provider in serving)

    def own_secret_values(self) -> Iterator[str]:
        """Every secret of this configuration as it is now (not those of the one it replaced)."""
        return configured_secrets(self.config, self.providers)

    def retire(self, successor: "Runtime") -> None:
        """Close the sessions and the store the successor no longer uses (idle connections only)."""
        for name, client in self.clients.items():
            if successor.clients.get(name) is not client:
                client.close()
        if successor.store is not self.store:
            self.store.close()  # a request still finishing on it reopens what it needs


def _secret_source(config: Config, providers: dict[str, Provider], retired: tuple[str, ...]):
    """What the scrubber asks for its secrets: fixed ones gathered once, changing ones each time.

    Keys from the configuration never change while it runs, so the same tuple comes back
    (the scrubber then reuses its patterns at once); only provider types whose credentials
    are refreshed (cloud tokens) are asked again on every scrub.
    """
    changing = [provider for provider in providers.values() if provider.secrets_change]
    fixed = (*configured_secrets(config, {name: provider for name, provider in providers.items()
                                          if not provider.secrets_change}), *retired)
    if not changing:
        return lambda: fixed
    return lambda: (*fixed, *(value for provider in changing for value in provider.secret_values()))


def configured_secrets(config: Config, providers: dict[str, Provider]) -> Iterator[str]:
    """Client and operations keys, every provider's own secrets, and the header values of disabled providers."""
    for client in (*config.auth.api_keys, *config.auth.ops_keys):
        yield client.key
    for provider in providers.values():
        yield from provider.secret_values()
    for provider in config.providers:
        yield from (value for _, value in provider.headers)
    if config.state.redis_url:
        yield from redis_url_secrets(config.state.redis_url)


def redis_url_secrets(url: str) -> Iterator[str]:
    """The Redis URL itself and its password, which no log line or answer may carry."""
    yield url
    password = urlsplit(url).password
    if password:
        yield password


class ReloadOutcome(enum.Enum):
    """What a reload did with the file it read."""

    APPLIED = "applied"
    UNCHANGED = "valid, nothing changed"
    REJECTED = "unreadable or invalid: the running configuration stays"


class RuntimeHolder:
    """Holds the current runtime; swaps it atomically on reload.

    `loader` reads and validates a providers file (`config.load_config`); it is passed in
    because the file format belongs to the top-level `config.py`, above this package.
    `open_store` opens the state store a new `state` section names.
    """

    def __init__(self, runtime: Runtime, loader: Callable[[str], Config],
                 open_store: StoreOpener = memory_store) -> None:
        self._runtime = runtime
        self._loader = loader
        self._open_store = open_store
        self._lock = threading.Lock()
        # Told True or False after every reload attempt (the config_last_reload_* metrics).
        self.reload_listeners: list[Callable[[bool], None]] = []

    @property
    def current(self) -> Runtime:
        """The runtime new requests use."""
        return self._runtime

    def reload(self, path: str) -> bool:
        """Re-read `path`; apply it if valid, else keep the old one. True when applied."""
        return self.try_reload(path) is ReloadOutcome.APPLIED

    def try_reload(self, path: str, *, log_rejection: bool = True) -> ReloadOutcome:
        """Re-read `path` and apply it if valid and different; say which of the three happened."""
        with self._lock:
            old = self._runtime
            try:
                config = self._loader(path)
            except ConfigError as err:
                if log_rejection:
                    log.error("config reload rejected, keeping the running configuration: %s", err)
                self._tell_listeners(False)
                return ReloadOutcome.REJECTED
            self._tell_listeners(True)
            changes = describe_changes(old.config, config)
            if not changes:
                return ReloadOutcome.UNCHANGED
            new = Runtime.build(config, previous=old, open_store=self._open_store)
            self._runtime = new
            log.info("config reloaded from %s: %s", path, "; ".join(changes))
            old.retire(new)
            return ReloadOutcome.APPLIED

    def _tell_listeners(self, success: bool) -> None:
        for listener in self.reload_listeners:
            listener(success)
