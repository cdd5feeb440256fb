"""Calling one provider object directly, the way the failover loop does, for unit tests of a type."""
from __future__ import annotations

import json
from typing import Any

from config import parse_config
from loadbalancer.client_request import MessagesRequest, parse_messages_request
from loadbalancer.providers.base import Provider, UpstreamRequest
from loadbalancer.providers.http_client import ProviderClient
from loadbalancer.providers.registry import build_provider
from loadbalancer.settings.records import LimitsConfig

BODY = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def provider_of(entry: dict[str, Any], environ: dict[str, str] | None = None) -> Any:
    """The provider object for one providers.json entry."""
    config = parse_config({"providers": [entry]}, "providers.json", environ or {})
    return build_provider(config.providers[0])


def request_of(body: dict[str, Any] | None = None, *, stream: bool = False,
               count_tokens: bool = False) -> MessagesRequest:
    """A validated client request (count_tokens bodies lose max_tokens)."""
    payload = {**(body or BODY), **({"stream": True} if stream else {})}
    if count_tokens:
        payload.pop("max_tokens", None)
    return parse_messages_request(json.dumps(payload).encode(), LimitsConfig(), count_tokens=count_tokens)


def send(provider: Provider, upstream: UpstreamRequest, stream: bool = False) -> bytes:
    """POST an UpstreamRequest over the provider's own client; the whole body."""
    client = ProviderClient(provider.config)
    try:
        return client.read_body(client.post(upstream.url, upstream.body, upstream.headers, stream=stream))
    finally:
        client.close()
