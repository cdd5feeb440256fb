"""AWS event-stream framing (`application/vnd.amazon.eventstream`): decode and encode.

Bedrock's InvokeModelWithResponseStream answers with this binary framing instead of SSE.
Each message is: prelude (total length u32, headers length u32, CRC32 of those 8 bytes),
headers, payload, and a CRC32 of everything before it. All integers are big-endian.

Pure: no network. `EventStreamDecoder.feed()` takes chunks cut at any byte and returns the
messages they complete; any corruption raises `EventStreamError` and the decoder stays
broken (a byte stream cannot be resynchronised once a length is untrustworthy).
`encode_message()` is the other half of the codec, used by the tests' fake Bedrock.
"""

from __future__ import annotations

import datetime
import struct
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Mapping, Union

PRELUDE_LENGTH = 12  # total length, headers length, prelude CRC
MESSAGE_CRC_LENGTH = 4
MINIMUM_MESSAGE_LENGTH = PRELUDE_LENGTH + MESSAGE_CRC_LENGTH
# The same caps botocore's EventStreamBuffer enforces.
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024
MAX_MESSAGE_LENGTH = MINIMUM_MESSAGE_LENGTH + MAX_HEADERS_LENGTH + MAX_PAYLOAD_LENGTH

# Header value type codes of the event-stream encoding.
TYPE_TRUE = 0
TYPE_FALSE = 1
TYPE_BYTE = 2
TYPE_SHORT = 3
TYPE_INTEGER = 4
TYPE_LONG = 5
TYPE_BYTE_ARRAY = 6
TYPE_STRING = 7
TYPE_TIMESTAMP = 8
TYPE_UUID = 9

_FIXED_WIDTH_FORMATS = {TYPE_BYTE: "!b", TYPE_SHORT: "!h", TYPE_INTEGER: "!i", TYPE_LONG: "!q",
                        TYPE_TIMESTAMP: "!q"}
_INT32_RANGE = range(-(2 ** 31), 2 ** 31)
_UUID_LENGTH = 16
_MAX_NAME_LENGTH = 255
_MAX_VARIABLE_VALUE_LENGTH = 0xFFFF

# Header values as decoded: timestamps are milliseconds since the epoch, uuids 16 raw bytes.
HeaderValue = Union[bool, int, bytes, str]
EncodableValue = Union[bool, int, bytes, str, uuid.UUID, datetime.datetime]


class EventStreamError(ValueError):
    """The byte stream is not a valid AWS event stream."""


class ChecksumMismatch(EventStreamError):
    """A prelude or message CRC32 does not match its bytes."""


class FrameTooLarge(EventStreamError):
    """A prelude announces more headers or payload than the caps allow."""


class MalformedFrame(EventStreamError):
    """Lengths or headers that contradict each other."""


class TruncatedStream(EventStreamError):
    """The stream ended in the middle of a message."""


