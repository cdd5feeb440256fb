"""Stream pipelines: upstream bytes in, Anthropic SSE frames for the client out.

Pure: no network, no Flask. One pipeline per attempt. Each `feed()` returns the frames it
completed, each marked as content or not, so the forwarding loop can hold everything back
until the first content frame (and fail over invisibly before it). `close_after_failure()`
gives the frames that end a stream cleanly when it breaks after content was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from loadbalancer.errors import UpstreamBadResponse, UpstreamStreamBroken
from loadbalancer.providers.usage import StreamUsage
from loadbalancer.translation.chat_to_messages_stream import OpenAIStreamTranslator
from loadbalancer.sse import SSEDecoder, SSEFrame, encode_event
from loadbalancer.translation.tool_names import ToolNameMap
from loadbalancer.toolcalls.openai_rewrite import ChatChunkRewriter
from loadbalancer.toolcalls.rewrite import ToolCallStats, ToolCallStreamRewriter

_CONTENT_EVENTS = frozenset({"content_block_start", "content_block_delta"})
_USAGE_EVENTS = frozenset({"message_start", "message_delta"})


class OutFrame(NamedTuple):
    """Bytes for the client, and whether they carry content (a named tuple: one per event sent)."""

    data: bytes
    content: bool


class UpstreamErrorEvent(UpstreamStreamBroken):
    """The provider sent an Anthropic `error` event inside its stream."""

    def __init__(self, provider: str, error: dict, frame: bytes) -> None:
        message = str(error.get("message") or "error event in stream")
        super().__init__(provider, f"error event: {error.get('type', 'error')}: {message}")
        self.error = error
        self.frame = frame
        self.retryable = error.get("type") != "invalid_request_error"


@dataclass
class _OpenBlockTracker:
    """Which output block is open, so a broken stream can be closed cleanly."""

    open_index: int | None = None
    finished: bool = False

    def observe(self, event_type: str, index: object) -> None:
        if event_type == "content_block_start" and isinstance(index, int):
            self.open_index = index
        elif event_type == "content_block_stop":
            self.open_index = None
        elif event_type == "message_stop":
            self.finished = True

    def closing_frames(self, error_type: str, message: str) -> list[bytes]:
        frames = []
        if self.open_index is not None:
            frames.append(encode_event({"type": "content_block_stop", "index": self.open_index}))
            self.open_index = None
        frames.append(encode_event({"type": "error", "error": {"type": error_type, "message": message}}))
        self.finished = True
        return frames


class StreamPipeline:
    """What every pipeline shares: SSE decoding, the optional tool-call rewriter, usage, and
    the open-block bookkeeping that lets a broken stream end cleanly."""

    def __init__(self, provider: str, rewriter: ToolCallStreamRewriter | None = None) -> None:
        self.provider = provider
        # An inactive rewriter (no tools, or tool_calls "off") would only cost time.
        self.rewriter = rewriter if rewriter is not None and rewriter.active else None
        self.usage = StreamUsage()
        self._decoder = SSEDecoder()
        self._tracker = _OpenBlockTracker()

    @property
    def tool_call_stats(self) -> ToolCallStats:
        """Text tool calls turned into tool_use blocks so far."""
        return self.rewriter.stats if self.rewriter is not None else ToolCallStats()

    def feed(self, chunk: bytes) -> list[OutFrame]:
        """Frames for the client completed by this chunk."""
        out: list[OutFrame] = []
        for frame in self._decoder.feed(chunk):
            self._handle(frame, out)
        return out

    def close_after_failure(self, error_type: str, message: str) -> list[bytes]:
        """Frames that end the client's stream after a failure mid-stream."""
        if self._tracker.finished:
            return []
        return self._tracker.closing_frames(error_type, message)

    def _finish_decoding(self) -> list[OutFrame]:
        """Frames from a last frame the upstream did not terminate."""
        out: list[OutFrame] = []
        for frame in self._decoder.finish():
            self._handle(frame, out)
        return out

    def _emit(self, events: list[dict], out: list[OutFrame]) -> None:
        """Encode Anthropic events for the client, through the rewriter when there is one."""
        for event in events:
            produced = self.rewriter.feed(event) if self.rewriter is not None else [event]
            for item in produced:
                item_type = item["type"]
                self._tracker.observe(item_type, item.get("index"))
                if item_type in _USAGE_EVENTS:  # what the client got: after rewriting, translation
                    self.usage.observe_anthropic_event(item_type, item)
                out.append(OutFrame(encode_event(item), item_type in _CONTENT_EVENTS))

    def _handle(self, frame: SSEFrame, out: list[OutFrame]) -> None:
        raise NotImplementedError


