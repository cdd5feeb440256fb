"""Loads and validates `providers.json` once into frozen dataclasses.

Every problem is a `ConfigError` naming the file, the JSON path and what is wrong. A provider
whose `${VAR}` is unset is kept but disabled, so the service starts with whatever keys exist;
an unset inbound auth key is an error, because a missing one would silently open the door.
"""

from __future__ import annotations

import functools
import os
import re
from typing import Any, Mapping
from urllib.parse import urlsplit

from loadbalancer.settings.validation import (
    ConfigError, Location, MissingVariable, bare_variable_warnings, check_glob,
    check_http_url, check_keys, expect_bool, expect_choice, expect_int, expect_list,
    expect_number, expect_object, expect_str, is_glob, non_negative_number,
    optional_member, optional_positive_int, parse_header_map, parse_record, positive_int,
    read_json_file, referenced_variables, substitute_or_fail, substitute_variables,
)

__all__ = [
    "AuthConfig", "Capabilities", "ClientKey", "Config", "ConfigError", "HealthConfig",
    "LimitsConfig", "ModelRoute", "ProviderConfig", "RoutingConfig", "StateConfig", "Timeout",
    "describe_changes", "inspect_config", "load_config", "parse_config",
]

from loadbalancer.providers.registry import PROVIDER_TYPES, provider_type
from loadbalancer.settings.changes import describe_changes  # noqa: F401  (re-exported)
from loadbalancer.settings.records import (  # noqa: F401  (re-exported: modules import records from config)
    AuthConfig, Capabilities, ClientKey, Config, HealthConfig, LimitsConfig, ModelRoute, ProviderConfig, RoutingConfig, StateConfig, Timeout, ROUTING_STRATEGIES, DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_TOTAL_TIMEOUT, DEFAULT_MAX_TOOL_NAME_LENGTH, MIN_TOOL_NAME_LENGTH, REASONING_CONTENT_MODES, RESERVED_HEADERS,
)


def load_config(path: str | os.PathLike, environ: Mapping[str, str] | None = None) -> Config:
    """Read, substitute ${VAR}, validate; raise ConfigError on the first problem.

    :raises ConfigError: the file is missing, unreadable, not JSON or not a valid configuration.
    """
    source = os.fspath(path)
    data = read_json_file(source)
    return parse_config(data, source, environ)


def inspect_config(path: str | os.PathLike,
                   environ: Mapping[str, str] | None = None) -> tuple[Config, list[str]]:
    """Like load_config, plus warnings about what is valid but surely not what was meant.

    :raises ConfigError: as load_config.
    """
    source = os.fspath(path)
    data = read_json_file(source)
    return parse_config(data, source, environ), bare_variable_warnings(data, Location(source))


def parse_config(data: object, source: str, environ: Mapping[str, str] | None = None) -> Config:
    """Validate already-decoded JSON (used by load_config and by tests)."""
    environment = os.environ if environ is None else environ
    where = Location(source)
    top = expect_object(data, where)
    check_keys(top, where, ("providers", "auth", "routing", "limits", "health", "state"),
               required=("providers",))
    sections = {name: substitute_or_fail(top.get(name, {}), where.key(name), environment)
                for name in ("auth", "routing", "limits", "health", "state")}
    return Config(
        providers=_parse_providers(top["providers"], where.key("providers"), environment),
        auth=_parse_auth(sections["auth"], where.key("auth")),
        routing=_parse_routing(sections["routing"], where.key("routing")),
        limits=_parse_limits(sections["limits"], where.key("limits")),
        health=_parse_health(sections["health"], where.key("health")),
        state=_parse_state(sections["state"], where.key("state")),
        source=source,
    )


# --- providers -------------------------------------------------------------------------------

PROVIDER_NAME_MAX_BYTES = 64
MAX_PROVIDERS = 64
REDIS_SCHEMES = ("redis", "rediss", "unix")
_STATE_PREFIX = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
TIMEOUT_KEYS = ("connect", "read", "idle", "first_byte", "total")
_PROVIDER_KEYS = (
    "name", "type", "base_url", "api_key", "models", "priority", "weight", "timeout", "headers",
    "tool_calls", "capabilities", "max_tool_name_length", "reasoning_content", "health",
)


