"""What differs between provider types: the upstream request, the answer, the errors.

Pure: no network, no Flask. `forwarding.py` asks the backend of a provider for the bytes
and headers to send, then hands it the answer; everything comes back in the Anthropic
dialect (a message dict, or a stream pipeline that yields Anthropic frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import orjson

from loadbalancer.settings.records import ProviderConfig
from loadbalancer.errors import UpstreamBadResponse, UpstreamHTTPError, error_body, error_type_for
from loadbalancer.client_request import MessagesRequest
from loadbalancer.translation.messages_to_chat_request import anthropic_to_openai_request
from loadbalancer.translation.chat_to_messages_answer import openai_error_to_anthropic, openai_to_anthropic_message
from loadbalancer.providers.stream_pipeline import AnthropicStreamPipeline, OpenAIPassthroughPipeline, OpenAIStreamPipeline
from loadbalancer.translation.tool_names import ToolNameMap
from loadbalancer.toolcalls.rewrite import ToolCallStats, ToolCallStreamRewriter, rewrite_message

DEFAULT_ANTHROPIC_VERSION = "2023-06-01"

# Never forwarded: hop-by-hop headers (RFC 9110 7.6.1), the client's own credentials,
# and headers the HTTP client sets itself.
_DROPPED_CLIENT_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "authorization", "x-api-key",
    "cookie", "accept-encoding", "content-type", "accept", "expect", "forwarded",
    "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip",
})


@dataclass(frozen=True)
class UpstreamRequest:
    """What to send to one provider for one attempt."""

    url: str
    headers: dict[str, str]
    body: bytes
    tool_names: ToolNameMap | None = None


@dataclass(frozen=True)
class MessageAnswer:
    """A complete (non-stream) answer in the Anthropic dialect."""

    body: bytes
    tool_call_stats: ToolCallStats
    usage: tuple[int, int]


def is_openai_passthrough(provider: ProviderConfig, request: MessagesRequest) -> bool:
    """An OpenAI client talking to an OpenAI provider: nothing to translate."""
    return provider.type == "openai" and request.openai_body is not None


def build_upstream_request(provider: ProviderConfig, request: MessagesRequest,
                           client_headers: Mapping[str, str], *, count_tokens: bool = False) -> UpstreamRequest:
    """The URL, headers and body for `request` at `provider`."""
    provider_model = provider.model_for(request.model) or request.model
    if is_openai_passthrough(provider, request):
        return UpstreamRequest(provider.messages_url(), _openai_headers(provider, request.stream),
                               orjson.dumps({**request.openai_body, "model": provider_model}))
    if provider.type == "openai":
        body, tool_names = anthropic_to_openai_request(
            request.body, provider_model, max_tool_name_length=provider.max_tool_name_length)
        return UpstreamRequest(provider.messages_url(), _openai_headers(provider, request.stream),
                               orjson.dumps(body), tool_names)
    if provider_model == request.model:
        body_bytes = request.raw
    else:
        body_bytes = orjson.dumps({**request.body, "model": provider_model})
    url = provider.count_tokens_url() if count_tokens else provider.messages_url()
    return UpstreamRequest(url, anthropic_headers(provider, client_headers, request.stream), body_bytes)


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


def _openai_headers(provider: ProviderConfig, stream: bool) -> dict[str, str]:
    """Headers for an OpenAI-compatible provider: nothing of the client's is forwarded."""
    headers = {"content-type": "application/json",
               "accept": "text/event-stream" if stream else "application/json",
               "accept-encoding": "identity" if stream else "gzip, deflate"}
    if provider.api_key:
        headers["authorization"] = f"Bearer {provider.api_key}"
    headers.update(provider.headers)
    return headers


def decode_message_answer(provider: ProviderConfig, request: MessagesRequest, body: bytes,
                          tool_names: ToolNameMap | None) -> MessageAnswer:
    """A 2xx non-stream answer as an Anthropic message (text tool calls rewritten)."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise UpstreamBadResponse(provider.name, "answered 2xx with a body that is not JSON") from err
    if not isinstance(data, dict):
        raise UpstreamBadResponse(provider.name, "answered 2xx with JSON that is not an object")
    changed = False
    if provider.type == "openai" and not isinstance(data.get("choices"), list):
        raise UpstreamBadResponse(provider.name, "answer has no choices")
    if is_openai_passthrough(provider, request):
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        return MessageAnswer(body, ToolCallStats(), (_int(usage.get("prompt_tokens")),
                                                     _int(usage.get("completion_tokens"))))
    if provider.type == "openai":
        data = openai_to_anthropic_message(data, request.model, tool_names or ToolNameMap({}),
                                           thinking_requested=request.wants_thinking)
        changed = True
    elif data.get("type") != "message" or not isinstance(data.get("content"), list):
        raise UpstreamBadResponse(provider.name, "answer is not an Anthropic message")
    stats = ToolCallStats()
    if request.tools and provider.tool_calls != "off":
        rewritten, stats = rewrite_message(data, request.tools, provider.tool_calls)
        changed = changed or rewritten is not data
        data = rewritten
    usage = data.get("usage") or {}
    return MessageAnswer(orjson.dumps(data) if changed else body, stats,
                         (_int(usage.get("input_tokens")), _int(usage.get("output_tokens"))))


def stream_pipeline(provider: ProviderConfig, request: MessagesRequest,
                    tool_names: ToolNameMap | None) -> AnthropicStreamPipeline | OpenAIStreamPipeline:
    """The pipeline that turns this provider's stream into Anthropic frames."""
    if is_openai_passthrough(provider, request):
        return OpenAIPassthroughPipeline(provider.name)
    rewriter = None
    if request.tools and provider.tool_calls != "off":
        rewriter = ToolCallStreamRewriter(request.tools, provider.tool_calls)
    if provider.type == "openai":
        return OpenAIStreamPipeline.create(provider.name, request.model, tool_names or ToolNameMap({}),
                                          thinking_requested=request.wants_thinking, rewriter=rewriter)
    return AnthropicStreamPipeline(provider.name, rewriter)


def client_error_answer(provider: ProviderConfig, err: UpstreamHTTPError) -> tuple[int, bytes]:
    """The status and Anthropic-format body to pass a provider's 4xx on to the client."""
    status = err.status or 502
    if provider.type == "openai":
        status, body = openai_error_to_anthropic(status, err.body, err.content_type)
        return status, orjson.dumps(body)
    try:
        data = orjson.loads(err.body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict) and data.get("type") == "error" and isinstance(data.get("error"), dict):
        return status, err.body
    snippet = err.body[:300].decode("utf-8", "replace").strip()
    message = f"provider {provider.name} answered HTTP {status}" + (f": {snippet}" if snippet else "")
    return status, orjson.dumps(error_body(error_type_for(status), message))


def upstream_error_message(provider: ProviderConfig, err: UpstreamHTTPError) -> str:
    """A short description of a provider's error answer for logs and all-failed errors."""
    _, body = client_error_answer(provider, err)
    try:
        message = orjson.loads(body)["error"]["message"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        message = ""
    return f"HTTP {err.status}" + (f" ({message[:200]})" if message else "")


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
