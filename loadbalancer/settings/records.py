"""The validated configuration as frozen dataclasses, and their defaults.

`config.py` builds these from `providers.json`; every other module only reads them.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from loadbalancer.settings.validation import is_glob

ROUTING_STRATEGIES = ("priority", "weighted", "least_busy", "latency")
# Earlier turns' thinking sent back to an OpenAI-compatible backend as `reasoning_content`:
# "auto" on assistant turns with tool calls (DeepSeek thinking mode and Kimi K2 Thinking answer
# 400 without it; elsewhere it is ignored), "send" on every assistant turn, "drop" never.
REASONING_CONTENT_MODES = ("auto", "send", "drop")
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 300.0
DEFAULT_IDLE_TIMEOUT = 60.0
# A stream's headers and first event come after the provider queued and prefilled the prompt:
# a few seconds normally, tens of seconds for a 200k-token prompt on a busy provider, and
# OpenRouter-style proxies send keep-alive comments meanwhile. 60 s covers those starts with
# room to spare, yet a provider that accepts the connection and says nothing is left after a
# minute instead of the 300 s read timeout, when G3 would already have given up.
DEFAULT_FIRST_BYTE_TIMEOUT = 60.0
# A non-stream answer arrives whole after the generation: 32k tokens at ~50 tokens/s take
# ~10 minutes, the longest Anthropic's SDKs allow a non-stream request.
DEFAULT_TOTAL_TIMEOUT = 600.0
DEFAULT_MAX_TOOL_NAME_LENGTH = 64  # OpenAI's limit on function names
# A shortened tool name keeps a readable prefix plus an 8-character hash; less leaves no prefix.
MIN_TOOL_NAME_LENGTH = 16
# The load balancer sets these itself; a configured value would leak or break the request.
RESERVED_HEADERS = frozenset({
    "x-api-key", "authorization", "host", "content-length", "connection", "transfer-encoding",
})


@dataclass(frozen=True)
class Timeout:
    """Per-provider timeouts in seconds."""

    connect: float = DEFAULT_CONNECT_TIMEOUT  # to open the TCP/TLS connection
    read: float = DEFAULT_READ_TIMEOUT        # the longest any single wait for data may take
    idle: float = DEFAULT_IDLE_TIMEOUT        # allowed between two chunks of a started stream
    first_byte: float = DEFAULT_FIRST_BYTE_TIMEOUT  # a stream's headers, then its first body byte
    total: float = DEFAULT_TOTAL_TIMEOUT      # a whole non-stream answer, headers to last byte

    @property
    def stream_start(self) -> float:
        """How long a stream may wait for its headers, and then for its first body byte."""
        return min(self.first_byte, self.read)


@dataclass(frozen=True)
class ModelRoute:
    """One `models` entry: a requested name or glob and the provider's model name."""

    pattern: str  # exact model name or fnmatch glob ("claude-*", "*")
    target: str   # the provider's model name; "" or "*" means "same as requested"

    @cached_property
    def is_glob(self) -> bool:
        """Whether the pattern is a glob rather than an exact model name (asked on every request)."""
        return is_glob(self.pattern)

    def resolve(self, requested: str) -> str:
        """The model name to send upstream for a request this route matched."""
        return requested if self.target in ("", "*") else self.target


@dataclass(frozen=True)
class Capabilities:
    """What a provider's models can take; None means no known limit."""

    max_context_tokens: int | None = None
    max_output_tokens: int | None = None
    images: bool = True
    thinking: bool = True


