"""The providers.json contract: defaults, ${VAR} substitution, normalisation, routing of model
names, every validation error with its JSON path, and the shipped example file."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from loadbalancer.client_request import parse_messages_request
from loadbalancer.providers.registry import build_provider
from config import (
    AuthConfig, Capabilities, ClientKey, Config, ConfigError, HealthConfig, LimitsConfig,
    ModelRoute, ProviderConfig, RoutingConfig, Timeout, describe_changes, load_config,
    parse_config,
)

SHIPPED_FILE = Path(__file__).resolve().parent.parent / "providers.json"


def provider(**overrides: Any) -> dict[str, Any]:
    """A minimal valid provider entry."""
    return {"name": "main", "type": "anthropic", "base_url": "https://api.example.com",
            "api_key": "sk-literal", **overrides}


def document(*providers: dict[str, Any], **sections: Any) -> dict[str, Any]:
    """A whole providers.json; one minimal provider when none is given."""
    return {"providers": list(providers) or [provider()], **sections}


def parse(data: object, environ: dict[str, str] | None = None) -> Config:
    return parse_config(data, "providers.json", environ or {})


def parse_provider(environ: dict[str, str] | None = None, **overrides: Any) -> ProviderConfig:
    return parse(document(provider(**overrides)), environ).providers[0]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.json"
    path.write_text(text, encoding="utf-8")
    return path


# --- valid files and defaults ------------------------------------------------------------------

def test_minimal_file_loads_with_every_default(tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps(document()))
    config = load_config(path, environ={})
    assert config == Config(
        providers=(ProviderConfig(name="main", type="anthropic",
                                  base_url="https://api.example.com", api_key="sk-literal"),),
        source=str(path),
    )
    only = config.providers[0]
    assert only.enabled and only.disabled_reason is None
    assert (only.models, only.priority, only.weight, only.tool_calls) == ((), 1, 1, "auto")
    assert only.timeout == Timeout(connect=5.0, read=300.0, idle=60.0, first_byte=60.0, total=600.0)
    assert only.capabilities == Capabilities(None, None, True, True)
    assert (only.max_tool_name_length, only.health_path, only.health_paid_probe) == (64, None, False)
    assert only.reasoning_content == "auto"
    assert config.auth == AuthConfig(api_keys=())
    assert config.routing == RoutingConfig("priority", True, 300.0, 4, 600.0, 10.0, 300.0, 3, 15.0)
    assert config.limits == LimitsConfig(32 * 1024 * 1024, 100_000, 64 * 1024)
    assert config.health == HealthConfig(30.0, 5.0)


def test_every_field_is_read() -> None:
    entry = provider(
        type="openai", base_url="http://127.0.0.1:8000/v1", models={"big": "qwen", "claude-*": "*"},
        priority=2, weight=3, timeout={"connect": 1, "read": 2.5, "idle": 3, "first_byte": 4, "total": 5},
        headers={"X-Title": "lb", "anthropic-beta": "a,b"}, tool_calls="hermes",
        capabilities={"max_context_tokens": 1000, "max_output_tokens": 100, "images": False,
                      "thinking": False},
        max_tool_name_length=40, reasoning_content="send", health={"path": "/health", "paid_probe": True})
    config = parse(document(
        entry,
        auth={"api_keys": ["k1", {"name": "g3", "key": "k2", "requests_per_minute": 600}]},
        routing={"strategy": "latency", "affinity": False, "affinity_ttl": 60, "max_attempts": 2,
                 "deadline": 30, "cooldown": 0, "max_cooldown": 5, "failure_threshold": 1,
                 "wait_for_cooldown": 0},
        limits={"max_body_bytes": 10, "max_messages": 20, "max_header_bytes": 30},
        health={"interval": 0, "timeout": 1.5}))
    assert config.providers[0] == ProviderConfig(
        name="main", type="openai", base_url="http://127.0.0.1:8000/v1", api_key="sk-literal",
        models=(ModelRoute("big", "qwen"), ModelRoute("claude-*", "*")), priority=2, weight=3,
        timeout=Timeout(1.0, 2.5, 3.0, 4.0, 5.0), headers=(("X-Title", "lb"), ("anthropic-beta", "a,b")),
        tool_calls="hermes", capabilities=Capabilities(1000, 100, False, False),
        max_tool_name_length=40, reasoning_content="send", health_path="/health", health_paid_probe=True)
    assert config.auth.api_keys == (ClientKey("client-1", "k1"), ClientKey("g3", "k2", 600))
    assert config.routing == RoutingConfig("latency", False, 60.0, 2, 30.0, 0.0, 5.0, 1, 0.0)
    assert config.limits == LimitsConfig(10, 20, 30)
    assert config.health == HealthConfig(0.0, 1.5)


def test_keys_never_appear_in_repr() -> None:
    config = parse(document(provider(api_key="sk-secret-provider", headers={"x-extra": "hdr-secret"}),
                            auth={"api_keys": ["client-secret"]}))
    text = repr(config)
    assert "sk-secret-provider" not in text
    assert "client-secret" not in text
    assert "hdr-secret" not in text


# --- ${VAR} substitution --------------------------------------------------------------------

@pytest.mark.parametrize("overrides, attribute, expected", [
    ({"name": "${N}"}, "name", "from-env"),
    ({"base_url": "https://${N}.example.com/v1"}, "base_url", "https://from-env.example.com"),
    ({"api_key": "${N}"}, "api_key", "from-env"),
    ({"api_key": "prefix-${N}-${M}"}, "api_key", "prefix-from-env-second"),
    ({"models": {"claude-x": "${N}"}}, "models", (ModelRoute("claude-x", "from-env"),)),
    ({"models": ["${N}"]}, "models", (ModelRoute("from-env", "*"),)),
    ({"headers": {"x-extra": "${N}"}}, "headers", (("x-extra", "from-env"),)),
    ({"health": {"path": "/${N}"}}, "health_path", "/from-env"),
])
def test_variables_are_substituted_in_provider_strings(overrides: dict, attribute: str,
                                                       expected: object) -> None:
    entry = parse_provider({"N": "from-env", "M": "second"}, **overrides)
    assert getattr(entry, attribute) == expected
    assert entry.enabled


@pytest.mark.parametrize("section, expected", [
    ({"auth": {"api_keys": ["${N}"]}}, lambda c: c.auth.api_keys[0].key == "from-env"),
    ({"auth": {"api_keys": [{"name": "${M}", "key": "k"}]}}, lambda c: c.auth.api_keys[0].name == "second"),
    ({"routing": {"strategy": "${S}"}}, lambda c: c.routing.strategy == "weighted"),
])
def test_variables_are_substituted_in_other_sections(section: dict, expected: Any) -> None:
    config = parse(document(**section), {"N": "from-env", "M": "second", "S": "weighted"})
    assert expected(config)


@pytest.mark.parametrize("state, url, prefix", [
    ({}, None, "anthropic-lb"),
    ({"redis_url": "redis://:${PW}@redis.internal:6379/2"}, "redis://:s3cret@redis.internal:6379/2", "anthropic-lb"),
    ({"redis_url": "rediss://redis.internal", "prefix": "team-a:lb"}, "rediss://redis.internal", "team-a:lb"),
    ({"redis_url": "unix:///run/redis/redis.sock"}, "unix:///run/redis/redis.sock", "anthropic-lb"),
])
def test_the_state_section_names_where_provider_state_is_shared(state: dict, url: str | None,
                                                                 prefix: str) -> None:
    config = parse(document(state=state), {"PW": "s3cret"})
    assert (config.state.redis_url, config.state.prefix) == (url, prefix)
    assert "s3cret" not in repr(config)


def test_a_redis_url_is_never_echoed_in_its_error() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document(state={"redis_url": "redis://:hunter2@h:99999/0"}))
    assert "hunter2" not in str(caught.value)


def test_a_literal_dollar_without_braces_is_kept() -> None:
    assert parse_provider(api_key="sk-$N-$").api_key == "sk-$N-$"


@pytest.mark.parametrize("overrides, environ, reason", [
    ({"api_key": "${KEY}"}, {}, "environment variable KEY is not set"),
    ({"api_key": "${KEY}"}, {"KEY": ""}, "environment variable KEY is empty"),
    ({"api_key": "${KEY}"}, {"KEY": "  \n"}, "environment variable KEY is empty"),
    ({"base_url": "https://${HOST}/v1"}, {}, "environment variable HOST is not set"),
    ({"api_key": "${A}${B}", "headers": {"x-extra": "${C}"}}, {"B": "b"},
     "environment variables A, C are not set"),
])
def test_provider_is_disabled_when_a_variable_is_unset_or_empty(
        overrides: dict, environ: dict, reason: str) -> None:
    config = parse(document(provider(**overrides), provider(name="other")), environ)
    disabled = config.provider("main")
    assert disabled.api_key is None
    assert disabled.disabled_reason == reason
    assert not disabled.enabled
    assert config.provider("other").enabled


def test_a_disabled_provider_is_still_validated() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(document(provider(api_key="${UNSET}", weight=0)))
    assert caught.value.json_path == "providers[0].weight"


def test_os_environ_is_the_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_TEST_CONFIG_KEY", "sk-from-os")
    config = parse_config(document(provider(api_key="${LB_TEST_CONFIG_KEY}")), "p.json")
    assert config.providers[0].api_key == "sk-from-os"


@pytest.mark.parametrize("overrides, api_key", [
    ({}, "sk-literal"),
    ({"api_key": ""}, ""),
    ({"api_key": "sk-with-newline\n"}, "sk-with-newline"),
])
def test_keys_without_variables(overrides: dict, api_key: str) -> None:
    entry = parse_provider(**overrides)
    assert entry.api_key == api_key
    assert entry.enabled


@pytest.mark.parametrize("provider_type", ["anthropic", "openai"])
def test_a_provider_may_have_no_api_key(provider_type: str) -> None:
    entry = provider(type=provider_type)
    del entry["api_key"]
    parsed = parse(document(entry)).providers[0]
    assert parsed.api_key == ""
    assert parsed.enabled


# --- base_url -------------------------------------------------------------------------------

@pytest.mark.parametrize("provider_type, given, normalised", [
    ("anthropic", "https://api.anthropic.com", "https://api.anthropic.com"),
    ("anthropic", "https://api.anthropic.com/", "https://api.anthropic.com"),
    ("anthropic", "https://api.anthropic.com/v1", "https://api.anthropic.com"),
    ("anthropic", "https://api.anthropic.com/v1/", "https://api.anthropic.com"),
    ("anthropic", "https://api.anthropic.com/v1/messages", "https://api.anthropic.com"),
    ("anthropic", "https://api.anthropic.com/v1/messages/", "https://api.anthropic.com"),
    ("anthropic", "http://127.0.0.1:8080/proxy/v1", "http://127.0.0.1:8080/proxy"),
    ("openai", "https://openrouter.ai/api/v1", "https://openrouter.ai/api/v1"),
    ("openai", "https://openrouter.ai/api/v1/", "https://openrouter.ai/api/v1"),
    ("openai", "https://openrouter.ai/api/v1/chat/completions", "https://openrouter.ai/api/v1"),
    ("openai", "http://localhost:11434/v1", "http://localhost:11434/v1"),
])
def test_base_url_is_normalised(provider_type: str, given: str, normalised: str) -> None:
    assert parse_provider(type=provider_type, base_url=given).base_url == normalised


@pytest.mark.parametrize("provider_type, urls", [
    ("anthropic", ("https://x.test/v1/messages", "https://x.test/v1/messages/count_tokens",
                   "https://x.test/v1/models")),
    ("openai", ("https://x.test/v1/chat/completions", None, "https://x.test/v1/models")),
])
def test_endpoint_urls(provider_type: str, urls: tuple) -> None:
    provider = build_provider(parse_provider(type=provider_type, base_url="https://x.test/v1"))
    messages, count_tokens, models = urls
    request = parse_messages_request(b'{"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}', LimitsConfig())
    assert provider.messages_request(request, {}).url == messages
    assert provider.probe_request().url == models
    assert provider.counts_tokens == (count_tokens is not None)
    if count_tokens is None:
        with pytest.raises(NotImplementedError, match="no count_tokens endpoint"):
            provider.count_tokens_request(request, {})
    else:
        assert provider.count_tokens_request(request, {}).url == count_tokens


def test_health_path_replaces_the_model_listing() -> None:
    provider = build_provider(parse_provider(health={"path": "/health"}))
    assert provider.probe_request().url == "https://api.example.com/health"


# --- model routing ----------------------------------------------------------------------------

@pytest.mark.parametrize("models, requested, served_as", [
    (None, "anything-at-all", "anything-at-all"),
    ({}, "anything-at-all", "anything-at-all"),
    ({"claude-x": "backend-x"}, "claude-x", "backend-x"),
    ({"claude-x": "backend-x"}, "claude-y", None),
    ({"claude-*": "*"}, "claude-sonnet-5-5", "claude-sonnet-5-5"),
    ({"claude-*": ""}, "claude-sonnet-5-5", "claude-sonnet-5-5"),
    ({"claude-*": "qwen/qwen3-coder"}, "claude-opus-4", "qwen/qwen3-coder"),
    ({"claude-*": "qwen/qwen3-coder"}, "gpt-4o", None),
    ({"claude-*": "qwen/qwen3-coder"}, "Claude-opus-4", None),
    ({"*": "*"}, "gpt-4o", "gpt-4o"),
    ({"claude-?-x": "one"}, "claude-3-x", "one"),
    ({"claude-[35]-x": "set"}, "claude-5-x", "set"),
    ({"claude-[35]-x": "set"}, "claude-4-x", None),
    ({"claude-*": "first", "claude-opus-*": "second"}, "claude-opus-4", "first"),
    ({"claude-*": "glob", "claude-opus-4": "exact"}, "claude-opus-4", "exact"),
    ({"*": "any", "claude-opus-4": "exact"}, "claude-haiku", "any"),
    (["claude-opus-4", "glm-*"], "claude-opus-4", "claude-opus-4"),
    (["claude-opus-4", "glm-*"], "glm-4.6", "glm-4.6"),
    (["claude-opus-4", "glm-*"], "claude-haiku", None),
])
def test_model_for(models: object, requested: str, served_as: str | None) -> None:
    overrides = {} if models is None else {"models": models}
    assert parse_provider(**overrides).model_for(requested) == served_as


def test_model_names_lists_exact_patterns_of_enabled_providers() -> None:
    config = parse(document(
        provider(name="a", models={"claude-opus-4": "x", "claude-*": "*", "shared": "y"}),
        provider(name="b", models=["shared", "glm-4.6", "qwen-?"]),
        provider(name="off", api_key="${UNSET}", models=["hidden-model"]),
        provider(name="all")))
    assert config.model_names() == ["claude-opus-4", "glm-4.6", "shared"]


def test_provider_lookup_by_name() -> None:
    config = parse(document(provider(name="a"), provider(name="b")))
    assert config.provider("b").name == "b"
    with pytest.raises(KeyError):
        config.provider("missing")


# --- validation errors ------------------------------------------------------------------------

def _with(path: list, value: object) -> dict:
    """The minimal document with one member set (or deleted when value is DELETE)."""
    data = copy.deepcopy(document(provider(), provider(name="second")))
    target = data
    for step in path[:-1]:
        target = target.setdefault(step, {}) if isinstance(step, str) else target[step]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


DELETE = object()

ERROR_CASES = [
    # top level and sections
    ([], ["providers"], "expected an object, got array", "$"),
    (["extra"], 1, "unknown key 'extra'; allowed keys: auth, health, limits, providers, routing, state",
     "extra"),
    (["providers"], DELETE, "required key is missing", "providers"),
    (["providers"], [], "at least one provider is required", "providers"),
    (["providers"], {}, "expected an array, got object", "providers"),
    (["providers", 1], "x", "expected an object, got string", "providers[1]"),
    (["routing"], [], "expected an object, got array", "routing"),
    # provider members
    (["providers", 1, "colour"], "red", "unknown key 'colour'; allowed keys: api_key, base_url",
     "providers[1].colour"),
    (["providers", 0, "name"], DELETE, "required key is missing", "providers[0].name"),
    (["providers", 0, "name"], "", "must not be empty", "providers[0].name"),
    (["providers", 0, "name"], 7, "expected a string, got integer", "providers[0].name"),
    (["providers", 1, "name"], "main", "duplicate provider name 'main'", "providers[1].name"),
    (["providers", 0, "type"], "azure", "unknown provider type 'azure'; allowed: anthropic, openai",
     "providers[0].type"),
    (["providers", 0, "api_key"], None, "expected a string, got null", "providers[0].api_key"),
    (["providers", 1, "base_url"], "ftp://x.test", "not an http(s) URL", "providers[1].base_url"),
    (["providers", 1, "base_url"], "api.anthropic.com", "not an http(s) URL",
     "providers[1].base_url"),
    (["providers", 1, "base_url"], "https://", "not an http(s) URL", "providers[1].base_url"),
    (["providers", 1, "base_url"], "http://x.test:99999", "invalid port", "providers[1].base_url"),
    (["providers", 1, "base_url"], "https://x.test/?a=1", "query string", "providers[1].base_url"),
    (["providers", 0, "models"], {"cl[aude": "x"}, "unclosed '['", 'providers[0].models["cl[aude"]'),
    (["providers", 0, "models"], {"ok-*": "x", "[!]": "y"}, "unclosed '['",
     'providers[0].models["[!]"]'),
    (["providers", 0, "models"], ["good", "cl[aude"], "unclosed '['", "providers[0].models[1]"),
    (["providers", 0, "models"], {"": "x"}, "must not be empty", 'providers[0].models[""]'),
    (["providers", 0, "models"], {"a": 1}, "expected a string, got integer",
     'providers[0].models["a"]'),
    (["providers", 0, "models"], {"claude-*": "qwen-*"}, "must be a model name",
     'providers[0].models["claude-*"]'),
    (["providers", 0, "models"], ["a", "a"], "duplicate model pattern 'a'", "providers[0].models[1]"),
    (["providers", 0, "models"], "claude-*", "expected an object (pattern → model) or an array",
     "providers[0].models"),
    (["providers", 0, "weight"], 0, "must be at least 1, got 0", "providers[0].weight"),
    (["providers", 0, "weight"], -2, "must be at least 1", "providers[0].weight"),
    (["providers", 0, "weight"], True, "expected an integer, got boolean", "providers[0].weight"),
    (["providers", 0, "weight"], 1.5, "expected an integer, got number", "providers[0].weight"),
    (["providers", 0, "priority"], "1", "expected an integer, got string", "providers[0].priority"),
    (["providers", 0, "priority"], False, "expected an integer, got boolean",
     "providers[0].priority"),
    (["providers", 1, "timeout"], 30, "expected an object, got integer", "providers[1].timeout"),
    (["providers", 1, "timeout", "connect"], 0, "must be > 0, got 0",
     "providers[1].timeout.connect"),
    (["providers", 1, "timeout", "read"], -1, "must be > 0", "providers[1].timeout.read"),
    (["providers", 1, "timeout", "idle"], "60", "expected a number, got string",
     "providers[1].timeout.idle"),
    (["providers", 1, "timeout", "idle"], True, "expected a number, got boolean",
     "providers[1].timeout.idle"),
    (["providers", 1, "timeout", "totl"], 1,
     "unknown key 'totl'; did you mean 'total'? allowed keys: connect, first_byte, idle, read, total",
     "providers[1].timeout.totl"),
    (["providers", 1, "timeout", "first_byte"], 0, "must be > 0, got 0", "providers[1].timeout.first_byte"),
    (["providers", 1, "timeout", "total"], "600", "expected a number, got string", "providers[1].timeout.total"),
    (["providers", 0, "headers"], {"x-api-key": "k"}, "cannot be configured",
     'providers[0].headers["x-api-key"]'),
    (["providers", 0, "headers"], {"Authorization": "Bearer k"}, "cannot be configured",
     'providers[0].headers["Authorization"]'),
    *[(["providers", 0, "headers"], {name: "v"}, "cannot be configured",
       f'providers[0].headers["{name}"]')
      for name in ("host", "Content-Length", "connection", "transfer-encoding")],
    (["providers", 0, "headers"], {"x-a": 1}, "expected a string, got integer",
     'providers[0].headers["x-a"]'),
    (["providers", 0, "headers"], {"bad name": "v"}, "not a valid HTTP header name",
     'providers[0].headers["bad name"]'),
    (["providers", 0, "headers"], {"x-a": "v\r\nx-b: w"}, "line breaks",
     'providers[0].headers["x-a"]'),
    (["providers", 0, "headers"], {"X-A": "1", "x-a": "2"}, "given twice",
     'providers[0].headers["x-a"]'),
    (["providers", 0, "headers"], ["x-a"], "expected an object, got array", "providers[0].headers"),
    (["providers", 0, "tool_calls"], "", "expected \"auto\", \"off\" or one of", "providers[0].tool_calls"),
    (["providers", 0, "tool_calls"], "Hermes", "got 'Hermes'", "providers[0].tool_calls"),
    (["providers", 0, "tool_calls"], "xml_ish", "hermes", "providers[0].tool_calls"),
    (["providers", 0, "tool_calls"], False, "expected a string, got boolean",
     "providers[0].tool_calls"),
    (["providers", 0, "capabilities", "images"], "yes", "expected true or false, got string",
     "providers[0].capabilities.images"),
    (["providers", 0, "capabilities", "max_context_tokens"], 0, "must be at least 1",
     "providers[0].capabilities.max_context_tokens"),
    (["providers", 0, "capabilities", "vision"], True, "unknown key 'vision'",
     "providers[0].capabilities.vision"),
    (["providers", 0, "max_tool_name_length"], 8, "must be at least 16",
     "providers[0].max_tool_name_length"),
    (["providers", 0, "health", "path"], "models", 'must start with "/"',
     "providers[0].health.path"),
    (["providers", 0, "health", "paid_probe"], 1, "expected true or false, got integer",
     "providers[0].health.paid_probe"),
    (["providers", 0, "health", "interval"], 1, "unknown key 'interval'",
     "providers[0].health.interval"),
    (["providers", 0, "reasoning_content"], "always",
     "unknown reasoning_content mode 'always'; allowed: auto, send, drop", "providers[0].reasoning_content"),
    (["providers", 0, "reasoning_content"], False, "expected a string", "providers[0].reasoning_content"),
    # auth
    (["auth", "api_keys"], "k", "expected an array, got string", "auth.api_keys"),
    (["auth", "api_keys"], ["ok", 5], 'expected a key string or an object with "key"',
     "auth.api_keys[1]"),
    (["auth", "api_keys"], ["${UNSET_CLIENT_KEY}"], "environment variable UNSET_CLIENT_KEY is not set",
     "auth.api_keys[0]"),
    (["auth", "api_keys"], [{"name": "g3", "key": "${UNSET_CLIENT_KEY}"}],
     "environment variable UNSET_CLIENT_KEY is not set", "auth.api_keys[0].key"),
    (["auth", "api_keys"], [""], "must not be empty", "auth.api_keys[0]"),
    (["auth", "api_keys"], [{"name": "g3"}], "required key is missing", "auth.api_keys[0].key"),
    (["auth", "api_keys"], [{"key": "k", "rpm": 1}], "unknown key 'rpm'", "auth.api_keys[0].rpm"),
    (["auth", "api_keys"], [{"key": "k", "requests_per_minute": 0}], "must be at least 1",
     "auth.api_keys[0].requests_per_minute"),
    (["auth", "api_keys"], ["a", "a"], "the same key is listed twice", "auth.api_keys[1]"),
    (["auth", "api_keys"], [{"name": "x", "key": "a"}, {"name": "x", "key": "b"}],
     "duplicate client key name 'x'", "auth.api_keys[1]"),
    (["auth", "keys"], [], "allowed keys: api_keys, ops_keys", "auth.keys"),
    # routing, limits, health
    (["routing", "strategy"], "random",
     "unknown strategy 'random'; allowed: priority, weighted, least_busy, latency",
     "routing.strategy"),
    (["routing", "affinity"], "true", "expected true or false", "routing.affinity"),
    (["routing", "max_attempts"], 0, "must be at least 1", "routing.max_attempts"),
    (["routing", "deadline"], 0, "must be > 0", "routing.deadline"),
    (["routing", "cooldown"], -1, "must be >= 0", "routing.cooldown"),
    (["routing", "max_cooldown"], 5, "must be at least cooldown (10.0)", "routing.max_cooldown"),
    (["routing", "strategy"], "${UNSET_STRATEGY}", "environment variable UNSET_STRATEGY is not set",
     "routing.strategy"),
    (["routing", "sticky"], True, "unknown key 'sticky'", "routing.sticky"),
    (["limits", "max_body_bytes"], 0, "must be at least 1", "limits.max_body_bytes"),
    (["limits", "max_messages"], 1.0, "expected an integer, got number", "limits.max_messages"),
    (["limits", "max_header_bytes"], True, "expected an integer, got boolean",
     "limits.max_header_bytes"),
    (["health", "interval"], -1, "must be >= 0", "health.interval"),
    (["health", "timeout"], 0, "must be > 0", "health.timeout"),
    (["health", "timeout"], float("nan"), "finite", "health.timeout"),
    # state
    (["state"], "redis://h", "expected an object, got string", "state"),
    (["state", "redis"], "redis://h", "unknown key 'redis'; did you mean 'redis_url'? allowed keys: prefix, redis_url",
     "state.redis"),
    (["state", "redis_url"], "http://h:6379", "a Redis URL starts with redis://, rediss://, unix://",
     "state.redis_url"),
    (["state", "redis_url"], "redis://:pw@h:70000/0", "invalid port", "state.redis_url"),
    (["state", "redis_url"], "redis://", "needs a host", "state.redis_url"),
    (["state", "redis_url"], "redis://h/zero", "the database number", "state.redis_url"),
    (["state", "redis_url"], "unix://", "the socket's path", "state.redis_url"),
    (["state", "redis_url"], 6379, "expected a string, got integer", "state.redis_url"),
    (["state", "redis_url"], "${UNSET_REDIS_URL}", "environment variable UNSET_REDIS_URL is not set",
     "state.redis_url"),
    (["state", "prefix"], "lb{x}", "a prefix is 1 to 64 of the characters", "state.prefix"),
    (["state", "prefix"], "", "a prefix is 1 to 64", "state.prefix"),
    (["providers", 0, "name"], "n" * 65, "at most 64 bytes", "providers[0].name"),
    (["providers"], [{"name": f"p{n}", "type": "anthropic", "base_url": "http://x.test"} for n in range(65)],
     "at most 64 providers, got 65", "providers"),
]


@pytest.mark.parametrize("path, value, problem, json_path", ERROR_CASES,
                         ids=[f"{case[3]}-{index}" for index, case in enumerate(ERROR_CASES)])
def test_validation_errors_name_the_json_path(path: list, value: object, problem: str,
                                              json_path: str) -> None:
    data = value if not path else _with(path, value)
    with pytest.raises(ConfigError) as caught:
        parse(data)
    error = caught.value
    assert error.json_path == json_path
    assert problem in error.problem
    assert error.file == "providers.json"
    assert str(error) == f"providers.json: {json_path}: {error.problem}"
    assert isinstance(error, ValueError)


def test_valid_globs_are_accepted() -> None:
    patterns = ["claude-*", "*", "claude-?", "claude-[35]", "claude-[!a]", "x-[]]", "a[*]b"]
    entry = parse_provider(models=patterns)
    assert [route.pattern for route in entry.models] == patterns


# --- reading files ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, problem", [
    ('{"providers": [}', "invalid JSON at line 1 column 16"),
    ('{\n  "providers": [\n    {"name": "a",}\n  ]\n}', "invalid JSON at line 3 column 17: trailing comma"),
    ("", "invalid JSON at line 1 column 1"),
    ('{"providers": [], "providers": []}', "duplicate key 'providers'"),
])
def test_unreadable_json_is_reported_with_its_position(tmp_path: Path, text: str,
                                                       problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert caught.value.file == str(path)
    assert caught.value.json_path == "$"
    assert problem in caught.value.problem


def test_duplicate_model_patterns_in_an_object_are_caught(tmp_path: Path) -> None:
    text = ('{"providers": [{"name": "a", "type": "openai", "base_url": "http://h",'
            ' "models": {"claude-*": "x", "claude-*": "y"}}]}')
    with pytest.raises(ConfigError, match="duplicate key 'claude-\\*'"):
        load_config(write(tmp_path, text), environ={})


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        load_config(missing, environ={})
    assert str(caught.value) == f"{missing}: $: file not found"


def test_a_directory_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read file"):
        load_config(tmp_path, environ={})


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "providers.json"
    path.write_bytes(b'{"providers": "\xff"}')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path, environ={})


def test_path_is_kept_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, json.dumps(document()))
    monkeypatch.chdir(tmp_path)
    assert load_config("providers.json", environ={}).source == "providers.json"


# --- the shipped providers.json ---------------------------------------------------------------

def test_shipped_file_loads_with_no_keys_set() -> None:
    config = load_config(SHIPPED_FILE, environ={})
    assert [p.name for p in config.providers] == ["anthropic", "openrouter"]
    assert all(not p.enabled for p in config.providers)
    assert config.provider("anthropic").disabled_reason == \
        "environment variable ANTHROPIC_API_KEY is not set"
    assert config.auth.api_keys == ()
    assert config.model_names() == []


def test_shipped_file_with_both_keys() -> None:
    environ = {"ANTHROPIC_API_KEY": "sk-ant-test", "OPENROUTER_API_KEY": "sk-or-test"}
    config = load_config(SHIPPED_FILE, environ=environ)
    anthropic, openrouter = config.providers
    assert (anthropic.enabled, anthropic.api_key, anthropic.type) == (True, "sk-ant-test", "anthropic")
    assert build_provider(anthropic).messages_url() == "https://api.anthropic.com/v1/messages"
    assert anthropic.model_for("claude-sonnet-5-5") == "claude-sonnet-5-5"
    assert (openrouter.enabled, openrouter.api_key, openrouter.type) == (True, "sk-or-test", "openai")
    assert build_provider(openrouter).messages_url() == "https://openrouter.ai/api/v1/chat/completions"
    assert openrouter.model_for("claude-sonnet-5-5") == "qwen/qwen3-coder"
    assert anthropic.priority < openrouter.priority
    assert openrouter.tool_calls == "auto"


# --- describe_changes -------------------------------------------------------------------------

def test_no_changes_no_lines() -> None:
    config = parse(document())
    assert describe_changes(config, parse(document())) == []


def test_describe_changes_lines() -> None:
    old = parse(document(provider(name="kept", weight=1), provider(name="gone"),
                         provider(name="same")))
    new = parse(document(
        provider(name="kept", weight=5, base_url="https://other.example.com"),
        provider(name="same"), provider(name="fresh"),
        routing={"strategy": "weighted", "cooldown": 1}))
    assert describe_changes(old, new) == [
        "provider added: fresh",
        "provider removed: gone",
        "provider modified: kept (base_url, weight)",
        "routing modified: strategy, cooldown",
    ]


@pytest.mark.parametrize("section, field", [
    ({"limits": {"max_messages": 5}}, "limits modified: max_messages"),
    ({"health": {"interval": 0}}, "health modified: interval"),
    ({"state": {"redis_url": "redis://:pw@h"}}, "state modified: redis_url"),
    ({"auth": {"api_keys": ["sk-client-new"]}}, "auth modified: api_keys"),
])
def test_describe_changes_in_sections(section: dict, field: str) -> None:
    assert describe_changes(parse(document()), parse(document(**section))) == [field]


def test_describe_changes_never_shows_a_key() -> None:
    old = parse(document(provider(api_key="sk-old-provider-key", headers={"x-t": "hdr-old"}),
                         auth={"api_keys": ["sk-old-client"]}))
    new = parse(document(provider(api_key="sk-new-provider-key", headers={"x-t": "hdr-new"}),
                         auth={"api_keys": ["sk-new-client"]}))
    lines = describe_changes(old, new)
    assert lines == ["provider modified: main (api_key, headers)", "auth modified: api_keys"]
    text = "\n".join(lines)
    for secret in ("sk-old", "sk-new", "hdr-old", "hdr-new"):
        assert secret not in text
