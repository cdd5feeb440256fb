"""Anthropic stream events -> Responses stream events, for `POST /v1/responses` with `stream: true`.

Pure: no network, no Flask. `ResponsesStream` emits the spec's events in order, numbered by
`sequence_number`. Codex acts on every `response.output_item.done` as it arrives (it runs a
function_call at once) but treats a turn as finished only on `response.completed`; a stream
that ends without it, or with `response.failed`, is retried with the items already received
kept in its history. So a failure never closes an open item: the half-written tool call stays
"incomplete" and is never executed.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from loadbalancer.translation.messages_to_responses_answer import (
    call_item, final_fields, finish_call, message_item, new_id, reasoning_item, response_error, response_object,
    text_part,
)
from loadbalancer.translation.responses_to_messages_request import TranslatedRequest

_STARTING_EVENTS = ("message_start", "content_block_start", "content_block_delta", "content_block_stop",
                    "message_delta", "message_stop")


@dataclass
class _OpenItem:
    """An output item whose Anthropic content block has started but not stopped."""

    output_index: int
    item: dict
    block_type: str
    text: str = ""  # text, partial tool JSON, or thinking
    signature: str = ""
    summary_open: bool = False
    extra: dict = field(default_factory=dict)  # the start block's own fields (redacted data)


class ResponsesStream:
    """Anthropic stream events in, Responses stream events (dicts with `type`) out.

    Call feed() per Anthropic event, finish() when the upstream ends, fail() when the load
    balancer gives up mid-stream. After a terminal event (completed, incomplete, failed) every
    call returns []. The caller frames each dict as `event: TYPE\\ndata: JSON\\n\\n`.

    A block's done events wait for the next event: when the load balancer gives up mid-stream
    it closes the open block and then sends an `error`, and a tool call cut short that way
    must stay incomplete, never done (Codex would run it).
    """

    def __init__(self, request: TranslatedRequest) -> None:
        self._request = request
        self._response_id = new_id("resp")
        self._created_at = int(time.time())
        self._sequence = 0
        self._output: list[dict | None] = []
        self._open: dict[int, _OpenItem] = {}
        self._usage: dict[str, int] = {}
        self._stop_reason: Any = None
        self._stopped_index: Any = None  # the block whose stop waits for the next event
        self._started = False
        self.finished = False

    def feed(self, event: dict) -> list[dict]:
        """The Responses events for one Anthropic event (possibly none)."""
        if self.finished or not isinstance(event, dict):
            return []
        kind = event.get("type")
        if kind == "error":
            return self.fail(event.get("error"))
        events = self._start() + self._release_stopped() if kind in _STARTING_EVENTS else []
        if kind == "message_start":
            message = event.get("message") if isinstance(event.get("message"), dict) else {}
            self._remember_usage(message.get("usage"))
        elif kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            events += self._block_start(event.get("index"), event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            events += self._block_delta(self._open.get(event.get("index")), event["delta"])
        elif kind == "content_block_stop" and event.get("index") in self._open:
            self._stopped_index = event.get("index")
        elif kind == "message_delta":
            delta = event.get("delta") if isinstance(event.get("delta"), dict) else {}
            self._stop_reason = delta.get("stop_reason") or self._stop_reason
            self._remember_usage(event.get("usage"))
        elif kind == "message_stop":
            events += self._terminal()
        return events

    def finish(self) -> list[dict]:
        """The end of the upstream: complete if the answer ended properly, fail otherwise."""
        if self.finished:
            return []
        if self._stop_reason is not None and set(self._open) <= {self._stopped_index}:
            return self._start() + self._release_stopped() + self._terminal()
        return self.fail({"type": "api_error", "message": "the provider's stream ended before the answer was complete"})

    def fail(self, error: Any, retry_after_seconds: float | None = None) -> list[dict]:
        """`error` and response.failed; open items are reported incomplete and never marked done."""
        if self.finished:
            return []
        events = self._start()
        self.finished = True
        output = self._current_output(open_status="incomplete")
        reported = response_error(error, retry_after_seconds)
        failed = response_object(self._request, self._response_id, self._created_at, "failed", output,
                                 error=reported)
        # The spec's stream-level `error` first (SDKs show it), then the terminal event Codex acts on.
        return events + [self._event("error", code=reported["code"], message=reported["message"], param=None),
                         self._event("response.failed", response=failed)]

    def _start(self) -> list[dict]:
        """response.created and response.in_progress, once."""
        if self._started:
            return []
        self._started = True
        snapshot = response_object(self._request, self._response_id, self._created_at, "in_progress", [])
        return [self._event("response.created", response=snapshot),
                self._event("response.in_progress", response=dict(snapshot))]

    def _terminal(self) -> list[dict]:
        """response.completed (or response.incomplete) with the whole output and usage."""
        self.finished = True
        status, fields = final_fields(self._stop_reason, self._usage)
        output = self._current_output(open_status="incomplete")
        final = response_object(self._request, self._response_id, self._created_at, status, output, **fields)
        return [self._event(f"response.{status}", response=final)]

    def _current_output(self, open_status: str) -> list[dict]:
        """The output items so far; those still open get open_status."""
        return [item if item is not None else {**self._open_by_position(position).item, "status": open_status}
                for position, item in enumerate(self._output)]

    def _open_by_position(self, position: int) -> _OpenItem:
        """The open item at an output position."""
        return next(open_item for open_item in self._open.values() if open_item.output_index == position)

    def _block_start(self, index: Any, block: dict) -> list[dict]:
        """output_item.added (and content_part.added for text) for a starting content block."""
        kind = block.get("type")
        if kind == "text":
            item = message_item(new_id("msg"), "", "in_progress")
        elif kind == "tool_use":
            item = call_item(self._request.toolset.routes.get(block.get("name")), block)
        elif kind in ("thinking", "redacted_thinking"):
            item = {"id": new_id("rs"), "type": "reasoning", "summary": []}
        else:
            return []  # server tool blocks and the like: nothing Codex could act on
        open_item = _OpenItem(len(self._output), item, kind, extra=dict(block))
        self._open[index] = open_item
        self._output.append(None)
        events = [self._event("response.output_item.added", output_index=open_item.output_index, item=item)]
        if kind == "text":
            events.append(self._event("response.content_part.added", **self._where(open_item), part=text_part("")))
            events += self._block_delta(open_item, {"type": "text_delta", "text": block.get("text") or ""})
        if kind == "thinking" and block.get("thinking"):
            events += self._block_delta(open_item, {"type": "thinking_delta", "thinking": block["thinking"]})
        return events

    def _block_delta(self, open_item: _OpenItem | None, delta: dict) -> list[dict]:
        """Text, argument and reasoning summary deltas."""
        kind = delta.get("type")
        if open_item is None:
            return []
        if kind == "text_delta" and delta.get("text"):
            open_item.text += delta["text"]
            return [self._event("response.output_text.delta", **self._where(open_item), delta=delta["text"],
                                logprobs=[])]
        if kind == "input_json_delta" and delta.get("partial_json"):
            open_item.text += delta["partial_json"]
            if open_item.item["type"] == "function_call":
                return [self._event("response.function_call_arguments.delta", item_id=open_item.item["id"],
                                    output_index=open_item.output_index, delta=delta["partial_json"])]
            return []  # custom and local shell calls are sent whole at their end
        if kind == "signature_delta" and delta.get("signature"):
            open_item.signature += delta["signature"]
        if kind == "thinking_delta" and delta.get("thinking"):
            open_item.text += delta["thinking"]
            return self._summary_delta(open_item, delta["thinking"])
        return []

    def _summary_delta(self, open_item: _OpenItem, text: str) -> list[dict]:
        """reasoning_summary_part.added (once) and a reasoning_summary_text.delta."""
        if not self._request.include_reasoning_summary:
            return []
        where = {"item_id": open_item.item["id"], "output_index": open_item.output_index, "summary_index": 0}
        events = []
        if not open_item.summary_open:
            open_item.summary_open = True
            events.append(self._event("response.reasoning_summary_part.added", **where,
                                      part={"type": "summary_text", "text": ""}))
        return events + [self._event("response.reasoning_summary_text.delta", **where, delta=text)]

    def _release_stopped(self) -> list[dict]:
        """The done events of the block that stopped before this event, if any."""
        if self._stopped_index is None:
            return []
        index, self._stopped_index = self._stopped_index, None
        return self._block_stop(index)

    def _block_stop(self, index: Any) -> list[dict]:
        """The done events of a finished block, ending with output_item.done."""
        open_item = self._open.pop(index, None)
        if open_item is None:
            return []
        if open_item.block_type == "text":
            events, item = self._text_done(open_item)
        elif open_item.block_type == "tool_use":
            events, item = self._call_done(open_item)
        else:
            events, item = self._reasoning_done(open_item)
        if item is None:  # a reasoning block with nothing to keep still needs its added item closed
            item = {**open_item.item, "summary": []}
        self._output[open_item.output_index] = item
        return events + [self._event("response.output_item.done", output_index=open_item.output_index, item=item)]

    def _text_done(self, open_item: _OpenItem) -> tuple[list[dict], dict]:
        """output_text.done and content_part.done of a message item."""
        where = self._where(open_item)
        item = message_item(open_item.item["id"], open_item.text, "completed")
        return [self._event("response.output_text.done", **where, text=open_item.text, logprobs=[]),
                self._event("response.content_part.done", **where, part=text_part(open_item.text))], item

    def _call_done(self, open_item: _OpenItem) -> tuple[list[dict], dict]:
        """The arguments (or custom input) done event of a call item."""
        try:
            arguments = json.loads(open_item.text) if open_item.text.strip() else open_item.extra.get("input")
        except ValueError:
            arguments = {"arguments": open_item.text}
        item = finish_call(open_item.item, arguments)
        where = {"item_id": item["id"], "output_index": open_item.output_index}
        if item["type"] == "function_call":
            return [self._event("response.function_call_arguments.done", **where, arguments=item["arguments"])], item
        if item["type"] == "custom_tool_call":
            return [self._event("response.custom_tool_call_input.delta", **where, delta=item["input"]),
                    self._event("response.custom_tool_call_input.done", **where, input=item["input"])], item
        return [], item

    def _reasoning_done(self, open_item: _OpenItem) -> tuple[list[dict], dict | None]:
        """Summary done events, and the reasoning item carrying the thinking block."""
        block = {**open_item.extra}
        if open_item.block_type == "thinking":
            block.update(thinking=open_item.text, signature=open_item.signature or block.get("signature"))
        item = reasoning_item(open_item.item["id"], block, self._request.include_reasoning_summary)
        if not open_item.summary_open:
            return [], item
        where = {"item_id": open_item.item["id"], "output_index": open_item.output_index, "summary_index": 0}
        part = {"type": "summary_text", "text": open_item.text}
        return [self._event("response.reasoning_summary_text.done", **where, text=open_item.text),
                self._event("response.reasoning_summary_part.done", **where, part=part)], item

    def _where(self, open_item: _OpenItem) -> dict:
        """item_id, output_index and content_index of a message item's only part."""
        return {"item_id": open_item.item["id"], "output_index": open_item.output_index, "content_index": 0}

    def _remember_usage(self, usage: Any) -> None:
        """Keep the latest token counts (message_delta usage is cumulative)."""
        if isinstance(usage, dict):
            self._usage.update({key: value for key, value in usage.items() if isinstance(value, int)})

    def _event(self, event_type: str, **fields: Any) -> dict:
        """One numbered event."""
        event = {"type": event_type, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event
