"""What the `bedrock` and `vertex` types share: the Messages body the clouds take, beta
filtering, and checks of the providers.json keys both have.

Both clouds take the Anthropic Messages body with the model in the URL instead of the body
and an `anthropic_version` of their own; both refuse `anthropic-beta` values they do not
know with a 400, so a provider may list the betas it lets through. Pure: no network.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Any, Mapping

from loadbalancer.settings.validation import (Location, expect_bool, expect_list, expect_str, is_glob,
                                              optional_member)

BETA_HEADER = "anthropic-beta"
_REGION = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
# A count_tokens body has no max_tokens, which both clouds' Messages bodies require.
COUNT_TOKENS_MAX_TOKENS = 1024
# What the free health probe counts the tokens of.
PROBE_BODY = {"messages": [{"role": "user", "content": "ping"}]}


def cloud_body(body: Mapping[str, Any], anthropic_version: str, *, dropped: tuple[str, ...]) -> dict:
    """The client's body without the `dropped` keys, with the cloud's `anthropic_version`."""
    shaped = {key: value for key, value in body.items() if key not in dropped}
    shaped["anthropic_version"] = anthropic_version
    return shaped


def with_max_tokens(body: dict) -> dict:
    """A count_tokens body made a valid Messages body: max_tokens above any thinking budget."""
    if "max_tokens" in body:
        return body
    thinking = body.get("thinking")
    budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
    minimum = budget + 1 if isinstance(budget, int) and not isinstance(budget, bool) else 1
    return {**body, "max_tokens": max(COUNT_TOKENS_MAX_TOKENS, minimum)}


def requested_betas(client_headers: Mapping[str, str], allowed: tuple[str, ...] | None) -> list[str]:
    """The client's `anthropic-beta` values (comma-separated) the provider lets through."""
    header = next((value for name, value in client_headers.items() if name.lower() == BETA_HEADER), "")
    betas = [part.strip() for part in header.split(",") if part.strip()]
    if allowed is not None:
        betas = [beta for beta in betas if any(fnmatch.fnmatchcase(beta, pattern) for pattern in allowed)]
    return list(dict.fromkeys(betas))


def optional_text(entry: Mapping[str, Any], where: Location, name: str) -> str | None:
    """A string key stripped of blanks; None when absent or empty."""
    return optional_member(entry, where, name, "", expect_str).strip() or None


def parse_region(entry: Mapping[str, Any], where: Location) -> str:
    """The required `region`, e.g. us-east-1 or global."""
    if "region" not in entry:
        raise where.key("region").error("required key is missing")
    region = expect_str(entry["region"], where.key("region")).strip()
    if not _REGION.match(region):
        raise where.key("region").error(f"not a region name: {region!r}")
    return region


def parse_betas(entry: Mapping[str, Any], where: Location) -> tuple[str, ...] | None:
    """`betas`: the anthropic-beta values (globs allowed) passed on; absent means all."""
    def check(value: object, location: Location) -> tuple[str, ...]:
        items = expect_list(value, location)
        return tuple(expect_str(item, location.index(position), non_empty=True).strip()
                     for position, item in enumerate(items))
    return optional_member(entry, where, "betas", None, check)


def parse_count_tokens(entry: Mapping[str, Any], where: Location) -> bool:
    """`count_tokens`: false answers count_tokens with the local estimate instead."""
    return optional_member(entry, where, "count_tokens", True, expect_bool)


def require_probe_model(entry: Mapping[str, Any], where: Location) -> None:
    """A cloud provider's free probe counts tokens on a model it names: there must be one
    (a `models` name or target that is not a glob), unless `health.path` replaces the probe."""
    health = entry.get("health")
    if isinstance(health, dict) and "path" in health:
        return
    models = entry.get("models")
    if isinstance(models, list):
        names = [item for item in models if isinstance(item, str) and not is_glob(item)]
    elif isinstance(models, dict):
        names = [pattern for pattern, target in models.items()
                 if not is_glob(pattern) or (isinstance(target, str) and target not in ("", "*"))]
    else:
        names = []
    if not names:
        raise where.key("models").error(
            "name at least one model of this provider (e.g. {\"claude-sonnet-4-5\": \"<its id>\"}): "
            "the health probe counts tokens on it")
