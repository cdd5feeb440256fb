"""Text tool calls in OpenAI chat completions (answers and chunk streams) become `tool_calls`.

For an OpenAI client served by an OpenAI provider the answer stays the provider's own, except that
calls written as text in `message.content` / `delta.content` become `tool_calls` entries (arguments
a JSON string), `finish_reason` becomes "tool_calls", protocol markup leaves the text, and
reasoning written as text goes to `reasoning_content` (when the client asked for reasoning) or is
dropped. An answer (or chunk) with nothing to rewrite is returned as the very same object, so the
caller can forward the provider's bytes untouched.
"""
from __future__ import annotations

import json
import secrets
import string
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadbalancer.toolcalls.arguments import build_tool_index
from loadbalancer.toolcalls.parser import ReasoningSegment, Segment, StreamingToolCallParser, TextSegment, ToolCall
from loadbalancer.toolcalls.rewrite import ToolCallStats, accepted_segments, reasoning_reach

_ID_ALPHABET = string.ascii_letters + string.digits


def new_call_id() -> str:
    """A fresh id in OpenAI's shape: call_ and 24 letters or digits."""
    return "call_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))


def openai_tool_call(call: ToolCall, index: int | None = None) -> dict:
    """A `tool_calls` entry for a call (with its position when it is a stream delta)."""
    entry = {"id": new_call_id(), "type": "function",
             "function": {"name": call.name, "arguments": json.dumps(call.input, ensure_ascii=False)}}
    return entry if index is None else {"index": index, **entry}


def _split(segments: Sequence[Segment]) -> tuple[str, str, list[ToolCall]]:
    text = "".join(segment.text for segment in segments if isinstance(segment, TextSegment))
    reasoning = "".join(segment.text for segment in segments if isinstance(segment, ReasoningSegment))
    return text, reasoning, [segment for segment in segments if isinstance(segment, ToolCall)]


def rewrite_chat_completion(data: dict, tools: Sequence[dict] | None, mode: str = "auto",
                            thinking: bool = False) -> tuple[dict, ToolCallStats]:
    """The completion with text tool calls as tool_calls; `data` itself when nothing changed."""
    stats = ToolCallStats()
    index = build_tool_index(tools)
    if mode == "off" or not index.schemas or not isinstance(data.get("choices"), list):
        return data, stats
    choices, changed = [], False
    for choice in data["choices"]:
        rewritten = _rewrite_choice(choice, index, mode, thinking, stats)
        changed = changed or rewritten is not choice
        choices.append(rewritten)
    return ({**data, "choices": choices} if changed else data), stats


def _rewrite_choice(choice: object, index, mode: str, thinking: bool, stats: ToolCallStats) -> object:
    message = choice.get("message") if isinstance(choice, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str) or not content:
        return choice
    parser = StreamingToolCallParser(index, mode, reasoning_reach(thinking, True))
    segments = list(accepted_segments(parser.parse_whole(content), stats))
    text, reasoning, calls = _split(segments)
    if not calls and not reasoning and text.strip() == content.strip():
        return choice  # nothing to rewrite (the parser only let go of whitespace)
    rewritten = {**message, "content": text or None}
    if reasoning and thinking:
        rewritten["reasoning_content"] = (message.get("reasoning_content") or "") + reasoning
    if calls:
        existing = message.get("tool_calls") if isinstance(message.get("tool_calls"), list) else []
        rewritten["tool_calls"] = existing + [openai_tool_call(call) for call in calls]
    result = {**choice, "message": rewritten}
    if calls:
        result["finish_reason"] = "tool_calls"
    return result


@dataclass
class _ChoiceText:
    """One choice's text through the parser, and the upstream chunks it came in that are not sent yet."""

    parser: StreamingToolCallParser
    pending: deque = field(default_factory=deque)   # (chunk, its content, its other delta fields)
    matched: str = ""          # text the parser gave back that the first pending chunk begins with
    exact: bool = True         # nothing rewritten yet: chunks go out as the bytes they came as
    carry: str = ""            # text given back but not sent, when the stream stopped being exact
    carry_fields: dict = field(default_factory=dict)
    next_tool_index: int = 0
    calls_sent: bool = False


