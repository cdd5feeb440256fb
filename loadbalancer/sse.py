"""Server-sent events framing: upstream bytes into events, events into frames.

Pure: no network, no Flask. The decoder keeps each frame's raw bytes so a passthrough
stream can forward them untouched, and parses JSON only when someone asks for it.
"""

from __future__ import annotations

from typing import Iterable, Iterator, NamedTuple

import orjson

# Anthropic streams put the event type on its own line; OpenAI streams only send `data:`.
_EVENT_PREFIX = b"event:"
_DATA_PREFIX = b"data:"
PING_FRAME = b'event: ping\ndata: {"type": "ping"}\n\n'
MAX_PENDING_BYTES = 16 * 1024 * 1024


class SSEFrame(NamedTuple):
    """One server-sent event: its `event:` name (may be empty), its data, its raw bytes.

    A named tuple: made once per upstream frame, it costs half a frozen dataclass to build.
    """

    event: str
    data: bytes
    raw: bytes

    def json(self) -> object:
        """The data decoded as JSON (raises orjson.JSONDecodeError)."""
        return orjson.loads(self.data)


class FrameTooLarge(ValueError):
    """An upstream frame grew beyond MAX_PENDING_BYTES without ending."""


class SSEDecoder:
    """Incremental SSE parser: feed byte chunks of any size, get complete frames."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[SSEFrame]:
        """Frames completed by this chunk, in order."""
        buffer = self._pending + chunk if self._pending else chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):
                # Half of a CRLF, perhaps: the next chunk says. Read as a line end now, a CRLF
                # split between two chunks would be two line ends, and end its frame early.
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        frames = []
        start = 0
        while True:
            end = buffer.find(b"\n\n", start)
            if end < 0:
                break
            frame = _parse_frame(buffer[start:end + 2])
            if frame is not None:
                frames.append(frame)
            start = end + 2
        self._pending = buffer[start:] + held
        if len(self._pending) > MAX_PENDING_BYTES:
            raise FrameTooLarge(f"an SSE frame exceeded {MAX_PENDING_BYTES} bytes")
        return frames

    def finish(self) -> list[SSEFrame]:
        """A last frame the upstream did not terminate with a blank line, if any."""
        rest, self._pending = self._pending.replace(b"\r", b"\n"), b""
        if not rest.strip():
            return []
        frame = _parse_frame(rest.rstrip(b"\n") + b"\n\n")
        return [frame] if frame is not None else []


def _parse_frame(raw: bytes) -> SSEFrame | None:
    """Parse one blank-line-terminated block; comments-only blocks give None."""
    # Fast path for the shape every Anthropic frame has: `event: X`, one `data: ...` line.
    # It halves the decoding cost of a passthrough stream's frames.
    if raw.startswith(b"event: "):
        line_end = raw.find(b"\n")
        if raw.startswith(b"data: ", line_end + 1) and raw.find(b"\n", line_end + 1) == len(raw) - 2:
            return SSEFrame(raw[7:line_end].strip().decode("utf-8", "replace"), raw[line_end + 7:-2], raw)
    # And for an OpenAI chunk's: one `data: ...` line.
    elif raw.startswith(b"data: ") and raw.find(b"\n") == len(raw) - 2:
        return SSEFrame("", raw[6:-2], raw)
    event = ""
    data_lines = []
    for line in raw.split(b"\n"):
        if line.startswith(_DATA_PREFIX):
            value = line[5:]
            data_lines.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(_EVENT_PREFIX):
            event = line[6:].strip().decode("utf-8", "replace")
    if not data_lines and not event:
        return None
    return SSEFrame(event=event, data=b"\n".join(data_lines), raw=raw)


def iter_frames(chunks: Iterable[bytes]) -> Iterator[SSEFrame]:
    """Frames from an iterable of byte chunks (the whole stream)."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.finish()


def encode_event(event: dict) -> bytes:
    """Frame an Anthropic event dict as `event: TYPE` plus `data: JSON`."""
    return b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def encode_data(payload: dict | str) -> bytes:
    """Frame an OpenAI-style `data:` line (a dict as JSON, or a literal such as [DONE])."""
    body = payload.encode() if isinstance(payload, str) else orjson.dumps(payload)
    return b"data: " + body + b"\n\n"
