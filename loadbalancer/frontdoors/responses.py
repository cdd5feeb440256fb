"""The OpenAI Responses front door: `POST /v1/responses` (Codex CLI) served by any provider.

The Responses body is translated once to an Anthropic body and goes through the same failover
loop as a Messages request; every provider type answers in the Anthropic dialect (text tool
calls already rewritten into tool_use blocks), which is translated back into a `response`
object or the Responses stream events. Stateless: the whole conversation comes in `input`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterator, Mapping

import orjson

from loadbalancer.client_request import (MessagesRequest, decode_json_object, parse_messages_request,
                                         reencoding_client_body)
from loadbalancer.errors import InvalidRequest, LoadBalancerError
from loadbalancer.providers.base import UNREADABLE_ANSWER_ERRORS
from loadbalancer.request_record import RequestRecord
from loadbalancer.routing.failover import JSON_CONTENT_TYPE, SSE_CONTENT_TYPE, ProxyResult, forward_to_provider
from loadbalancer.runtime import Runtime
from loadbalancer.frontdoors.answer_events import PING_COMMENT, event_batches, stream_frames
from loadbalancer.sse import encode_event
from loadbalancer.translation.messages_to_responses_answer import error_body, messages_to_responses
from loadbalancer.translation.messages_to_responses_stream import ResponsesStream
from loadbalancer.translation.responses_to_messages_request import (DEFAULT_MAX_TOKENS, TranslatedRequest,
                                                                    responses_to_messages)

DROPPED_TOOLS_HEADER = "x-lb-dropped-tools"
MAX_REPORTED_NAME_LENGTH = 64
_UNPRINTABLE = re.compile(r"[^A-Za-z0-9_.:/-]")


def forward_response(runtime: Runtime, raw: bytes, client_headers: Mapping[str, str],
                     record: RequestRecord) -> ProxyResult:
    """Serve one Responses request from the configured providers."""
    limits = runtime.config.limits
    body = decode_json_object(raw, limits)
    default_max_tokens = _default_max_tokens(runtime, body.get("model"))
    with reencoding_client_body():
        translated = _translate(body, default_max_tokens)
        request = _messages_request(runtime, body, translated, default_max_tokens)
    record.model, record.stream = request.model, request.stream
    record.dropped_tools = [_printable_name(name) for name in translated.dropped_tools]
    headers = {DROPPED_TOOLS_HEADER: ", ".join(record.dropped_tools)} if record.dropped_tools else {}
    result = forward_to_provider(runtime, request, client_headers, record)
    if result.status != 200:
        return _error_result(result, headers)
    if not request.stream:
        try:
            answer = messages_to_responses(orjson.loads(result.body), translated)
        except UNREADABLE_ANSWER_ERRORS as err:
            raise LoadBalancerError(f"provider {result.provider}'s answer could not be translated into a "
                                    f"response ({type(err).__name__})", status=502) from err
        return ProxyResult(200, {"content-type": JSON_CONTENT_TYPE, **headers}, orjson.dumps(answer),
                           result.provider)
    events = _responses_events(stream_frames(result.body), ResponsesStream(translated))
    return ProxyResult(200, {"content-type": SSE_CONTENT_TYPE, "cache-control": "no-cache", **headers},
                       events, result.provider)


def _printable_name(name: str) -> str:
    """A tool name as it may appear in a header and a log line (client text, so no CR/LF)."""
    return _UNPRINTABLE.sub("_", name)[:MAX_REPORTED_NAME_LENGTH] or "_"


def _translate(body: dict, default_max_tokens: int, **overrides) -> TranslatedRequest:
    """The Anthropic translation, or a 400 that says what the client must change."""
    try:
        return responses_to_messages({**body, **overrides}, default_max_tokens=default_max_tokens)
    except ValueError as err:
        raise InvalidRequest(str(err)) from err


def _messages_request(runtime: Runtime, body: dict, translated: TranslatedRequest,
                      default_max_tokens: int) -> MessagesRequest:
    """The validated Messages request, with its affinity key and a version without thinking."""
    limits = runtime.config.limits
    request = parse_messages_request(orjson.dumps(translated.body), limits, decoded=translated.body)
    without_thinking = None
    if "thinking" in translated.body:
        # reasoning.effort is a wish: a provider that cannot think still serves the request.
        reasoning = {**body["reasoning"], "effort": None}
        plain = _translate(body, default_max_tokens, reasoning=reasoning)
        without_thinking = parse_messages_request(orjson.dumps(plain.body), limits, decoded=plain.body)
    return dataclasses.replace(request, affinity_key=translated.affinity_key, without_thinking=without_thinking)


def _default_max_tokens(runtime: Runtime, model: object) -> int:
    """max_tokens when the client sets none (Codex never does): what every serving provider takes."""
    serving = runtime.balancer.serving(model) if isinstance(model, str) else []
    limits = [provider.capabilities.max_output_tokens for provider in serving
              if provider.capabilities.max_output_tokens is not None]
    return min([DEFAULT_MAX_TOKENS, *limits])


def _responses_events(frames: Iterator[bytes], stream: ResponsesStream) -> Iterator[bytes]:
    """Anthropic SSE bytes in, Responses events out; always ends with a terminal event.

    A frame that cannot be translated ends the stream with `error` and `response.failed`, never a cut.
    """
    batches = event_batches(frames)
    try:
        try:
            for batch in batches:
                out = [PING_COMMENT] if None in batch else []
                out += [encode_event(produced) for event in batch if event is not None
                        for produced in stream.feed(event)]
                if out:
                    yield b"".join(out)
            yield b"".join(encode_event(event) for event in stream.finish())
        except UNREADABLE_ANSWER_ERRORS as err:
            error = {"type": "api_error", "message": "the provider's stream could not be translated into "
                                                    f"Responses events ({type(err).__name__})"}
            yield b"".join(encode_event(event) for event in stream.fail(error))
    finally:
        batches.close()


def _error_result(result: ProxyResult, headers: dict[str, str]) -> ProxyResult:
    """A provider's error answer (Anthropic format) in the OpenAI error format."""
    try:
        error = orjson.loads(result.body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        error = {"type": "api_error", "message": "provider error"}
    body = orjson.dumps(error_body(result.status, error))
    return ProxyResult(result.status, {"content-type": JSON_CONTENT_TYPE, **headers}, body, result.provider)


def responses_error_response_body(err: LoadBalancerError) -> dict:
    """The front door's body for one of our own errors."""
    body = error_body(err.status, {"type": err.error_type, "message": err.message})
    if err.code is not None:
        body["error"].update(type="invalid_request_error", code=err.code)
    return body
