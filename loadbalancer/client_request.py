"""Validation of what clients send, before any provider is contacted.

Pure: bytes and limits in, a `MessagesRequest` or an `InvalidRequest` out. Only the
fields the load balancer needs are checked strictly; everything else in the body goes to
the provider untouched.

A Messages body is read once. One walk takes the fields, checks them and notes what the
routing needs (images, unsigned thinking, the conversation's first turn). Bodies up to
`LAZY_PARSE_FROM_BYTES` are built whole by orjson, which is the fastest reading there (a
small one keeps its dict for the translations, through `MessagesRequest.body`; see
`KEEP_BUILT_BODY_BELOW_BYTES` for why larger ones do not); larger ones are read
with simdjson without building them as Python objects, since a passthrough needs a dozen
fields of a megabyte of history. Measured per parse (walk included): 1.3 KB 5.3 µs orjson
against 15.8 µs simdjson, 270 KB 242 against 305 µs, 1 MB 809 against 790 µs. simdjson
refuses a few documents orjson reads (integers beyond 64 bits, a byte order mark it would
accept): those take orjson's path, through the same checks, so both readings agree.
"""

from __future__ import annotations

import queue
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Iterator

import orjson
import simdjson

from loadbalancer.settings.records import LimitsConfig
from loadbalancer.errors import InvalidRequest, RequestTooLarge

THINKING_TYPES = frozenset({"enabled", "adaptive"})
_OBJECTS = (dict, simdjson.Object)
_ARRAYS = (list, simdjson.Array)
_CONTENTS = (str, list, simdjson.Array)
_NOTED_BLOCKS = frozenset({"image", "thinking", "tool_result"})  # the walk looks closer at these only
_BYTE_ORDER_MARK = b"\xef\xbb\xbf"
# Below this, simdjson's per-field proxies cost more than orjson building the whole body.
LAZY_PARSE_FROM_BYTES = 640 * 1024
# A built body is kept for the request's life (a stream's too) only while it is small: built,
# a 270 KB turn holds 1.6 times its size again in objects, and a thousand open streams would
# hold that many. Larger bodies are built again by the translations that need them.
KEEP_BUILT_BODY_BELOW_BYTES = 64 * 1024
# A parser owns its document until the next parse, so each parse takes one of its own; under
# gevent one request parses at a time and one parser is reused, under threads a few.
_PARSERS: queue.SimpleQueue = queue.SimpleQueue()


@dataclass(frozen=True)
class MessagesRequest:
    """A validated Anthropic Messages (or count_tokens) request."""

    raw: bytes
    model: str
    stream: bool
    tools: tuple[dict, ...]
    wants_thinking: bool
    max_tokens: int = 0
    has_images: bool = False  # an image block anywhere, tool results included
    has_unsigned_thinking: bool = False  # an assistant thinking block without a signature
    # What names the conversation, and nothing else: metadata.user_id and the text of the
    # system prompt and of the first user turn (the affinity key reads only these).
    affinity_fields: dict = field(default_factory=dict, repr=False, compare=False)
    # Set when the client spoke OpenAI (the front door): OpenAI providers get it as it is.
    openai_body: dict | None = None
    # Set by a front door that names the conversation itself (Codex's prompt_cache_key).
    affinity_key: str | None = None
    # The same request without thinking, for providers that cannot think: thinking the
    # client only wished for (a Responses reasoning.effort) never rules a provider out.
    without_thinking: MessagesRequest | None = None
    decoded: dict | None = field(default=None, repr=False, compare=False)  # the body, when built already

    @cached_property
    def body(self) -> dict:
        """The whole body as a dict, built on first use (translations need it; passthrough does not)."""
        if self.decoded is not None:
            return self.decoded
        return orjson.loads(self.raw)


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
    _check_size(raw, limits)
    return _loads_object(raw)