class ChatChunkRewriter:
    """Rewrites an OpenAI chunk stream so text tool calls become tool_calls deltas.

    feed() answers the chunks to send for one upstream chunk; an upstream chunk itself (the same
    object) means "send it as it came". Text is held back by the parser as long as it could still
    be the start of a call; while nothing has been rewritten, the held chunks go out as they came
    once the parser gives their text back. A call is sent whole, in one tool_calls delta.
    """

    def __init__(self, tools: Sequence[dict] | None, mode: str = "auto", thinking: bool = False) -> None:
        self._index = build_tool_index(tools)
        self._mode = mode
        self._thinking = thinking
        self.active = mode != "off" and bool(self._index.schemas)
        self.stats = ToolCallStats()
        self._choices: dict[int, _ChoiceText] = {}
        self._envelope: dict = {}

    def feed(self, chunk: dict) -> list[dict]:
        """The chunks to send for one upstream chunk."""
        choices = chunk.get("choices")
        if not self.active or not isinstance(choices, list) or not choices:
            return [chunk]
        self._envelope = {key: value for key, value in chunk.items() if key not in ("choices", "usage")}
        out: list[dict] = []
        kept = []
        for choice in choices:
            if isinstance(choice, dict):
                position = choice.get("index") if isinstance(choice.get("index"), int) else 0
                kept.extend(self._choice(chunk, choice, position, out, single=len(choices) == 1))
            else:
                kept.append(choice)
        if len(kept) == len(choices) and all(new is old for new, old in zip(kept, choices)):
            return out + [chunk]
        if kept or chunk.get("usage"):
            out.append({**chunk, "choices": kept})
        return out

    def finish(self) -> list[dict]:
        """Chunks for text still held at the end of a stream that sent no finish_reason."""
        out: list[dict] = []
        for position in list(self._choices):
            self._flush(position, out)
        return out

    def _choice(self, chunk: dict, choice: dict, position: int, out: list[dict], single: bool) -> list:
        """The choice as it goes on in this chunk ([] when its content is held); chunks before it go to out."""
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        self._note_native_tool_calls(position, delta)
        content = delta.get("content")
        has_text = isinstance(content, str) and content != ""
        finish_reason = choice.get("finish_reason")
        if not has_text and not finish_reason:
            return [choice]
        state = self._state(position)
        rest = {key: value for key, value in delta.items() if key != "content"}
        if has_text:
            if state.exact and single and not finish_reason:
                state.pending.append((chunk, content, rest))
                rest = {}
            else:
                self._stop_being_exact(state)
            self._release(position, list(accepted_segments(state.parser.feed(content), self.stats)), out)
        if not finish_reason:
            return [{**choice, "delta": rest}] if rest else []
        self._flush(position, out)
        reason = "tool_calls" if state.calls_sent else finish_reason
        if not has_text and reason == finish_reason:
            return [choice]
        return [{**choice, "delta": rest, "finish_reason": reason}]

    def _release(self, position: int, segments: Sequence[Segment], out: list[dict]) -> None:
        """Send what the parser gave back: the upstream chunks themselves while nothing was rewritten."""
        state = self._choices[position]
        index = 0
        while state.exact and index < len(segments) and isinstance(segments[index], TextSegment):
            state.matched += segments[index].text
            index += 1
            while state.pending and state.matched.startswith(state.pending[0][1]):
                chunk, text, _ = state.pending.popleft()
                state.matched = state.matched[len(text):]
                out.append(chunk)
            if state.matched and not (state.pending and state.pending[0][1].startswith(state.matched)):
                self._stop_being_exact(state)
        if index < len(segments):
            self._stop_being_exact(state)
        if not state.exact:
            delta = self._delta_for(state, segments[index:])
            if delta:
                out.append(self._chunk(position, delta))

    def _stop_being_exact(self, state: _ChoiceText) -> None:
        """Something was rewritten: what was given back but not sent goes out re-encoded from now on."""
        if not state.exact:
            return
        state.exact = False
        state.carry, state.matched = state.matched, ""
        for _, _, fields in state.pending:
            state.carry_fields.update(fields)
        state.pending.clear()

    def _delta_for(self, state: _ChoiceText, segments: Sequence[Segment]) -> dict:
        text, reasoning, calls = _split(segments)
        delta: dict = dict(state.carry_fields)
        if state.carry + text:
            delta["content"] = state.carry + text
        state.carry, state.carry_fields = "", {}
        if reasoning and self._thinking:
            delta["reasoning_content"] = reasoning
        if calls:
            delta["tool_calls"] = [openai_tool_call(call, state.next_tool_index + offset)
                                   for offset, call in enumerate(calls)]
            state.next_tool_index += len(calls)
            state.calls_sent = True
        return delta

    def _flush(self, position: int, out: list[dict]) -> None:
        """The parser's last text for a choice; held chunks it gave back only as whitespace go out as they came."""
        state = self._choices.pop(position, None)
        if state is None:
            return
        self._choices[position] = state
        self._release(position, list(accepted_segments(state.parser.finish(), self.stats)), out)
        if state.exact and state.pending and not "".join(text for _, text, _ in state.pending).strip():
            out.extend(chunk for chunk, _, _ in state.pending)
        elif state.exact and state.pending:
            self._stop_being_exact(state)  # the rest of the held text was markup: only what was given back goes
        delta = self._delta_for(state, []) if not state.exact else {}
        if delta:
            out.append(self._chunk(position, delta))
        del self._choices[position]

    def _chunk(self, position: int, delta: dict) -> dict:
        return {**self._envelope, "choices": [{"index": position, "delta": delta, "finish_reason": None}]}

    def _state(self, position: int) -> _ChoiceText:
        state = self._choices.get(position)
        if state is None:
            reach = reasoning_reach(self._thinking, True)
            state = self._choices[position] = _ChoiceText(StreamingToolCallParser(self._index, self._mode, reach))
        return state

    def _note_native_tool_calls(self, position: int, delta: dict) -> None:
        """Calls the provider sent as tool_calls keep their positions; parsed ones come after them."""
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict) and isinstance(call.get("index"), int):
                state = self._state(position)
                state.next_tool_index = max(state.next_tool_index, call["index"] + 1)
