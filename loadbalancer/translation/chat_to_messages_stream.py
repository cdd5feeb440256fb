"""OpenAI chat.completions stream chunks -> a strict Anthropic event stream.

Strict clients (G3, Claude Code) need one message_start, blocks that open and close in
order without interleaving, and tool arguments whose concatenated partial_json parses.
Text and thinking are forwarded as they arrive. Tool calls are buffered until the backend
finishes, because some backends interleave fragments of parallel calls: each call is then
sent whole as start, one input_json_delta with repaired JSON, stop.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from loadbalancer.translation.chat_to_messages_answer import (
    anthropic_stop_reason,
    anthropic_usage,
    new_message_id,
    new_tool_use_id,
    parse_tool_arguments,
    reasoning_text,
)
from loadbalancer.translation.tool_names import ToolNameMap


_TEXT_ONLY = frozenset({"content"})  # the keys of a delta that holds only text


@dataclass
class _PendingToolCall:
    """The fragments of one streamed tool call, gathered until the call is complete."""

    name: str = ""
    argument_fragments: list[str] = field(default_factory=list)


class OpenAIStreamTranslator:
    """Turns OpenAI chat.completions chunks into a strict Anthropic event stream."""

    def __init__(
        self,
        requested_model: str,
        tool_names: ToolNameMap,
        *,
        thinking_requested: bool,
        input_tokens: int = 0,
    ) -> None:
        self._model = requested_model
        self._tool_names = tool_names
        self._thinking_requested = thinking_requested
        self._input_tokens = input_tokens
        self._started = False
        self._ended = False
        self._block_count = 0
        self._open_kind: str | None = None
        self._pending_calls: dict[int, _PendingToolCall] = {}
        self._sent_tool_use = False
        self._finish_reason: str | None = None
        self._usage: dict | None = None

    @property
    def started(self) -> bool:
        """Whether message_start has been emitted."""
        return self._started

    @property
    def has_content(self) -> bool:
        """Whether at least one content_block_start has been emitted."""
        return self._block_count > 0

    def feed(self, chunk: dict) -> list[dict]:
        """The Anthropic events for one OpenAI chunk (possibly none)."""
        if self._ended or not isinstance(chunk, dict):
            return []
        if isinstance(chunk.get("error"), (dict, str)):
            return self.fail(_stream_error_message(chunk["error"]))
        events = self._start_message()
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return events
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        if delta.keys() == _TEXT_ONLY and not choice.get("finish_reason"):
            # Nearly every chunk of an answer: one more piece of text, nothing else to look at.
            text = delta["content"]
            if text.__class__ is str and text and self._open_kind == "text":
                events.append({"type": "content_block_delta", "index": self._block_count - 1,
                               "delta": {"type": "text_delta", "text": text}})
                return events
        reasoning = reasoning_text(delta)
        if reasoning and self._thinking_requested:
            events += self._append_to_block("thinking", reasoning)
        if isinstance(delta.get("content"), str) and delta["content"]:
            events += self._append_to_block("text", delta["content"])
        self._gather_tool_calls(delta)
        if choice.get("finish_reason"):
            self._finish_reason = choice["finish_reason"]
            events += self._close_open_block() + self._flush_tool_calls()
        return events

    def finish(self) -> list[dict]:
        """Close open blocks, then message_delta and message_stop; later calls return nothing."""
        if self._ended:
            return []
        events = self._start_message() + self._close_open_block() + self._flush_tool_calls()
        self._ended = True
        stop_reason = anthropic_stop_reason(self._finish_reason, self._sent_tool_use)
        events.append(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": self._final_usage(),
            }
        )
        events.append({"type": "message_stop"})
        return events

    def fail(self, message: str, error_type: str = "api_error") -> list[dict]:
        """Close the open block, then an error event; the stream ends without message_stop."""
        if self._ended:
            return []
        events = self._close_open_block()
        self._ended = True
        events.append({"type": "error", "error": {"type": error_type, "message": message}})
        return events

    def _start_message(self) -> list[dict]:
        """message_start, the first time only."""
        if self._started:
            return []
        self._started = True
        message = {
            "id": new_message_id(),
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self._input_tokens, "output_tokens": 0},
        }
        return [{"type": "message_start", "message": message}]

    def _append_to_block(self, kind: str, text: str) -> list[dict]:
        """A text or thinking delta, opening a block of that kind first if needed."""
        events: list[dict] = []
        if self._open_kind != kind:
            events += self._close_open_block()
            empty_block = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            events.append(self._block_start(empty_block))
            self._open_kind = kind
        delta = (
            {"type": "text_delta", "text": text}
            if kind == "text"
            else {"type": "thinking_delta", "thinking": text}
        )
        events.append({"type": "content_block_delta", "index": self._block_count - 1, "delta": delta})
        return events

    def _block_start(self, content_block: dict) -> dict:
        """content_block_start for the next index."""
        self._block_count += 1
        return {
            "type": "content_block_start",
            "index": self._block_count - 1,
            "content_block": content_block,
        }

    def _close_open_block(self) -> list[dict]:
        """content_block_stop for the open text or thinking block, if any."""
        if self._open_kind is None:
            return []
        self._open_kind = None
        return [{"type": "content_block_stop", "index": self._block_count - 1}]

    def _gather_tool_calls(self, delta: dict) -> None:
        """Buffer the tool call fragments of one delta, by their index."""
        fragments = [call for call in delta.get("tool_calls") or [] if isinstance(call, dict)]
        if isinstance(delta.get("function_call"), dict):
            fragments.append({"index": 0, "function": delta["function_call"]})
        for fragment in fragments:
            position = fragment.get("index") if isinstance(fragment.get("index"), int) else 0
            pending = self._pending_calls.setdefault(position, _PendingToolCall())
            function = fragment.get("function") if isinstance(fragment.get("function"), dict) else {}
            # Some backends repeat the full name in every fragment: keep the first one.
            if isinstance(function.get("name"), str) and not pending.name:
                pending.name = function["name"]
            if isinstance(function.get("arguments"), str):
                pending.argument_fragments.append(function["arguments"])

    def _flush_tool_calls(self) -> list[dict]:
        """Every buffered tool call as a whole block (start, one input_json_delta, stop)."""
        events: list[dict] = []
        for position in sorted(self._pending_calls):
            pending = self._pending_calls[position]
            if not pending.name:
                continue  # a call whose name never arrived cannot be run by the client
            arguments = parse_tool_arguments("".join(pending.argument_fragments))
            index = self._block_count
            events.append(
                self._block_start(
                    {
                        "type": "tool_use",
                        "id": new_tool_use_id(),
                        "name": self._tool_names.original_name(pending.name),
                        "input": {},
                    }
                )
            )
            partial_json = json.dumps(arguments, ensure_ascii=False)
            delta = {"type": "input_json_delta", "partial_json": partial_json}
            events.append({"type": "content_block_delta", "index": index, "delta": delta})
            events.append({"type": "content_block_stop", "index": index})
            self._sent_tool_use = True
        self._pending_calls.clear()
        return events

    def _final_usage(self) -> dict:
        """message_delta usage: output tokens, and input tokens message_start could not know."""
        if self._usage is None:
            return {"output_tokens": 0}
        usage = anthropic_usage(self._usage)
        final = {"output_tokens": usage["output_tokens"]}
        if self._input_tokens == 0 and usage["input_tokens"]:
            final["input_tokens"] = usage["input_tokens"]
        if "cache_read_input_tokens" in usage:
            final["cache_read_input_tokens"] = usage["cache_read_input_tokens"]
        return final


def _stream_error_message(error: dict | str) -> str:
    """The message of an error object a backend put into its stream."""
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return str(error)
