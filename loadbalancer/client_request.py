"""Validation of what clients send, before any provider is contacted.

Pure: bytes and limits in, a `MessagesRequest` or an `InvalidRequest` out. Only the
fields the load balancer needs are checked strictly; everything else in the body goes to
the provider untouched.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import orjson

from loadbalancer.settings.records import LimitsConfig
from loadbalancer.errors import InvalidRequest, RequestTooLarge


@dataclass(frozen=True)
class MessagesRequest:
    """A validated Anthropic Messages (or count_tokens) request."""

    body: dict
    raw: bytes
    model: str
    stream: bool
    tools: tuple[dict, ...]
    wants_thinking: bool
    # Set when the client spoke OpenAI (the front door): OpenAI providers get it as it is.
    openai_body: dict | None = None
    # Set by a front door that names the conversation itself (Codex's prompt_cache_key).
    affinity_key: str | None = None
    # The same request without thinking, for providers that cannot think: thinking the
    # client only wished for (a Responses reasoning.effort) never rules a provider out.
    without_thinking: MessagesRequest | None = None


# orjson reads 1024 levels of nesting but writes only 254; Python's own recursion stops near 1000.
TOO_DEEP_MESSAGE = ("request body nests too deeply to be forwarded: the load balancer re-encodes JSON "
                    "of at most 254 levels of nested arrays and objects")


@contextmanager
def reencoding_client_body() -> Iterator[None]:
    """A client body that cannot be re-encoded or walked (nested too deep) is a 400, not a 500."""
    try:
        yield
    except (orjson.JSONEncodeError, RecursionError) as err:
        raise InvalidRequest(TOO_DEEP_MESSAGE) from err


def decode_json_object(raw: bytes, limits: LimitsConfig) -> dict:
    """The request body as a JSON object, or a 400/413 saying what is wrong."""
    if len(raw) > limits.max_body_bytes:
        raise RequestTooLarge(
            f"request body is {len(raw)} bytes; the limit is {limits.max_body_bytes} bytes")
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}") from err
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {_json_type(body)}")
    return body


def parse_messages_request(raw: bytes, limits: LimitsConfig, *,
                           count_tokens: bool = False) -> MessagesRequest:
    """Validate a Messages body; count_tokens bodies need no max_tokens."""
    body = decode_json_object(raw, limits)
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: required, a non-empty string")
    _check_messages(body.get("messages"), limits)
    if not count_tokens:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidRequest("max_tokens: required, a positive integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be true or false")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise InvalidRequest("system: must be a string or a list of text blocks")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools):
            raise InvalidRequest("tools: must be a list of objects")
    thinking = body.get("thinking")
    wants_thinking = isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")
    return MessagesRequest(body=body, raw=raw, model=model, stream=stream and not count_tokens,
                           tools=tuple(tools or ()), wants_thinking=wants_thinking)


def _check_messages(messages: object, limits: LimitsConfig) -> None:
    """`messages` must be a non-empty list of {role, content} objects."""
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: required, a non-empty list")
    if len(messages) > limits.max_messages:
        raise RequestTooLarge(
            f"messages: {len(messages)} messages; the limit is {limits.max_messages}")
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{position}]: must be an object")
        if not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{position}].role: required, a string")
        if not isinstance(message.get("content"), (str, list)):
            raise InvalidRequest(f"messages[{position}].content: required, a string or a list of blocks")


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    return {list: "an array", str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def estimate_input_tokens(body: dict) -> int:
    """A rough token count (about four bytes a token) for backends that cannot count."""
    counted = {key: body.get(key) for key in ("system", "messages", "tools")}
    with reencoding_client_body():
        return max(1, len(orjson.dumps(counted)) // 4)