class AnthropicStreamPipeline(StreamPipeline):
    """An Anthropic provider's stream, forwarded raw unless tool calls must be rewritten."""

    def __init__(self, provider: str, rewriter: ToolCallStreamRewriter | None = None) -> None:
        super().__init__(provider, rewriter)
        self._saw_stop = False

    def end(self) -> list[OutFrame]:
        """The upstream ended; raises when it ended before message_stop."""
        out = self._finish_decoding()
        if not self._saw_stop:
            raise UpstreamStreamBroken(self.provider, "stream ended before message_stop")
        return out

    def _handle(self, frame: SSEFrame, out: list[OutFrame]) -> None:
        if self._saw_stop:
            return  # message_stop ended the message: whatever follows is not part of it
        event_type = frame.event
        if self.rewriter is None and event_type and event_type not in _PARSED_EVENTS:
            out.append(OutFrame(_normalised(frame), event_type in _CONTENT_EVENTS))
            return
        event = _decode_event(self.provider, frame)
        event_type = event.get("type", event_type)
        if event_type == "error":
            raise UpstreamErrorEvent(self.provider, event.get("error") or {}, frame.raw)
        self.usage.observe_anthropic_event(event_type, event)
        if event_type == "message_stop":
            self._saw_stop = True
        if self.rewriter is None:
            self._tracker.observe(event_type, event.get("index"))
            out.append(OutFrame(_normalised(frame), event_type in _CONTENT_EVENTS))
            return
        self._emit([event], out)



# Frames that must be decoded even on the raw path: usage, block tracking, errors, the end.
_PARSED_EVENTS = frozenset({"message_start", "message_delta", "message_stop",
                            "content_block_start", "content_block_stop", "error"})


class _OpenAIChunks(StreamPipeline):
    """Reading OpenAI chunk streams: [DONE], error chunks, finish reasons, usage."""

    def __init__(self, provider: str, rewriter: ToolCallStreamRewriter | None = None) -> None:
        super().__init__(provider, rewriter)
        self._saw_done = False
        self._saw_finish_reason = False

    def _check_ended_properly(self) -> None:
        if not self._saw_done and not self._saw_finish_reason:
            raise UpstreamStreamBroken(self.provider, "stream ended before its last chunk")

    def _read_chunk(self, frame: SSEFrame) -> dict | None:
        """The chunk of a frame; None for [DONE]. Notes finish reasons and usage."""
        if frame.data.strip() == b"[DONE]":
            self._saw_done = True
            return None
        chunk = _decode_json(self.provider, frame)
        if not isinstance(chunk, dict):
            raise UpstreamBadResponse(self.provider, "stream chunk is not a JSON object")
        if "error" in chunk and not chunk.get("choices"):
            error = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            raise UpstreamErrorEvent(self.provider, {"type": "api_error",
                                                     "message": str(error.get("message", "error"))},
                                     frame.raw)
        if not self._saw_finish_reason:
            for choice in chunk.get("choices") or ():
                if isinstance(choice, dict) and choice.get("finish_reason"):
                    self._saw_finish_reason = True
        self.usage.observe_openai_chunk(chunk)
        return chunk


class OpenAIStreamPipeline(_OpenAIChunks):
    """An OpenAI provider's stream translated into a strict Anthropic stream."""

    def __init__(self, provider: str, translator: OpenAIStreamTranslator,
                 rewriter: ToolCallStreamRewriter | None = None) -> None:
        super().__init__(provider, rewriter)
        self.translator = translator

    @classmethod
    def create(cls, provider: str, requested_model: str, tool_names: ToolNameMap, *,
               thinking_requested: bool, rewriter: ToolCallStreamRewriter | None) -> "OpenAIStreamPipeline":
        """A pipeline with its own translator."""
        translator = OpenAIStreamTranslator(requested_model, tool_names,
                                            thinking_requested=thinking_requested)
        return cls(provider, translator, rewriter)

    def end(self) -> list[OutFrame]:
        """The upstream ended: close the message, or raise if it was cut off."""
        out = self._finish_decoding()
        self._check_ended_properly()
        self._emit(self.translator.finish(), out)
        return out

    def _handle(self, frame: SSEFrame, out: list[OutFrame]) -> None:
        chunk = self._read_chunk(frame)
        if chunk is not None:
            self._emit(self.translator.feed(chunk), out)


