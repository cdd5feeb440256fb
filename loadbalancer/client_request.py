"""Validation of what clients send, before any provider is contacted.

Pure: bytes and limits in, a `MessagesRequest` or an `InvalidRequest` out. Only the
fields the load balancer needs are checked strictly; everything else in the body goes to
the provider untouched.

A Messages body is read once. Below `SCAN_FROM_BYTES` orjson builds it whole
(the fastest reading of a small body, kept for the translations through
`MessagesRequest.body`) and one walk takes the fields, checks them and notes what the
routing needs (images, unsigned thinking, the conversation's first turn). A larger body is
scanned (`body_scan`): only those fields are built, and the history is stepped over. A
body the scan cannot read takes the orjson path, whose checks say what is wrong. A large
body whose providers will build it anyway (they translate it) is built at once instead:
scanning it first would read it twice.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterator, Mapping

import orjson

from loadbalancer.body_scan import ScannedBody, model_at_head, scan_messages_body
from loadbalancer.settings.records import LimitsConfig
from loadbalancer.errors import InvalidRequest, RequestTooLarge

THINKING_TYPES = ("enabled", "adaptive")  # a tuple: a client's type may be any JSON value, even unhashable
_NOTED_BLOCKS = ("image", "thinking", "tool_result")  # the walk looks closer at these only
# Built, a 270 KB turn holds 1.6 times its size again in objects, for the request's life (a
# stream's too), and a thousand open streams would hold that many. So bodies from this size on
# are scanned, and a body forwarded as the client sent it is never built; one its providers
# translate is built once (at once when its model says so, else when the translation asks) and
# kept while the request runs. Below this size building is as fast as scanning (1.3 KB, 5 µs).
SCAN_FROM_BYTES = 64 * 1024
HEADER_LINE_OVERHEAD = 4  # ": " and CRLF per header line
# The body's headers, which WSGI keeps under CGI names; werkzeug lists these, not HTTP_ copies.
_CGI_HEADER_KEYS = ("CONTENT_TYPE", "CONTENT_LENGTH")
_SHADOWED_HEADER_KEYS = ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")


def header_lines_size(environ: Mapping[str, Any]) -> int:
    """How long the request's headers are as `Name: value` lines, from a WSGI environ.

    The headers werkzeug's `request.headers` lists, counted from their environ keys: a name is
    as long as its key without `HTTP_` (the server only changed its case and dashes), so no
    header name is rebuilt for a size nobody reads otherwise (Claude Code's 21 headers: 4.0 µs
    against 9.4 through werkzeug, measured on their own).
    """
    size = 0
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key not in _SHADOWED_HEADER_KEYS:
                size += len(key) - 5 + len(value) + HEADER_LINE_OVERHEAD
        elif key in _CGI_HEADER_KEYS and value:
            size += len(key) + len(value) + HEADER_LINE_OVERHEAD
    return size


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
    # What names the conversation, and nothing else: metadata.user_id, the system prompt and the
    # text of the first user turn (the affinity key reads only these, and of the system its text).
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
        try:
            return orjson.loads(self.raw)
        except orjson.JSONDecodeError as err:  # JSON the scan steps over but orjson refuses (1e400)
            raise InvalidRequest(f"request body is not valid JSON: {err}") from err


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
                           decoded: dict | None = None,
                           builds_body: Callable[[str], bool] | None = None) -> MessagesRequest:
    """Validate a Messages body; count_tokens bodies need no max_tokens.

    :param decoded: the body as a dict, when the caller built it already (a front door).
    :param builds_body: whether the providers of a model will build the whole body (they
        translate it). A large body that names such a model at its head is then built now,
        once, not scanned now and built again later (on the 270 KB turn: 250 µs, not 420).
    """
    if decoded is not None:
        return _read_fields(decoded, raw, limits, count_tokens, decoded)
    _check_size(raw, limits)
    small = len(raw) < SCAN_FROM_BYTES
    built_later = not small and builds_body is not None and _names_a_model_built_later(raw, builds_body)
    if not small and not built_later:
        scanned = scan_messages_body(raw)
        if scanned is not None and _passes_checks(scanned, limits, count_tokens):
            walk = _MessagesWalk(scanned.has_images, scanned.has_unsigned_thinking, scanned.first_user)
            return _request_from(raw, scanned.fields, walk, count_tokens, None)
    body = _loads_object(raw)
    return _read_fields(body, raw, limits, count_tokens, body if small or built_later else None)


def _names_a_model_built_later(raw: bytes, builds_body: Callable[[str], bool]) -> bool:
    model = model_at_head(raw)
    return model is not None and builds_body(model)


def _check_size(raw: bytes, limits: LimitsConfig) -> None:
    if len(raw) > limits.max_body_bytes:
        raise RequestTooLarge(
            f"request body is {len(raw)} bytes; the limit is {limits.max_body_bytes} bytes")
    if not raw.strip():
        raise InvalidRequest("request body is empty; expected a JSON object")


def _read_fields(body: dict, raw: bytes, limits: LimitsConfig, count_tokens: bool,
                 decoded: dict | None) -> MessagesRequest:
    """Check and take the fields the service needs from the built body."""
    _check_top_level(body, count_tokens)
    walk = _walk_messages(body.get("messages"), limits)
    return _request_from(raw, body, walk, count_tokens, decoded)


def _check_top_level(fields: dict, count_tokens: bool) -> None:
    """The top-level fields the service reads, of a built body or a scan's."""
    model = fields.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("model: required, a non-empty string")
    max_tokens = fields.get("max_tokens")
    if not count_tokens and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
        raise InvalidRequest("max_tokens: required, a positive integer")
    if not isinstance(fields.get("stream", False), bool):
        raise InvalidRequest("stream: must be true or false")
    system = fields.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise InvalidRequest("system: must be a string or a list of text blocks")
    tools = fields.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(tool, dict) for tool in tools)):
        raise InvalidRequest("tools: must be a list of objects")