def _loads_object(raw: bytes) -> dict:
    """orjson's reading of a body whose size was checked: a JSON object, or a 400."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidRequest(f"request body is not valid JSON: {err}") from err
    if not isinstance(body, dict):
        raise InvalidRequest(f"request body must be a JSON object, not {_json_type(body)}")
    return body


def parse_messages_request(raw: bytes, limits: LimitsConfig, *, count_tokens: bool = False,
                           decoded: dict | None = None) -> MessagesRequest:
    """Validate a Messages body; count_tokens bodies need no max_tokens.

    :param decoded: the body as a dict, when the caller built it already (a front door).
    """
    if decoded is not None:
        return _read_fields(decoded, raw, limits, count_tokens, decoded)
    _check_size(raw, limits)
    if len(raw) < LAZY_PARSE_FROM_BYTES or raw.startswith(_BYTE_ORDER_MARK):
        body = _loads_object(raw)
        kept = body if len(raw) < KEEP_BUILT_BODY_BELOW_BYTES else None
        return _read_fields(body, raw, limits, count_tokens, kept)
    parser = _take_parser()
    try:
        try:
            document = parser.parse(raw)
        except (ValueError, RuntimeError):  # not JSON, or JSON simdjson cannot hold: orjson says which
            return _read_fields(_loads_object(raw), raw, limits, count_tokens, None)
        if not isinstance(document, simdjson.Object):
            raise InvalidRequest(f"request body must be a JSON object, not {_json_type(document)}")
        return _read_fields(document, raw, limits, count_tokens, None)
    finally:
        _PARSERS.put(parser)


def _take_parser() -> simdjson.Parser:
    try:
        return _PARSERS.get_nowait()
    except queue.Empty:
        return simdjson.Parser()


def _check_size(raw: bytes, limits: LimitsConfig) -> None:
    if len(raw) > limits.max_body_bytes:
        raise RequestTooLarge(
            f"request body is {len(raw)} bytes; the limit is {limits.max_body_bytes} bytes")
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")


def _read_fields(body: Any, raw: bytes, limits: LimitsConfig, count_tokens: bool,
                 decoded: dict | None) -> MessagesRequest:
    """Check and take the fields the service needs, from a dict or a simdjson object alike."""
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: required, a non-empty string")
    max_tokens = body.get("max_tokens")
    if not count_tokens and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InvalidRequest("max_tokens: required, a positive integer")
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("stream: must be true or false")
    system = body.get("system")
    if system is not None and not isinstance(system, (str, *_ARRAYS)):
        raise InvalidRequest("system: must be a string or a list of text blocks")
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, _ARRAYS) or not all(isinstance(tool, _OBJECTS) for tool in tools)):
        raise InvalidRequest("tools: must be a list of objects")
    walk = _walk_messages(body.get("messages"), limits)
    thinking = body.get("thinking")
    metadata = body.get("metadata")
    return MessagesRequest(
        raw=raw, model=model, stream=stream and not count_tokens, tools=tuple(_plain(tools) or ()),
        wants_thinking=isinstance(thinking, _OBJECTS) and thinking.get("type") in THINKING_TYPES,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0,
        has_images=walk.has_images, has_unsigned_thinking=walk.has_unsigned_thinking,
        affinity_fields={"metadata": _user_id_only(metadata), "system": _texts_only(system),
                         # A history without a user turn still names a conversation (by its system prompt).
                         "messages": [walk.first_user if walk.first_user is not None else {}]},
        decoded=decoded)


@dataclass
class _MessagesWalk:
    """What one pass over `messages` found."""

    has_images: bool = False
    has_unsigned_thinking: bool = False
    first_user: dict | None = None


def _walk_messages(messages: Any, limits: LimitsConfig) -> _MessagesWalk:
    """`messages` must be a non-empty list of {role, content} objects; note images and thinking."""
    if not isinstance(messages, _ARRAYS) or not len(messages):
        raise InvalidRequest("messages: required, a non-empty list")
    if len(messages) > limits.max_messages:
        raise RequestTooLarge(
            f"messages: {len(messages)} messages; the limit is {limits.max_messages}")
    walk = _MessagesWalk()
    for position, message in enumerate(messages):
        if not isinstance(message, _OBJECTS):
            raise InvalidRequest(f"messages[{position}]: must be an object")
        role = message.get("role")
        if not isinstance(role, str):
            raise InvalidRequest(f"messages[{position}].role: required, a string")
        content = message.get("content")
        if not isinstance(content, _CONTENTS):
            raise InvalidRequest(f"messages[{position}].content: required, a string or a list of blocks")
        if walk.first_user is None and role == "user":
            walk.first_user = {"role": role, "content": _texts_only(content)}
        if content.__class__ is not str:
            for block in content:
                if isinstance(block, _OBJECTS) and block.get("type") in _NOTED_BLOCKS:
                    _note_block(block, role, walk)
    return walk


def _note_block(block: Any, role: str, walk: _MessagesWalk) -> None:
    """An image (also inside a tool result) or unsigned assistant thinking."""
    block_type = block.get("type")
    if block_type == "image":
        walk.has_images = True
    elif block_type == "thinking" and role == "assistant" and not block.get("signature"):
        walk.has_unsigned_thinking = True
    elif block_type == "tool_result" and not walk.has_images:
        inner = block.get("content")
        if isinstance(inner, _ARRAYS):
            walk.has_images = any(isinstance(item, _OBJECTS) and item.get("type") == "image" for item in inner)


def _user_id_only(metadata: Any) -> dict | None:
    """The part of `metadata` that names a conversation."""
    if isinstance(metadata, _OBJECTS) and isinstance(metadata.get("user_id"), str):
        return {"user_id": metadata.get("user_id")}
    return None


def _texts_only(content: Any) -> Any:
    """A system prompt or message content with only its text kept (all the affinity key reads)."""
    if isinstance(content, _ARRAYS):
        return [{"text": block.get("text")} for block in content
                if isinstance(block, _OBJECTS) and isinstance(block.get("text"), str)]
    return content if isinstance(content, str) else None


def _plain(value: Any) -> Any:
    """A simdjson value as plain Python objects (dicts and lists); anything else as it is."""
    if isinstance(value, simdjson.Object):
        return value.as_dict()
    if isinstance(value, simdjson.Array):
        return value.as_list()
    return value


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, _ARRAYS):
        return "an array"
    return {str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def estimate_input_tokens(body: dict) -> int:
    """A rough token count (about four bytes a token) for backends that cannot count."""
    counted = {key: body.get(key) for key in ("system", "messages", "tools")}
    with reencoding_client_body():
        return max(1, len(orjson.dumps(counted)) // 4)
