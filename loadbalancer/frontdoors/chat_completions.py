"""The OpenAI-compatible front door: `POST /v1/chat/completions` served by any provider.

The OpenAI body is translated once to an Anthropic body and goes through the same
failover loop as a Messages request. OpenAI providers get the client's body as it is (only
the model renamed); answers from Anthropic providers are translated back to OpenAI JSON
or OpenAI chunks ending in `data: [DONE]`.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Mapping

import orjson

from loadbalancer.client_request import decode_json_object, parse_messages_request, reencoding_client_body
from loadbalancer.errors import InvalidRequest, LoadBalancerError
from loadbalancer.providers.base import UNREADABLE_ANSWER_ERRORS
from loadbalancer.request_record import RequestRecord
from loadbalancer.routing.failover import JSON_CONTENT_TYPE, SSE_CONTENT_TYPE, ProxyResult, forward_to_provider
from loadbalancer.runtime import Runtime
from loadbalancer.frontdoors.answer_events import PING_COMMENT, event_batches, stream_frames
from loadbalancer.sse import encode_data
from loadbalancer.translation.chat_to_messages_request import openai_to_anthropic_request
from loadbalancer.translation.messages_to_chat_answer import (AnthropicToOpenAIStream, anthropic_to_openai_response,
                                                             openai_error_body)

DONE_FRAME = b"data: [DONE]\n\n"


def forward_chat_completion(runtime: Runtime, raw: bytes, client_headers: Mapping[str, str],
                            record: RequestRecord) -> ProxyResult:
    """Serve one OpenAI chat completion request from the configured providers."""
    limits = runtime.config.limits
    body = decode_json_object(raw, limits)
    with reencoding_client_body():
        try:
            anthropic_body = openai_to_anthropic_request(body)
        except ValueError as err:
            raise InvalidRequest(str(err)) from err
        request = parse_messages_request(orjson.dumps(anthropic_body), limits, decoded=anthropic_body)
    request = dataclasses.replace(request, openai_body=body)
    record.model, record.stream = request.model, request.stream
    result = forward_to_provider(runtime, request, client_headers, record)
    if result.dialect == "openai":
        return result
    if result.status != 200:
        return _error_result(result)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage")) \
        if isinstance(body.get("stream_options"), dict) else False
    if not request.stream:
        try:
            translated = anthropic_to_openai_response(orjson.loads(result.body), request.model)
        except UNREADABLE_ANSWER_ERRORS as err:
            raise LoadBalancerError(f"provider {result.provider}'s answer could not be translated into a chat "
                                    f"completion ({type(err).__name__})", status=502) from err
        return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE}, orjson.dumps(translated),
                           result.provider, "openai")
    chunks = _openai_chunks(stream_frames(result.body), AnthropicToOpenAIStream(request.model, include_usage))
    return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache"},
                       chunks, result.provider, "openai")


def _openai_chunks(frames: Iterator[bytes], converter: AnthropicToOpenAIStream) -> Iterator[bytes]:
    """Anthropic SSE bytes in, OpenAI `data:` chunks out, ending with [DONE].

    A frame that cannot be translated ends the stream with an error chunk, never a cut.
    """
    batches = event_batches(frames)
    try:
        try:
            yield from _translated_chunks(batches, converter)
        except UNREADABLE_ANSWER_ERRORS as err:
            error = openai_error_body(502, "the provider's stream could not be translated into chat "
                                      f"completion chunks ({type(err).__name__})", "api_error")
            yield encode_data(error) + DONE_FRAME
    finally:
        batches.close()


def _translated_chunks(batches: Iterator[list[dict | None]], converter: AnthropicToOpenAIStream) -> Iterator[bytes]:
    """The chunks of each batch of Anthropic events; an error chunk ends the stream."""
    for batch in batches:
        out = []
        for event in batch:
            if event is None:
                out.append(PING_COMMENT)
                continue
            for chunk in converter.feed(event):
                out.append(encode_data(chunk))
                if "error" in chunk:
                    out.append(DONE_FRAME)
                    yield b"".join(out)
                    return
        if out:
            yield b"".join(out)
    yield b"".join(encode_data(chunk) for chunk in converter.finish()) + DONE_FRAME


def _error_result(result: ProxyResult) -> ProxyResult:
    """A provider's error answer (Anthropic format) in OpenAI's error format."""
    try:
        error = orjson.loads(result.body)["error"]
        message, error_type = str(error.get("message")), str(error.get("type"))
    except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
        message, error_type = "provider error", "api_error"
    body = orjson.dumps(openai_error_body(result.status, message, error_type))
    return ProxyResult(result.status, {"content-type": JSON_CONTENT_TYPE}, body, result.provider, "openai")


def openai_error_response_body(err: LoadBalancerError) -> dict:
    """The front door's body for one of our own errors."""
    if err.code is not None:
        return {"error": {"message": err.message, "type": "invalid_request_error", "param": None, "code": err.code}}
    return openai_error_body(err.status, err.message, err.error_type)
