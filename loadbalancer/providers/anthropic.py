"""`"type": "anthropic"`: Anthropic's API and Anthropic-compatible endpoints.

The client's body goes upstream as it is (only the model renamed when a route says so);
answers come back in the client's own dialect, with text tool calls rewritten when the
request has tools. Pure: builds requests and reads answers; `http_client` sends them.
"""

from __future__ import annotations

from typing import Mapping

import orjson

from loadbalancer.client_request import MessagesRequest
from loadbalancer.errors import UpstreamBadResponse, UpstreamHTTPError, error_body, error_type_for
from loadbalancer.providers.base import (MessageAnswer, Provider, UpstreamRequest, decode_answer_object,
                                         paid_probe_body)
from loadbalancer.providers.stream_pipeline import AnthropicStreamPipeline
from loadbalancer.providers.usage import anthropic_answer_usage
from loadbalancer.settings.records import ProviderConfig
from loadbalancer.toolcalls.rewrite import ToolCallStats, ToolCallStreamRewriter, rewrite_message

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"
ERROR_SNIPPET_LENGTH = 300

# Never forwarded: hop-by-hop headers (RFC 9110 7.6.1), the client's own credentials,
# and headers the HTTP client sets itself.
_DROPPED_CLIENT_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "authorization", "x-api-key",
    "cookie", "accept-encoding", "content-type", "accept", "expect", "forwarded",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
})


class AnthropicProvider(Provider):
    """A backend that speaks the Anthropic Messages API."""

    type_name = "anthropic"
    base_url_suffixes = ("/v1/messages", "/v1")
    counts_tokens = True
    default_health_path = "/v1/models"

    def messages_url(self) -> str:
        """Where Messages requests are posted."""
        return f"{self.config.base_url}/v1/messages"

    def count_tokens_url(self) -> str:
        """Where token-counting requests are posted."""
        return f"{self.config.base_url}/v1/messages/count_tokens"

    def probe_url(self) -> str:
        """The URL a listing probe asks: `health.path`, or the model listing."""
        return f"{self.config.base_url}{self.config.health_path or self.default_health_path}"

    def messages_request(self, request: MessagesRequest,
                         client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The client's body (model renamed if routed) with the provider's key."""
        return UpstreamRequest(self.messages_url(), anthropic_headers(self.config, client_headers, request.stream),
                               self._body(request))

    def count_tokens_request(self, request: MessagesRequest,
                             client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The same body at the counting endpoint."""
        return UpstreamRequest(self.count_tokens_url(), anthropic_headers(self.config, client_headers, False),
                               self._body(request))

    def builds_body_for(self, model: str) -> bool:
        """Only a renamed model is written into a built body (see `_body`)."""
        return (self.config.model_for(model) or model) != model

    def _body(self, request: MessagesRequest) -> bytes:
        provider_model = self.config.model_for(request.model) or request.model
        unsigned = request.has_unsigned_thinking
        if provider_model == request.model and not unsigned:
            return request.raw  # nothing to change: the client's bytes as they came
        body = without_unsigned_thinking(request.body) if unsigned else request.body
        return orjson.dumps({**body, "model": provider_model})

    def decode_message(self, request: MessagesRequest, body: bytes,
                       upstream: UpstreamRequest) -> MessageAnswer:
        """Check the answer is a message; rewrite text tool calls when the request has tools."""
        return decode_anthropic_message(self.config, request, body)

    def stream_pipeline(self, request: MessagesRequest, upstream: UpstreamRequest) -> AnthropicStreamPipeline:
        """Raw forwarding, or the tool-call rewriter when the request has tools."""
        return AnthropicStreamPipeline(self.name, tool_call_rewriter(self.config, request))

    def error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """An Anthropic error body as it came; anything else wrapped in one."""
        return anthropic_error_answer(self.name, err)

    def probe_request(self, paid_model: str | None = None) -> UpstreamRequest:
        """GET the model listing, or a 1-token completion when the provider opts in."""
        headers = anthropic_headers(self.config, {}, stream=False)
        if paid_model is not None:
            return UpstreamRequest(self.messages_url(), headers, paid_probe_body(paid_model))
        return UpstreamRequest(self.probe_url(), headers, None, method="GET")


def anthropic_headers(provider: ProviderConfig, client_headers: Mapping[str, str], stream: bool) -> dict[str, str]:
    """Client headers minus credentials and hop-by-hop ones, plus the provider's key."""
    headers = {name.lower(): value for name, value in client_headers.items()
               if name.lower() not in _DROPPED_CLIENT_HEADERS}
    headers.setdefault("anthropic-version", DEFAULT_ANTHROPIC_VERSION)
    headers["content-type"] = "application/json"
    headers["accept"] = "text/event-stream" if stream else "application/json"
    # Compressed SSE would arrive in bursts; streams are asked for uncompressed.
    headers["accept-encoding"] = "identity" if stream else "gzip, deflate"
    if provider.api_key:
        headers["x-api-key"] = provider.api_key
    headers.update(provider.headers)
    return headers


def without_unsigned_thinking(body: dict) -> dict:
    """The body without unsigned thinking blocks, which Anthropic refuses; turns left empty go too."""
    messages = []
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list) and message.get("role") == "assistant":
            kept = [block for block in content if not (isinstance(block, dict) and block.get("type") == "thinking"
                                                       and not block.get("signature"))]
            if not kept:
                continue
            message = {**message, "content": kept}
        messages.append(message)
    return {**body, "messages": messages}


def decode_anthropic_message(provider: ProviderConfig, request: MessagesRequest, body: bytes) -> MessageAnswer:
    """A 2xx body that must be an Anthropic message, text tool calls rewritten.

    :raises UpstreamBadResponse: it is not an Anthropic message.
    """
    data = decode_answer_object(provider.name, body)
    if data.get("type") != "message" or not isinstance(data.get("content"), list):
        raise UpstreamBadResponse(provider.name, "answer is not an Anthropic message")
    return finish_anthropic_message(provider, request, data, body, changed=False)


def tool_call_rewriter(provider: ProviderConfig, request: MessagesRequest) -> ToolCallStreamRewriter | None:
    """The stream rewriter for text tool calls, when the request has tools and it is not off."""
    if request.tools and provider.tool_calls != "off":
        return ToolCallStreamRewriter(request.tools, provider.tool_calls, thinking=request.wants_thinking)
    return None


def finish_anthropic_message(provider: ProviderConfig, request: MessagesRequest, data: dict,
                             body: bytes, *, changed: bool) -> MessageAnswer:
    """Rewrite text tool calls in an Anthropic message; re-encode only when something changed."""
    stats = ToolCallStats()
    if request.tools and provider.tool_calls != "off":
        rewritten, stats = rewrite_message(data, request.tools, provider.tool_calls, thinking=request.wants_thinking)
        changed = changed or rewritten is not data
        data = rewritten
    return MessageAnswer(orjson.dumps(data) if changed else body, stats, anthropic_answer_usage(data))


def anthropic_error_answer(provider: str, err: UpstreamHTTPError) -> tuple[int, bytes]:
    """An Anthropic-format error body passed on as it is; any other body wrapped in one."""
    status = err.status or 502
    try:
        data = orjson.loads(err.body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("type") == "error" and isinstance(data.get("error"), dict):
        return status, err.body
    snippet = err.body[:ERROR_SNIPPET_LENGTH].decode("utf-8", "replace").strip()
    message = f"provider {provider} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    return status, orjson.dumps(error_body(error_type_for(status), message))
