"""The routing fields of a large Messages body, read without building the body.

A mid-session agent turn is 100 KB to 1 MB, almost all of it history the load balancer
forwards unread: tool inputs, tool results, source code. msgspec decodes the body into the
few structures below and steps over everything else in C without creating a Python object
for it. On the 270 KB bench turn the decoding takes ~115 µs, reading the kept fields ~80 µs
(the 18 tools alone ~30), against ~290 µs for orjson building it whole and walking it.

The scan reads what `client_request` reads, the same way: the values the checks compare
(model, max_tokens, stream, each message's role and content shape, each block's type) are
decoded by msgspec; values that are kept or looked into (system, tools, thinking, metadata,
the first user turn's texts, a thinking block's signature, a tool result's list content)
are kept as raw JSON slices and read by orjson, as the orjson path reads them. The system
prompt and the tools, which an agent repeats every turn, are read once per distinct value.

The scan only answers for a body it accepts. Anything else (not JSON, a field of another
shape, a check that fails) gives None, and the caller reads the body with orjson, whose
checks say what is wrong: one set of error messages, whichever way a body came.

msgspec checks the JSON syntax of what it steps over, not the UTF-8 of its strings (checked
here for the whole body) nor the range of its numbers: a number like 1e400 in a tool's input
goes to the provider as written, like every field the load balancer does not read.
"""

from __future__ import annotations

import codecs
import functools
import re
from typing import Any, Union

import msgspec
import orjson

NOT_SENT = msgspec.Raw(b"null")  # a field the body does not have reads as JSON null
_OPENING_BRACKET, _OPENING_BRACE = ord("["), ord("{")
_JSON_SYNTAX_ERRORS = (msgspec.DecodeError, orjson.JSONDecodeError)
UTF8_PIECE_BYTES = 16 * 1024  # a body that is not all ASCII is checked piece by piece
# An agent sends the same system prompt and tools every turn (on the bench turn 18 KB and 13 KB,
# ~50 µs to read): from this size on each distinct value is read once per worker, and found
# again by its bytes (~3 µs to hash). A few sessions' worth is kept.
SHARED_READ_FROM_BYTES = 2048
SHARED_READS_KEPT = 64
# Claude Code (and every client that writes the model first) opens its body this way.
_MODEL_AT_HEAD = re.compile(rb'\s*\{\s*"model"\s*:\s*"([^"\\]{1,256})"')


class _Block(msgspec.Struct):
    """A content block: its type, the rest kept raw for the few blocks looked into."""

    type: Any = None
    text: msgspec.Raw = NOT_SENT
    signature: msgspec.Raw = NOT_SENT
    content: msgspec.Raw = NOT_SENT


class _Message(msgspec.Struct):
    role: str
    content: Union[str, list[_Block]]


class _Body(msgspec.Struct):
    """The top-level fields the load balancer reads; every other one is stepped over."""

    model: str
    messages: list[_Message]
    max_tokens: msgspec.Raw = NOT_SENT
    stream: bool = False
    system: msgspec.Raw = NOT_SENT
    tools: msgspec.Raw = NOT_SENT
    thinking: msgspec.Raw = NOT_SENT
    metadata: msgspec.Raw = NOT_SENT


class _TypeOnly(msgspec.Struct):
    type: Any = None


_BODY = msgspec.json.Decoder(_Body)
_RAW_ITEMS = msgspec.json.Decoder(list[msgspec.Raw])
_TYPE_ONLY = msgspec.json.Decoder(_TypeOnly)