def _passes_checks(scanned: ScannedBody, limits: LimitsConfig, count_tokens: bool) -> bool:
    """Whether a scanned body passes every check (one that does not is read again, for the error)."""
    try:
        _check_top_level(scanned.fields, count_tokens)
    except InvalidRequest:
        return False
    return 0 < scanned.message_count <= limits.max_messages


def _request_from(raw: bytes, fields: dict, walk: _MessagesWalk, count_tokens: bool,
                  decoded: dict | None) -> MessagesRequest:
    """The checked request, from a built body's fields or a scan's."""
    max_tokens, thinking, system = fields.get("max_tokens"), fields.get("thinking"), fields.get("system")
    return MessagesRequest(
        raw=raw, model=fields["model"], stream=fields.get("stream", False) and not count_tokens,
        tools=tuple(fields.get("tools") or ()),
        wants_thinking=isinstance(thinking, dict) and thinking.get("type") in THINKING_TYPES,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else 0,
        has_images=walk.has_images, has_unsigned_thinking=walk.has_unsigned_thinking,
        # The system prompt as sent (the key reads only its texts): an agent's is one object
        # shared by every turn that sends it (body_scan), and copying its texts cost ~7 µs a turn.
        affinity_fields={"metadata": _user_id_only(fields.get("metadata")), "system": system,
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
    if not isinstance(messages, list) or not len(messages):
        raise InvalidRequest("messages: required, a non-empty list")
    if len(messages) > limits.max_messages:
        raise RequestTooLarge(
            f"messages: {len(messages)} messages; the limit is {limits.max_messages}")
    walk = _MessagesWalk()
    for position, message in enumerate(messages):
        if not isinstance(message, dict):
            raise InvalidRequest(f"messages[{position}]: must be an object")
        role = message.get("role")
        if not isinstance(role, str):
            raise InvalidRequest(f"messages[{position}].role: required, a string")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise InvalidRequest(f"messages[{position}].content: required, a string or a list of blocks")
        if walk.first_user is None and role == "user":
            walk.first_user = {"role": role, "content": _texts_only(content)}
        if content.__class__ is not str:
            for block in content:
                if isinstance(block, dict) and block.get("type") in _NOTED_BLOCKS:
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
        if isinstance(inner, list):
            walk.has_images = any(isinstance(item, dict) and item.get("type") == "image" for item in inner)


def _user_id_only(metadata: Any) -> dict | None:
    """The part of `metadata` that names a conversation."""
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        return {"user_id": metadata.get("user_id")}
    return None


def _texts_only(content: Any) -> Any:
    """A system prompt or message content with only its text kept (all the affinity key reads)."""
    if isinstance(content, list):
        return [{"text": block.get("text")} for block in content
                if isinstance(block, dict) and isinstance(block.get("text"), str)]
    return content if isinstance(content, str) else None


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if isinstance(value, list):
        return "an array"
    return {str: "a string", bool: "a boolean", int: "a number",
            float: "a number", type(None): "null"}.get(type(value), type(value).__name__)


def estimate_input_tokens(body: dict) -> int:
    """A rough token count (about four bytes a token) for backends that cannot count."""
    counted = {key: body.get(key) for key in ("system", "messages", "tools")}
    with reencoding_client_body():
        return max(1, len(orjson.dumps(counted)) // 4)