def _parse_providers(value: object, where: Location,
                     environ: Mapping[str, str]) -> tuple[ProviderConfig, ...]:
    """Every provider entry, in file order; names must be unique."""
    entries = expect_list(value, where)
    if not entries:
        raise where.error("at least one provider is required")
    if len(entries) > MAX_PROVIDERS:
        # The embedded state holds a fixed number of provider records (routing/state/embedded.py).
        raise where.error(f"at most {MAX_PROVIDERS} providers, got {len(entries)}")
    providers: list[ProviderConfig] = []
    for position, entry in enumerate(entries):
        provider = _parse_provider(entry, where.index(position), environ)
        if any(earlier.name == provider.name for earlier in providers):
            raise where.index(position).key("name").error(
                f"duplicate provider name {provider.name!r}")
        providers.append(provider)
    return tuple(providers)


def _parse_provider(value: object, where: Location, environ: Mapping[str, str]) -> ProviderConfig:
    """One provider entry; unset variables disable it but the rest is still checked."""
    raw = expect_object(value, where)
    check_keys(raw, where, _PROVIDER_KEYS + _option_keys_of(raw.get("type")), required=("name", "type"))
    type_name = expect_choice(raw["type"], where.key("type"), PROVIDER_TYPES, "provider type")
    kind = provider_type(type_name)
    missing: list[MissingVariable] = []
    entry = substitute_variables(raw, where, environ, missing)
    name = expect_str(entry["name"], where.key("name"), non_empty=True)
    if len(name.encode()) > PROVIDER_NAME_MAX_BYTES:
        # The name is the provider's key in the shared state (a fixed-size record when embedded).
        raise where.key("name").error(f"a provider name is at most {PROVIDER_NAME_MAX_BYTES} bytes")
    api_key, disabled_reason = _parse_credentials(kind.credential_keys, raw, entry, where, missing)
    health_path, paid_probe = _parse_provider_health(entry.get("health", {}), where.key("health"))
    options = kind.parse_options(entry, where)
    return ProviderConfig(
        name=name,
        type=type_name,
        base_url=_parse_base_url(entry, type_name, kind.default_base_url(options), where),
        api_key=api_key,
        models=optional_member(entry, where, "models", (), _parse_models),
        priority=optional_member(entry, where, "priority", 1, expect_int),
        weight=optional_member(entry, where, "weight", 1, positive_int),
        timeout=parse_record(Timeout, entry.get("timeout", {}), where.key("timeout"),
                             dict.fromkeys(TIMEOUT_KEYS, expect_number)),
        headers=optional_member(entry, where, "headers", (), _parse_headers),
        tool_calls=optional_member(entry, where, "tool_calls", "auto", _check_tool_calls),
        capabilities=parse_record(Capabilities, entry.get("capabilities", {}),
                                  where.key("capabilities"), _CAPABILITY_CHECKS),
        max_tool_name_length=optional_member(entry, where, "max_tool_name_length",
                                             DEFAULT_MAX_TOOL_NAME_LENGTH, _check_name_length),
        reasoning_content=optional_member(entry, where, "reasoning_content", "auto", _check_reasoning_content),
        health_path=health_path,
        health_paid_probe=paid_probe,
        disabled_reason=disabled_reason,
        options=options,
    )


def _option_keys_of(type_name: object) -> tuple[str, ...]:
    """The keys only providers of this type have (none for an unknown type)."""
    kind = PROVIDER_TYPES.get(type_name) if isinstance(type_name, str) else None
    return kind.option_keys if kind is not None else ()


def _parse_base_url(entry: Mapping[str, Any], type_name: str, default: str | None,
                    where: Location) -> str:
    """The configured base URL, or the type's default endpoint when it has one."""
    if "base_url" not in entry:
        if default is None:
            raise where.key("base_url").error("required key is missing")
        return default
    return normalise_base_url(expect_str(entry["base_url"], where.key("base_url")),
                              type_name, where.key("base_url"))


def _parse_credentials(credential_keys: tuple[str, ...], raw: Mapping[str, Any],
                       entry: Mapping[str, Any], where: Location,
                       missing: list[MissingVariable]) -> tuple[str | None, str | None]:
    """The provider's key and why it is disabled (None when enabled)."""
    # Keys pasted from files often carry a newline, which no HTTP header may contain.
    key = expect_str(entry.get("api_key", ""), where.key("api_key")).strip()
    if missing:
        names = list(dict.fromkeys(variable.name for variable in missing))
        return None, _variables_reason(names, "not set")
    empty = [variable for name in credential_keys if isinstance(raw.get(name), str)
             and not str(entry.get(name, "")).strip()
             for variable in referenced_variables(raw[name])]
    if empty:
        return None, _variables_reason(list(dict.fromkeys(empty)), "empty")
    return key, None