@dataclass(frozen=True)
class ProviderConfig:
    """One backend as configured; `api_key` is None when the provider is disabled."""

    name: str
    type: str  # a key of providers.registry.PROVIDER_TYPES
    base_url: str  # normalised: no trailing "/", no endpoint suffix
    api_key: str | None = field(repr=False)  # "" means "send no key"
    models: tuple[ModelRoute, ...] = ()  # empty: serves every model unchanged
    priority: int = 1  # lower is tried first
    weight: int = 1  # > 0; share within a priority
    timeout: Timeout = Timeout()
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)  # may hold secrets
    tool_calls: str = "auto"  # "auto", "off", or a format name
    capabilities: Capabilities = Capabilities()
    max_tool_name_length: int = DEFAULT_MAX_TOOL_NAME_LENGTH
    reasoning_content: str = "auto"  # one of REASONING_CONTENT_MODES (openai providers)
    health_path: str | None = None  # None: the provider type's default probe
    health_paid_probe: bool = False  # opt in to a 1-token completion as health probe
    disabled_reason: str | None = None
    # The type's own keys (Provider.parse_options): a frozen dataclass whose secrets have repr=False.
    options: Any = None

    @property
    def enabled(self) -> bool:
        """Whether requests may be sent to this provider."""
        return self.disabled_reason is None

    def model_for(self, requested: str) -> str | None:
        """The provider's model name for `requested`, or None when this provider does not serve it."""
        if not self.models:
            return requested
        for route in self.models:
            if not route.is_glob and route.pattern == requested:
                return route.resolve(requested)
        for route in self.models:
            if route.is_glob and fnmatch.fnmatchcase(requested, route.pattern):
                return route.resolve(requested)
        return None


@dataclass(frozen=True)
class ClientKey:
    """An inbound API key; `name` is shown in logs and metrics, never `key`."""

    name: str
    key: str = field(repr=False)
    requests_per_minute: int | None = None


@dataclass(frozen=True)
class AuthConfig:
    """Inbound authentication; no keys means no inbound auth."""

    api_keys: tuple[ClientKey, ...] = ()
    ops_keys: tuple[ClientKey, ...] = ()  # may read /metrics, /status.json and run live probes only

    @property
    def protects_operations(self) -> bool:
        """Whether /metrics, /status.json, the status page and live probes need a key."""
        return bool(self.api_keys or self.ops_keys)


@dataclass(frozen=True)
class RoutingConfig:
    """How requests are spread over providers and when a failing one is skipped."""

    strategy: str = "priority"  # "priority" | "weighted" | "least_busy" | "latency"
    affinity: bool = True  # conversation affinity on/off
    affinity_ttl: float = 300.0  # accepted for older files; unused: rendezvous hashing keeps no pins
    max_attempts: int = 4  # attempts per request across providers and retries
    deadline: float = 600.0  # seconds a request may spend before its first byte to the client
    cooldown: float = 10.0  # base cooldown after a failure; grows with consecutive failures
    max_cooldown: float = 300.0
    failure_threshold: int = 3  # consecutive failures that open the circuit breaker
    wait_for_cooldown: float = 15.0  # when every eligible provider cools down, wait this long


@dataclass(frozen=True)
class LimitsConfig:
    """Caps on what a client may send."""

    max_body_bytes: int = 32 * 1024 * 1024  # Anthropic's own Messages request limit is 32 MB
    max_messages: int = 100_000
    max_header_bytes: int = 64 * 1024


@dataclass(frozen=True)
class HealthConfig:
    """The background health monitor; interval 0 disables it."""

    interval: float = 30.0
    timeout: float = 5.0


DEFAULT_STATE_PREFIX = "anthropic-lb"


@dataclass(frozen=True)
class StateConfig:
    """Where provider state is shared: the state directory (no Redis), or Redis for several instances."""

    redis_url: str | None = field(default=None, repr=False)  # may carry a password
    prefix: str = DEFAULT_STATE_PREFIX  # namespace of every key (a Redis Cluster hash tag)


@dataclass(frozen=True)
class Config:
    """The whole validated configuration."""

    providers: tuple[ProviderConfig, ...]
    auth: AuthConfig = AuthConfig()
    routing: RoutingConfig = RoutingConfig()
    limits: LimitsConfig = LimitsConfig()
    health: HealthConfig = HealthConfig()
    state: StateConfig = StateConfig()
    source: str = ""  # the file it came from

    def provider(self, name: str) -> ProviderConfig:
        """The provider with this name; KeyError when there is none."""
        for provider in self.providers:
            if provider.name == name:
                return provider
        raise KeyError(name)

    def model_names(self) -> list[str]:
        """Sorted distinct model names clients may ask for: exact patterns of enabled providers."""
        return sorted({route.pattern for provider in self.providers if provider.enabled
                       for route in provider.models if not route.is_glob})