class ScannedBody:
    """What the scan found: the top-level fields as orjson reads them, and what the messages hold."""

    __slots__ = ("fields", "message_count", "has_images", "has_unsigned_thinking", "first_user")

    def __init__(self, body: _Body) -> None:
        self.fields = {"model": body.model, "max_tokens": _read(body.max_tokens), "stream": body.stream,
                       "system": _read_repeated(body.system), "tools": _read_repeated(body.tools),
                       "thinking": _read(body.thinking), "metadata": _read(body.metadata)}
        self.message_count = len(body.messages)
        self._note_messages(body.messages)

    def _note_messages(self, messages: list[_Message]) -> None:
        """Images, unsigned assistant thinking and the first user turn (one loop: ~130 turns on the bench)."""
        has_images = has_unsigned_thinking = False
        first_user = None
        for message in messages:
            content, role = message.content, message.role
            if first_user is None and role == "user":
                first_user = {"role": "user", "content": _texts_of(content)}
            if content.__class__ is str:
                continue
            for block in content:
                kind = block.type
                if kind == "image":
                    has_images = True
                elif kind == "thinking":
                    if role == "assistant" and not _read(block.signature):
                        has_unsigned_thinking = True
                elif kind == "tool_result" and not has_images:
                    has_images = _holds_image(block.content)
        self.has_images, self.has_unsigned_thinking, self.first_user = has_images, has_unsigned_thinking, first_user


def scan_messages_body(raw: bytes) -> ScannedBody | None:
    """The fields of a Messages body msgspec could read, or None for orjson to say what is wrong."""
    if not is_utf8(raw):  # msgspec does not check the UTF-8 of strings it steps over
        return None
    try:
        return ScannedBody(_BODY.decode(raw))
    except (*_JSON_SYNTAX_ERRORS, msgspec.ValidationError, RecursionError):
        return None


def is_utf8(raw: bytes, piece_bytes: int = UTF8_PIECE_BYTES) -> bool:
    """Whether raw is valid UTF-8, decoding only the pieces that are not ASCII.

    Decoding a whole 270 KB body with one emoji in it builds a 1 MB string (60-90 µs); an agent
    turn is mostly ASCII, and ASCII bytes are never part of a multi-byte sequence, so only the
    pieces holding other bytes (and the piece after one that ends inside a sequence) are decoded.
    """
    if raw.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    inside_a_sequence = False
    try:
        for start in range(0, len(raw), piece_bytes):
            piece = raw[start:start + piece_bytes]
            if inside_a_sequence or not piece.isascii():
                decoder.decode(piece)
                inside_a_sequence = bool(decoder.getstate()[0])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _read(value: msgspec.Raw) -> Any:
    """A raw slice as orjson reads it."""
    return orjson.loads(memoryview(value))


def _read_repeated(value: msgspec.Raw) -> Any:
    """A field sent unchanged turn after turn (system, tools), read once for all requests that send it.

    Every request sending the same bytes gets the same objects, so they are only ever read:
    the affinity key reads the system prompt's texts (and keeps its digest with it), and the
    tools are looked up by the tool-call parser, never changed. (A body that is built, for a
    translation, is built from its own bytes and owns its objects.)
    """
    if len(value) < SHARED_READ_FROM_BYTES:
        return _read(value)
    return _read_shared(bytes(value))


@functools.lru_cache(maxsize=SHARED_READS_KEPT)
def _read_shared(raw: bytes) -> Any:
    return orjson.loads(raw)  # an error is raised again each time, never kept


def _texts_of(content: str | list[_Block]) -> Any:
    """The first user turn with only its text kept (what the affinity key reads)."""
    if content.__class__ is str:
        return content
    texts = []
    for block in content:
        text = _read(block.text)
        if isinstance(text, str):
            texts.append({"text": text})
    return texts


def _holds_image(tool_result_content: msgspec.Raw) -> bool:
    """Whether a tool result's content is a list holding an image block."""
    if memoryview(tool_result_content)[0] != _OPENING_BRACKET:  # a raw value is never empty
        return False
    for item in _RAW_ITEMS.decode(tool_result_content):
        if memoryview(item)[0] == _OPENING_BRACE and _TYPE_ONLY.decode(item).type == "image":
            return True
    return False


def model_at_head(raw: bytes) -> str | None:
    """The model named by a body that begins with it, read without reading the rest; else None.

    Only a hint for choosing how to read the body (both readings give the same request): a
    body that names its model later, or twice, or with escapes, gives None or a wrong hint,
    which costs time and never changes a result.
    """
    found = _MODEL_AT_HEAD.match(raw)
    if found is None:
        return None
    try:
        return found.group(1).decode()
    except UnicodeDecodeError:
        return None