def _variables_reason(names: list[str], state: str) -> str:
    """Why a provider is disabled, naming the variables."""
    if len(names) == 1:
        return f"environment variable {names[0]} is {state}"
    return f"environment variables {', '.join(names)} are {state}"


def normalise_base_url(url: str, type_name: str, where: Location) -> str:
    """The URL without trailing "/" or the endpoint suffix clients often paste along."""
    url = url.strip()
    check_http_url(url, where)
    normalised = url.rstrip("/")
    for suffix in provider_type(type_name).base_url_suffixes:
        if normalised.endswith(suffix):
            return normalised[: -len(suffix)].rstrip("/")
    return normalised


def _parse_models(value: object, where: Location) -> tuple[ModelRoute, ...]:
    """`models` as an object (pattern → target) or a list of names served unchanged."""
    if isinstance(value, list):
        entries = [(expect_str(item, where.index(position)), "*", where.index(position))
                   for position, item in enumerate(value)]
    elif isinstance(value, dict):
        entries = [(pattern, expect_str(target, where.quoted_key(pattern)),
                    where.quoted_key(pattern)) for pattern, target in value.items()]
    else:
        raise where.error("expected an object (pattern → model) or an array of model names")
    routes: list[ModelRoute] = []
    for pattern, target, location in entries:
        check_glob(pattern, location)
        if target not in ("", "*") and is_glob(target):
            raise location.error(
                f"target {target!r} must be a model name, or \"*\" for the requested one")
        if any(route.pattern == pattern for route in routes):
            raise location.error(f"duplicate model pattern {pattern!r}")
        routes.append(ModelRoute(pattern, target))
    return tuple(routes)


_parse_headers = functools.partial(parse_header_map, reserved=RESERVED_HEADERS)
def _check_tool_calls(value: object, where: Location) -> str:
    """`tool_calls`: "auto", "off" or a format name."""
    text = expect_str(value, where)
    from loadbalancer.toolcalls.parser import FORMATS  # the parser owns the list of format names
    if text not in ("auto", "off") and text not in FORMATS:
        raise where.error(f"expected \"auto\", \"off\" or one of {', '.join(sorted(FORMATS))}; "
                          f"got {text!r}")
    return text


_check_name_length = functools.partial(expect_int, minimum=MIN_TOOL_NAME_LENGTH)
_check_reasoning_content = functools.partial(expect_choice, allowed=REASONING_CONTENT_MODES,
                                             what="reasoning_content mode")
_CAPABILITY_CHECKS = {
    "max_context_tokens": optional_positive_int,
    "max_output_tokens": optional_positive_int,
    "images": expect_bool,
    "thinking": expect_bool,
}


def _parse_provider_health(value: object, where: Location) -> tuple[str | None, bool]:
    """The provider's `health` object: probe path and whether a paid probe is allowed."""
    obj = expect_object(value, where)
    check_keys(obj, where, ("path", "paid_probe"))
    path = optional_member(obj, where, "path", None, expect_str)
    if path is not None and not path.startswith("/"):
        raise where.key("path").error(f"a health path must start with \"/\", got {path!r}")
    return path, optional_member(obj, where, "paid_probe", False, expect_bool)


# --- other sections --------------------------------------------------------------------------

def _parse_auth(value: object, where: Location) -> AuthConfig:
    """Inbound keys: client keys (`api_keys`) and operations keys (`ops_keys`)."""
    obj = expect_object(value, where)
    check_keys(obj, where, ("api_keys", "ops_keys"))
    api_keys = _parse_key_list(obj, where, "api_keys", "client", ("name", "key", "requests_per_minute"))
    ops_keys = _parse_key_list(obj, where, "ops_keys", "ops", ("name", "key"))
    for position, ops_key in enumerate(ops_keys):
        if any(client.key == ops_key.key for client in api_keys):
            raise where.key("ops_keys").index(position).error("this key is also a client key in api_keys")
    return AuthConfig(api_keys=api_keys, ops_keys=ops_keys)


