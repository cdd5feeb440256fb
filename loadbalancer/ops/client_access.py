"""Inbound access control: which client is calling, and whether it may.

Keys are compared in constant time against every configured key, so neither the match
position nor a prefix leaks through timing. Only the client's name is ever logged.
"""

from __future__ import annotations

import hmac
from typing import Mapping

from loadbalancer.settings.records import AuthConfig, ClientKey
from loadbalancer.errors import AuthenticationFailed
from loadbalancer.ops.rate_limit import RateLimiter


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent as `x-api-key` or `Authorization: Bearer`."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def identify_client(auth: AuthConfig, headers: Mapping[str, str]) -> ClientKey | None:
    """The calling client; None when no inbound keys are configured."""
    if not auth.api_keys:
        return None
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed("missing API key: send it as x-api-key or Authorization: Bearer")
    matched = None
    candidate = key.encode()
    for client in auth.api_keys:
        if hmac.compare_digest(candidate, client.key.encode()) and matched is None:
            matched = client
    if matched is None:
        raise AuthenticationFailed("invalid API key")
    return matched


def check_rate_limit(client: ClientKey | None, limiter: RateLimiter | None) -> None:
    """Count the request against the client's requests_per_minute, if it has one."""
    if client is not None and limiter is not None:
        limiter.check(client)


def authenticate(auth: AuthConfig, headers: Mapping[str, str],
                 limiter: RateLimiter | None = None) -> str | None:
    """The calling client's name after its rate limit is checked; None without inbound keys."""
    client = identify_client(auth, headers)
    check_rate_limit(client, limiter)
    return None if client is None else client.name
