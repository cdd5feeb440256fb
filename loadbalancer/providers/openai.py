"""`"type": "openai"`: OpenAI-compatible Chat Completions endpoints (OpenRouter, vLLM, ...).

Anthropic requests are translated to Chat Completions and the answers back; a client that
itself spoke Chat Completions gets the provider's answer as it is (only the model renamed on
the way up). Pure: builds requests and reads answers; `http_client` sends them.
"""

from __future__ import annotations

from typing import Mapping

import orjson

from loadbalancer.client_request import MessagesRequest
from loadbalancer.errors import UpstreamBadResponse, UpstreamHTTPError
from loadbalancer.providers.anthropic import finish_anthropic_message, tool_call_rewriter
from loadbalancer.providers.base import (MessageAnswer, Provider, UpstreamRequest, decode_answer_object,
                                         paid_probe_body)
from loadbalancer.providers.stream_pipeline import (OpenAIPassthroughPipeline, OpenAIStreamPipeline,
                                                    StreamPipeline)
from loadbalancer.providers.usage import openai_answer_usage
from loadbalancer.toolcalls.openai_rewrite import ChatChunkRewriter, rewrite_chat_completion
from loadbalancer.toolcalls.rewrite import ToolCallStats
from loadbalancer.translation.chat_to_messages_answer import (openai_error_to_anthropic,
                                                             openai_to_anthropic_message)
from loadbalancer.translation.messages_to_chat_request import anthropic_to_openai_request
from loadbalancer.translation.tool_names import ToolNameMap


class OpenAIProvider(Provider):
    """A backend that speaks OpenAI's Chat Completions API."""

    type_name = "openai"
    base_url_suffixes = ("/chat/completions",)
    default_health_path = "/models"

    def messages_url(self) -> str:
        """Where chat completions are posted."""
        return f"{self.config.base_url}/chat/completions"

    def probe_url(self) -> str:
        """The URL a listing probe asks: `health.path`, or the model listing."""
        return f"{self.config.base_url}{self.config.health_path or self.default_health_path}"

    def answers_in_client_dialect(self, request: MessagesRequest) -> bool:
        """An OpenAI client talking to an OpenAI provider: nothing to translate."""
        return request.openai_body is not None

    def messages_request(self, request: MessagesRequest,
                         client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The translated request, or an OpenAI client's own body with the model renamed."""
        provider_model = self.config.model_for(request.model) or request.model
        headers = self._headers(request.stream)
        if self.answers_in_client_dialect(request):
            return UpstreamRequest(self.messages_url(), headers,
                                   orjson.dumps({**request.openai_body, "model": provider_model}))
        body, tool_names = anthropic_to_openai_request(
            request.body, provider_model, max_tool_name_length=self.config.max_tool_name_length,
            reasoning_content=self.config.reasoning_content)
        return UpstreamRequest(self.messages_url(), headers, orjson.dumps(body), tool_names)

    def _headers(self, stream: bool) -> dict[str, str]:
        """Nothing of the client's is forwarded: only the provider's key and headers."""
        headers = {"content-type": "application/json",
                   "accept": "text/event-stream" if stream else "application/json",
                   "accept-encoding": "identity" if stream else "gzip, deflate"}
        if self.config.api_key:
            headers["authorization"] = f"Bearer {self.config.api_key}"
        headers.update(self.config.headers)
        return headers

    def decode_message(self, request: MessagesRequest, body: bytes,
                       upstream: UpstreamRequest) -> MessageAnswer:
        """A chat completion as an Anthropic message (or as it is for an OpenAI client)."""
        data = decode_answer_object(self.name, body)
        if not isinstance(data.get("choices"), list):
            raise UpstreamBadResponse(self.name, "answer has no choices")
        if self.answers_in_client_dialect(request):
            stats = ToolCallStats()
            if self._rewrites_text_calls(request):
                rewritten, stats = rewrite_chat_completion(data, request.tools, self.config.tool_calls,
                                                           thinking=_asks_for_reasoning(request))
                body = body if rewritten is data else orjson.dumps(rewritten)
            return MessageAnswer(body, stats, openai_answer_usage(data))
        message = openai_to_anthropic_message(data, request.model, upstream.tool_names or ToolNameMap({}),
                                              thinking_requested=self._shows_reasoning(request))
        return finish_anthropic_message(self.config, request, message, body, changed=True)

    def stream_pipeline(self, request: MessagesRequest, upstream: UpstreamRequest) -> StreamPipeline:
        """Translation into an Anthropic stream, or passthrough for an OpenAI client."""
        if self.answers_in_client_dialect(request):
            rewriter = None
            if self._rewrites_text_calls(request):
                rewriter = ChatChunkRewriter(request.tools, self.config.tool_calls,
                                             thinking=_asks_for_reasoning(request))
            return OpenAIPassthroughPipeline(self.name, rewriter)
        return OpenAIStreamPipeline.create(self.name, request.model, upstream.tool_names or ToolNameMap({}),
                                           thinking_requested=self._shows_reasoning(request),
                                           rewriter=tool_call_rewriter(self.config, request))

    def _rewrites_text_calls(self, request: MessagesRequest) -> bool:
        """Text tool calls are rewritten when the request has tools and the provider's tool_calls is not off."""
        return bool(request.tools) and self.config.tool_calls != "off"

    def _shows_reasoning(self, request: MessagesRequest) -> bool:
        """Whether the backend's reasoning reaches the client as thinking blocks.

        When the client asked for thinking; and in a tool loop unless `reasoning_content` is
        "drop", because the client must hold the reasoning to send it back on the next turn.
        """
        mode = self.config.reasoning_content
        return request.wants_thinking or mode == "send" or (mode == "auto" and bool(request.tools))

    def error_answer(self, err: UpstreamHTTPError) -> tuple[int, bytes]:
        """OpenAI's error JSON (or an HTML/text page) as an Anthropic error."""
        status, body = openai_error_to_anthropic(err.status or 502, err.body, err.content_type)
        return status, orjson.dumps(body)

    def probe_request(self, paid_model: str | None = None) -> UpstreamRequest:
        """GET the model listing, or a 1-token completion when the provider opts in."""
        headers = self._headers(stream=False)
        if paid_model is not None:
            return UpstreamRequest(self.messages_url(), headers, paid_probe_body(paid_model))
        return UpstreamRequest(self.probe_url(), headers, None, method="GET")


def _asks_for_reasoning(request: MessagesRequest) -> bool:
    """An OpenAI client asks for reasoning with reasoning_effort (or a reasoning object)."""
    body = request.openai_body or {}
    return body.get("reasoning_effort") not in (None, "none") or isinstance(body.get("reasoning"), dict)