def _parse_key_list(obj: Mapping[str, Any], where: Location, member: str, prefix: str,
                    allowed: tuple[str, ...]) -> tuple[ClientKey, ...]:
    """One list of inbound keys: plain strings or objects; names and keys unique."""
    items = optional_member(obj, where, member, [], expect_list)
    keys: list[ClientKey] = []
    for position, item in enumerate(items):
        location = where.key(member).index(position)
        client = _parse_client_key(item, location, f"{prefix}-{position + 1}", allowed)
        if any(earlier.name == client.name for earlier in keys):
            raise location.error(f"duplicate {prefix} key name {client.name!r}")
        if any(earlier.key == client.key for earlier in keys):
            raise location.error("the same key is listed twice")
        keys.append(client)
    return tuple(keys)


def _parse_client_key(value: object, where: Location, default_name: str,
                      allowed: tuple[str, ...]) -> ClientKey:
    """One key item; its name defaults to client-N (ops-N) by position."""
    if isinstance(value, str):
        key, key_location, name, limit = value, where, default_name, None
    elif isinstance(value, dict):
        check_keys(value, where, allowed, required=("key",))
        key_location = where.key("key")
        key = expect_str(value["key"], key_location)
        name = optional_member(value, where, "name", default_name,
                               functools.partial(expect_str, non_empty=True))
        limit = optional_member(value, where, "requests_per_minute", None,
                                optional_positive_int)
    else:
        raise where.error("expected a key string or an object with \"key\"")
    if not key.strip():
        raise key_location.error("a key must not be empty")
    return ClientKey(name=name, key=key.strip(), requests_per_minute=limit)


_ROUTING_CHECKS = {
    "strategy": functools.partial(expect_choice, allowed=ROUTING_STRATEGIES, what="strategy"),
    "affinity": expect_bool,
    "affinity_ttl": expect_number,
    "max_attempts": positive_int,
    "deadline": expect_number,
    "cooldown": non_negative_number,
    "max_cooldown": non_negative_number,
    "failure_threshold": positive_int,
    "wait_for_cooldown": non_negative_number,
}


def _parse_routing(value: object, where: Location) -> RoutingConfig:
    """The routing section; max_cooldown may not undercut cooldown."""
    routing = parse_record(RoutingConfig, value, where, _ROUTING_CHECKS)
    if routing.max_cooldown < routing.cooldown:
        raise where.key("max_cooldown").error(
            f"must be at least cooldown ({routing.cooldown}), got {routing.max_cooldown}")
    return routing


def _parse_limits(value: object, where: Location) -> LimitsConfig:
    """The limits section: positive integers only."""
    names = ("max_body_bytes", "max_messages", "max_header_bytes")
    return parse_record(LimitsConfig, value, where, dict.fromkeys(names, positive_int))


def _parse_health(value: object, where: Location) -> HealthConfig:
    """The health monitor section."""
    checks = {"interval": non_negative_number, "timeout": expect_number}
    return parse_record(HealthConfig, value, where, checks)


def _parse_state(value: object, where: Location) -> StateConfig:
    """Where provider state is shared: absent or without redis_url, the state directory."""
    obj = expect_object(value, where)
    check_keys(obj, where, ("redis_url", "prefix"))
    url = optional_member(obj, where, "redis_url", None, _check_redis_url)
    prefix = optional_member(obj, where, "prefix", StateConfig.prefix, expect_str)
    if not _STATE_PREFIX.match(prefix):
        raise where.key("prefix").error(
            "a prefix is 1 to 64 of the characters A-Z a-z 0-9 _ . : - (it names every Redis key)")
    return StateConfig(redis_url=url, prefix=prefix)


def _check_redis_url(value: object, where: Location) -> str:
    """redis://[:password@]host[:port][/db], rediss://... or unix:///path; never echoed (it may hold a password)."""
    url = expect_str(value, where).strip()
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError as err:
        raise where.error("not a valid Redis URL (invalid port)") from err
    if parts.scheme not in REDIS_SCHEMES:
        raise where.error(f"a Redis URL starts with {', '.join(s + '://' for s in REDIS_SCHEMES)}")
    if parts.scheme == "unix" and not parts.path:
        raise where.error("a unix:// Redis URL needs the socket's path, e.g. unix:///run/redis.sock")
    if parts.scheme != "unix" and not parts.hostname:
        raise where.error("a Redis URL needs a host, e.g. redis://127.0.0.1:6379/0")
    database = parts.path.lstrip("/")
    if parts.scheme != "unix" and database and not database.isdigit():
        raise where.error("the path of a Redis URL is the database number, e.g. /0")
    return url
