"""Inbound access control: which client is calling, and whether it may.

Keys are compared in constant time against every configured key, so neither the match
position nor a prefix leaks through timing. Only the client's name is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Iterable, Mapping

from loadbalancer.settings.records import AuthConfig, ClientKey
from loadbalancer.errors import AuthenticationFailed
from loadbalancer.ops.rate_limit import RateLimiter

OPERATIONS_REALM = "anthropic-loadbalancer operations"


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key a client sent as `x-api-key`, `Authorization: Bearer` or a Basic password."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    if scheme.lower() == "basic" and token.strip():
        # Browsers can only send a key as a password: the status page asks for one that way.
        try:
            decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2].strip() or None
    return None


def _matching_key(candidate: str, keys: Iterable[ClientKey]) -> ClientKey | None:
    """The configured key equal to `candidate`, compared in constant time against every key."""
    matched = None
    encoded = candidate.encode()
    for client in keys:
        if hmac.compare_digest(encoded, client.key.encode()) and matched is None:
            matched = client
    return matched


def identify_client(auth: AuthConfig, headers: Mapping[str, str]) -> ClientKey | None:
    """The calling client; None when no inbound keys are configured."""
    if not auth.api_keys:
        return None
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed("missing API key: send it as x-api-key or Authorization: Bearer")
    matched = _matching_key(key, auth.api_keys)
    if matched is None:
        raise AuthenticationFailed("invalid API key")
    return matched


def authorize_operations(auth: AuthConfig, headers: Mapping[str, str]) -> str | None:
    """The name of the client or operations key allowed to read /metrics, /status.json, live probes.

    None when no inbound keys are configured (the endpoints are open, like the API).

    :raises AuthenticationFailed: keys are configured and none was presented or it is wrong.
    """
    if not auth.protects_operations:
        return None
    key = presented_key(headers)
    if key is None:
        raise AuthenticationFailed(
            "missing API key: operations endpoints need a client key or an operations key "
            "(auth.ops_keys) as x-api-key, Authorization: Bearer or a Basic password",
            headers={"www-authenticate": f'Basic realm="{OPERATIONS_REALM}"'})
    matched = _matching_key(key, (*auth.ops_keys, *auth.api_keys))
    if matched is None:
        raise AuthenticationFailed("invalid API key",
                                   headers={"www-authenticate": f'Basic realm="{OPERATIONS_REALM}"'})
    return matched.name


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
