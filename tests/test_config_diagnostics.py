"""What check-config tells an operator beyond "invalid": the nearest key for a typo, `$VAR`
written without braces, JSON mistakes at their real line, and the operations keys."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError, inspect_config, load_config, parse_config


def provider(**overrides: Any) -> dict[str, Any]:
    return {"name": "main", "type": "anthropic", "base_url": "https://api.example.com",
            "api_key": "sk-literal", **overrides}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "providers.json"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("data", "json_path", "suggestion"), [
    ({"providers": [provider(modles={"claude-*": "*"})]}, "providers[0].modles", "did you mean 'models'?"),
    ({"provider": [provider()]}, "provider", "did you mean 'providers'?"),
    ({"providers": [provider(timeout={"conect": 3})]}, "providers[0].timeout.conect", "did you mean 'connect'?"),
    ({"providers": [provider()], "routing": {"stratgy": "priority"}}, "routing.stratgy", "did you mean 'strategy'?"),
    ({"providers": [provider()], "auth": {"api_key": []}}, "auth.api_key", "did you mean 'api_keys'?"),
])
def test_a_typo_in_a_key_names_the_nearest_allowed_key(data: dict, json_path: str, suggestion: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "providers.json", {})
    assert caught.value.json_path == json_path
    assert suggestion in caught.value.problem and "allowed keys:" in caught.value.problem


def test_a_key_like_no_other_gets_no_suggestion() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [provider(colour="red")]}, "providers.json", {})
    assert "did you mean" not in caught.value.problem


def test_dollar_variables_without_braces_are_warned_about_with_their_json_path(tmp_path: Path) -> None:
    data = {"providers": [provider(api_key="$ANTHROPIC_API_KEY",
                                   headers={"x-team": "team-$TEAM and ${OK}"}),
                          provider(name="second", api_key="${FINE}")]}
    config, warnings = inspect_config(write(tmp_path, json.dumps(data)), {"OK": "x", "FINE": "y"})
    assert config.providers[0].api_key == "$ANTHROPIC_API_KEY"  # valid, taken literally: hence the warning
    assert warnings == [
        f"{tmp_path / 'providers.json'}: providers[0].api_key: '$ANTHROPIC_API_KEY' is taken literally; "
        'write "${ANTHROPIC_API_KEY}" to use the environment variable',
        f"{tmp_path / 'providers.json'}: providers[0].headers[\"x-team\"]: '$TEAM' is taken literally; "
        'write "${TEAM}" to use the environment variable',
    ]


def test_a_file_without_bare_variables_has_no_warnings(tmp_path: Path) -> None:
    _, warnings = inspect_config(write(tmp_path, json.dumps({"providers": [provider(api_key="${K}")]})), {"K": "k"})
    assert warnings == []


@pytest.mark.parametrize(("text", "position", "problem"), [
    # The decoder notices these at the next token, a line later; the mistake is on the line before.
    ('{\n  "providers": [\n    {"name": "a"},\n  ]\n}', "line 3 column 18", "trailing comma before ']'"),
    ('{\n  "providers": [],\n}', "line 2 column 18", "trailing comma before '}'"),
    ('{\n  "health": {"interval": 30}\n  "providers": []\n}', "line 2 column 29", "missing ',' after this value"),
    ('{\n  // providers\n  "providers": []\n}', "line 2 column 3", "(JSON has no comments)"),
    ('{"providers": [}', "line 1 column 16", "Expecting value"),
])
def test_json_syntax_errors_are_reported_where_the_mistake_is(tmp_path: Path, text: str, position: str,
                                                               problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    assert f"invalid JSON at {position}: " in caught.value.problem
    assert caught.value.problem.endswith(problem)


def test_operations_keys_are_validated_like_client_keys() -> None:
    auth = {"api_keys": [{"name": "g3", "key": "client-key"}],
            "ops_keys": ["ops-plain", {"name": "prometheus", "key": "${SCRAPE_KEY}"}]}
    config = parse_config({"providers": [provider()], "auth": auth}, "providers.json", {"SCRAPE_KEY": "scrape"})
    assert [(key.name, key.key) for key in config.auth.ops_keys] == [("ops-1", "ops-plain"),
                                                                     ("prometheus", "scrape")]
    assert config.auth.protects_operations


@pytest.mark.parametrize(("ops_keys", "json_path", "problem"), [
    ([{"key": "k", "requests_per_minute": 5}], "auth.ops_keys[0].requests_per_minute", "unknown key"),
    (["client-key"], "auth.ops_keys[0]", "also a client key"),
    (["a", "a"], "auth.ops_keys[1]", "listed twice"),
    ([""], "auth.ops_keys[0]", "must not be empty"),
    ("${UNSET}", "auth.ops_keys", "environment variable UNSET is not set"),
])
def test_bad_operations_keys_are_refused(ops_keys: object, json_path: str, problem: str) -> None:
    auth = {"api_keys": ["client-key"], "ops_keys": ops_keys}
    with pytest.raises(ConfigError) as caught:
        parse_config({"providers": [provider()], "auth": auth}, "providers.json", {})
    assert caught.value.json_path == json_path and problem in caught.value.problem


def test_operations_keys_are_secrets_the_scrubber_removes() -> None:
    from loadbalancer.runtime import configured_secrets

    auth = {"api_keys": ["client-key-0123456789"], "ops_keys": ["ops-key-0123456789"]}
    config = parse_config({"providers": [provider()], "auth": auth}, "providers.json", {})
    assert {"client-key-0123456789", "ops-key-0123456789"} <= set(configured_secrets(config, {}))