class OpenAIPassthroughPipeline(_OpenAIChunks):
    """An OpenAI provider's stream for an OpenAI client: forwarded as it is, except that text tool
    calls become tool_calls deltas when the request has tools (chunks with nothing to rewrite keep
    their bytes)."""

    def __init__(self, provider: str, chunk_rewriter: ChatChunkRewriter | None = None) -> None:
        super().__init__(provider)
        self.chunk_rewriter = chunk_rewriter if chunk_rewriter is not None and chunk_rewriter.active else None
        self._held_frames: dict[int, tuple[dict, bytes]] = {}  # chunks the rewriter holds, by identity

    @property
    def tool_call_stats(self) -> ToolCallStats:
        """Text tool calls turned into tool_calls so far."""
        return self.chunk_rewriter.stats if self.chunk_rewriter is not None else ToolCallStats()

    def end(self) -> list[OutFrame]:
        """The upstream ended: add [DONE] if it was missing, or raise if it was cut off."""
        out = self._finish_decoding()
        self._check_ended_properly()
        if not self._saw_done:
            out.extend(self._flushed())
            out.append(OutFrame(DONE_FRAME, False))
        return out

    def close_after_failure(self, error_type: str, message: str) -> list[bytes]:
        """An OpenAI-style error chunk, then [DONE]."""
        if self._saw_done:
            return []
        error = orjson.dumps({"error": {"message": message, "type": error_type, "code": "502"}})
        return [b"data: " + error + b"\n\n", DONE_FRAME]

    def _handle(self, frame: SSEFrame, out: list[OutFrame]) -> None:
        if self._saw_done:
            return  # [DONE] ended the stream: a client must see nothing after it
        chunk = self._read_chunk(frame)
        if chunk is None:
            out.extend(self._flushed())
            out.append(OutFrame(DONE_FRAME, False))
            return
        if self.chunk_rewriter is None:
            out.append(OutFrame(b"data: " + frame.data + b"\n\n", _carries_content(chunk)))
            return
        self._held_frames[id(chunk)] = (chunk, frame.data)
        for item in self.chunk_rewriter.feed(chunk):
            out.append(OutFrame(b"data: " + self._frame_data(item) + b"\n\n", _carries_content(item)))

    def _frame_data(self, item: dict) -> bytes:
        """An upstream chunk sent as it came keeps its bytes; anything else is encoded."""
        held = self._held_frames.pop(id(item), None)
        if held is not None and held[0] is item:
            return held[1]
        return orjson.dumps(item)

    def _flushed(self) -> list[OutFrame]:
        """Text the rewriter still held when the stream ended."""
        if self.chunk_rewriter is None:
            return []
        return [OutFrame(b"data: " + self._frame_data(item) + b"\n\n", True) for item in self.chunk_rewriter.finish()]


def _carries_content(chunk: dict) -> bool:
    """Whether a chunk has content (text, calls, reasoning, a finish reason) for the client."""
    return any(
        isinstance(choice, dict) and (choice.get("finish_reason") or (
            isinstance(choice.get("delta"), dict)
            and any(choice["delta"].get(key) for key in _OPENAI_CONTENT_KEYS)))
        for choice in chunk.get("choices") or ())


DONE_FRAME = b"data: [DONE]\n\n"
_OPENAI_CONTENT_KEYS = ("content", "tool_calls", "reasoning_content", "reasoning", "function_call")


def _decode_event(provider: str, frame: SSEFrame) -> dict:
    event = _decode_json(provider, frame)
    if not isinstance(event, dict):
        raise UpstreamBadResponse(provider, "stream event is not a JSON object")
    return event


def _decode_json(provider: str, frame: SSEFrame) -> object:
    try:
        return frame.json()
    except orjson.JSONDecodeError as err:
        raise UpstreamBadResponse(provider, "stream event is not valid JSON") from err


def _normalised(frame: SSEFrame) -> bytes:
    """The frame as strict clients expect it (`event: X` then `data: {...}`)."""
    raw = frame.raw
    if raw.startswith(b"event: ") and b"\ndata: " in raw:
        return raw
    return b"event: " + frame.event.encode() + b"\ndata: " + frame.data + b"\n\n"