@dataclass(frozen=True, slots=True)
class EventStreamMessage:
    """One decoded message: its headers (name to value) and its raw payload."""

    headers: dict[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        """`:message-type` (`event`, `exception` or `error`), empty when absent."""
        return str(self.headers.get(":message-type", ""))

    @property
    def event_type(self) -> str:
        """`:event-type` (Bedrock: `chunk`), empty when absent."""
        return str(self.headers.get(":event-type", ""))

    @property
    def exception_type(self) -> str:
        """`:exception-type` (Bedrock: `throttlingException`, ...), empty when absent."""
        return str(self.headers.get(":exception-type", ""))


def _crc32(data: bytes | memoryview, start: int = 0) -> int:
    """CRC32 (the gzip/IEEE one) as an unsigned 32-bit integer."""
    return zlib.crc32(data, start) & 0xFFFFFFFF


class EventStreamDecoder:
    """Incremental decoder: feed byte chunks of any size, get complete messages."""

    def __init__(self, max_message_length: int = MAX_MESSAGE_LENGTH) -> None:
        self._buffer = bytearray()
        self._max_message_length = max_message_length
        self._broken: EventStreamError | None = None

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet make a complete message."""
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[EventStreamMessage]:
        """Messages completed by this chunk, in order (raises EventStreamError)."""
        if self._broken is not None:
            raise self._broken
        self._buffer += chunk
        messages = []
        try:
            while (message := self._next_message()) is not None:
                messages.append(message)
        except EventStreamError as error:
            self._broken = error
            raise
        return messages

    def finish(self) -> None:
        """Call at end of stream: raises TruncatedStream if a message was cut off."""
        if self._broken is not None:
            raise self._broken
        if self._buffer:
            raise TruncatedStream(f"stream ended inside a message "
                                  f"({len(self._buffer)} bytes pending)")

    def _next_message(self) -> EventStreamMessage | None:
        """Take one complete message off the buffer, or None if it is not all here."""
        if len(self._buffer) < PRELUDE_LENGTH:
            return None
        total_length, headers_length = _read_prelude(self._buffer, self._max_message_length)
        if len(self._buffer) < total_length:
            return None
        frame = bytes(self._buffer[:total_length])
        del self._buffer[:total_length]
        return _decode_frame(frame, headers_length)


def _read_prelude(buffer: bytearray, max_message_length: int) -> tuple[int, int]:
    """Validate the prelude's CRC and lengths; return (total length, headers length)."""
    total_length, headers_length, prelude_crc = struct.unpack_from("!III", buffer, 0)
    computed = _crc32(memoryview(buffer)[:8])
    if computed != prelude_crc:
        raise ChecksumMismatch(f"prelude CRC mismatch: frame says {prelude_crc:#010x}, "
                               f"bytes give {computed:#010x}")
    if total_length < MINIMUM_MESSAGE_LENGTH:
        raise MalformedFrame(f"total length {total_length} is below the minimum of "
                             f"{MINIMUM_MESSAGE_LENGTH}")
    if headers_length > total_length - MINIMUM_MESSAGE_LENGTH:
        raise MalformedFrame(f"headers length {headers_length} does not fit in a "
                             f"{total_length}-byte message")
    if headers_length > MAX_HEADERS_LENGTH:
        raise FrameTooLarge(f"headers length {headers_length} exceeds {MAX_HEADERS_LENGTH}")
    payload_length = total_length - MINIMUM_MESSAGE_LENGTH - headers_length
    if payload_length > MAX_PAYLOAD_LENGTH or total_length > max_message_length:
        raise FrameTooLarge(f"message of {total_length} bytes exceeds the cap")
    return total_length, headers_length


def _decode_frame(frame: bytes, headers_length: int) -> EventStreamMessage:
    """Check the message CRC of one whole frame and split it into headers and payload."""
    body_end = len(frame) - MESSAGE_CRC_LENGTH
    (message_crc,) = struct.unpack_from("!I", frame, body_end)
    computed = _crc32(frame[:body_end])
    if computed != message_crc:
        raise ChecksumMismatch(f"message CRC mismatch: frame says {message_crc:#010x}, "
                               f"bytes give {computed:#010x}")
    headers_end = PRELUDE_LENGTH + headers_length
    headers = decode_headers(frame[PRELUDE_LENGTH:headers_end])
    return EventStreamMessage(headers=headers, payload=frame[headers_end:body_end])


def decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """Decode a headers section into a dict (raises MalformedFrame)."""
    headers: dict[str, HeaderValue] = {}
    offset = 0
    while offset < len(data):
        name, offset = _read_name(data, offset)
        value, offset = _read_value(data, offset)
        if name in headers:
            raise MalformedFrame(f"duplicate header {name!r}")
        headers[name] = value
    return headers


def _take(data: bytes, offset: int, length: int) -> tuple[bytes, int]:
    """`length` bytes at `offset`, and the offset after them (raises MalformedFrame)."""
    end = offset + length
    if end > len(data):
        raise MalformedFrame("header runs past the end of the headers section")
    return data[offset:end], end


def _read_name(data: bytes, offset: int) -> tuple[str, int]:
    """A header name: u8 length, then UTF-8 bytes."""
    length, offset = _take(data, offset, 1)
    raw, offset = _take(data, offset, length[0])
    return _utf8(raw), offset


def _read_value(data: bytes, offset: int) -> tuple[HeaderValue, int]:
    """A header value: u8 type code, then the type's encoding."""
    code_byte, offset = _take(data, offset, 1)
    type_code = code_byte[0]
    if type_code in (TYPE_TRUE, TYPE_FALSE):
        return type_code == TYPE_TRUE, offset
    if type_code in _FIXED_WIDTH_FORMATS:
        value_format = _FIXED_WIDTH_FORMATS[type_code]
        raw, offset = _take(data, offset, struct.calcsize(value_format))
        return struct.unpack(value_format, raw)[0], offset
    if type_code in (TYPE_BYTE_ARRAY, TYPE_STRING):
        raw_length, offset = _take(data, offset, 2)
        raw, offset = _take(data, offset, struct.unpack("!H", raw_length)[0])
        return (_utf8(raw) if type_code == TYPE_STRING else raw), offset
    if type_code == TYPE_UUID:
        return _take(data, offset, _UUID_LENGTH)
    raise MalformedFrame(f"unknown header value type {type_code}")


def _utf8(raw: bytes) -> str:
    """Decode UTF-8 or raise MalformedFrame."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedFrame(f"header text is not UTF-8: {raw[:40]!r}") from err


def encode_message(headers: Mapping[str, EncodableValue], payload: bytes) -> bytes:
    """One complete frame with both CRCs (ints become int32, or int64 when too big)."""
    headers_bytes = b"".join(_encode_header(name, value) for name, value in headers.items())
    total_length = MINIMUM_MESSAGE_LENGTH + len(headers_bytes) + len(payload)
    lengths = struct.pack("!II", total_length, len(headers_bytes))
    prelude = lengths + struct.pack("!I", _crc32(lengths))
    body = prelude + headers_bytes + payload
    return body + struct.pack("!I", _crc32(body))


def _encode_header(name: str, value: EncodableValue) -> bytes:
    """One header: name length, name, type code, value."""
    raw_name = name.encode("utf-8")
    if not 0 < len(raw_name) <= _MAX_NAME_LENGTH:
        raise ValueError(f"header name must be 1..{_MAX_NAME_LENGTH} bytes: {name!r}")
    return struct.pack("!B", len(raw_name)) + raw_name + _encode_value(value)


def _encode_value(value: EncodableValue) -> bytes:
    """A typed header value (bool checked before int: bool is an int in Python)."""
    if isinstance(value, bool):
        return struct.pack("!B", TYPE_TRUE if value else TYPE_FALSE)
    if isinstance(value, int):
        code = TYPE_INTEGER if value in _INT32_RANGE else TYPE_LONG
        return struct.pack("!B", code) + struct.pack(_FIXED_WIDTH_FORMATS[code], value)
    if isinstance(value, datetime.datetime):
        milliseconds = int(value.timestamp() * 1000)
        return struct.pack("!Bq", TYPE_TIMESTAMP, milliseconds)
    if isinstance(value, uuid.UUID):
        return struct.pack("!B", TYPE_UUID) + value.bytes
    if isinstance(value, str):
        raw, code = value.encode("utf-8"), TYPE_STRING
    else:
        raw, code = bytes(value), TYPE_BYTE_ARRAY
    if len(raw) > _MAX_VARIABLE_VALUE_LENGTH:
        raise ValueError(f"header value longer than {_MAX_VARIABLE_VALUE_LENGTH} bytes")
    return struct.pack("!BH", code, len(raw)) + raw
