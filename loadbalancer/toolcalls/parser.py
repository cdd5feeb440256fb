"""Split model answer text into prose, reasoning and tool calls, for a complete text or a stream of deltas.

One scanner serves both: parse_tool_calls feeds the whole text at once. The scanner emits text up
to the first position where a marker could start and asks the detectors about that position; a
detector that needs more text holds the rest back until it can decide.

Reasoning is not action. Text in a closed reasoning section (<think>…</think>, [THINK]…[/THINK],
…) is reasoning, calls quoted there included. A call inside a section that is never closed ends
it (the model went on to act), and so does a call followed by no bare </think> (the templates that
open <think> in the prompt): until that is known, the call and the text after it are held back.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from loadbalancer.toolcalls.acceptance import accept_detection
from loadbalancer.toolcalls.arguments import ToolIndex, build_tool_index
from loadbalancer.toolcalls.detectors import FORMATS, block_start_markup, detector_table
from loadbalancer.toolcalls.scan import (NEED_MORE, Detection, DetectorResult, Markup, ScanContext, first_of,
                                         partial_suffix, shifted_detection)
from loadbalancer.toolcalls.segments import ReasoningSegment, Segment, TextSegment, ToolCall, merge_segments

__all__ = ["FORMATS", "ReasoningSegment", "Segment", "StreamingToolCallParser", "TextSegment", "ToolCall",
           "merge_text_segments", "parse_tool_calls"]

_MIN_RETRY_GROWTH = 8
_EAGER_RETRY_LIMIT = 4096          # below this, a delta that may close a call is checked at once
_CLOSING_CHARS = re.compile(r"[>\]})\n▷]")
_BARE_CLOSE = "</think>"
_THINK_OPEN = "<think>"
BARE_CLOSE_REACH = 32_000          # a bare </think> further than this after a call does not make it reasoning
_FENCE = "```"
_INLINE_CODE_REACH = 200          # an inline code span longer than this is not waited for
_BACKTICKS = re.compile("`+")


@dataclass
class _Held:
    """Text waiting for what follows: a call that may turn out to be reasoning, or the answer's start."""

    kind: str                      # "reasoning": a call inside an open section; "bare": a call a bare
                                   # </think> may follow; "leading": the prompt may have opened reasoning
    detection: Detection | None = None   # the held call ("bare"); in a section it is detected again
    search_from: int = 0           # where the search for the closer goes on (a position in the buffer)
    confirmed: bool = True         # False while the detector still needs more text to decide


class _State:
    """Where the scanner stands between deltas (class attributes are the defaults: cheap to create)."""

    line_start = True
    block_start = True
    turn_start = True
    prose_before = False           # prose since the start, the last reasoning or the last call
    in_fence = False
    reasoning: tuple[str, ...] = ()            # closers of the open reasoning section
    bare_close_possible = True                 # no reasoning marker seen yet in this text
    wrappers: frozenset[str] = frozenset()
    held: _Held | None = None
    strip_leading_space = False
    pending_space = ""
    run_has_text = False
    blocks = 0


class StreamingToolCallParser:
    """Incremental version: feed text deltas, get segments as soon as they are certain."""

    def __init__(self, tools: Sequence[dict] | ToolIndex | None, mode: str = "auto", reasoning_reach: int = 0) -> None:
        """reasoning_reach: how far into the text a bare </think> still closes reasoning the prompt opened
        (DeepSeek-R1/V3.1, Qwen3-Thinking, Step, ERNIE write only the closer); the text up to there is
        held back until that is known. 0: not expected, nothing is held."""
        self._tools: ToolIndex = build_tool_index(tools)
        self._mode = mode
        self._enabled = mode != "off" and bool(self._tools.schemas)
        self._table = detector_table(self._tools, mode) if self._enabled else None
        self._is_plain = self._table.is_plain if self._table else None
        self._buffer = ""
        self._pos = 0                  # the buffer before this was already emitted
        self._incoming: list[str] = []
        self._incoming_length = 0
        self._retry_length = 0
        self._state = _State()
        self._output: list[Segment] = []
        self._quiet = False            # nothing held, no section open: a plain delta may go straight out
        self._contexts: dict[tuple, ScanContext] = {}
        self._reasoning_reach = reasoning_reach
        if reasoning_reach > 0:
            self._state.held = _Held("leading")

    def feed(self, delta: str) -> list[Segment]:
        """Segments that became certain with this delta."""
        if not delta:
            return []
        if not self._enabled:
            return [TextSegment(delta)]
        if self._quiet and self._is_plain(delta, self._state.line_start):
            self._emit_prose(delta)  # fast path: nothing held and nothing in this delta could start a marker
            return self._take_output()
        self._quiet = False
        self._incoming.append(delta)
        self._incoming_length += len(delta)
        held = len(self._buffer) - self._pos + self._incoming_length
        # a held candidate is re-checked as it grows geometrically (not on every delta, which would be
        # quadratic), and at once when a small one may just have been closed
        if held >= self._retry_length or (held < _EAGER_RETRY_LIMIT and _CLOSING_CHARS.search(delta)):
            self._scan(final=False)
        return self._take_output()

    def finish(self) -> list[Segment]:
        """Flush everything at the end of the text block; the scanner treats the end as closing open calls."""
        if self._enabled:
            self._scan(final=True)
            self._state.pending_space = ""
        return self._take_output()

    def parse_whole(self, text: str) -> list[Segment]:
        """The segments of a complete text (what feed(text) then finish() give, in one scan)."""
        if not self._enabled:
            return [TextSegment(text)] if text else []
        self._incoming.append(text)
        return self.finish()

    def _take_output(self) -> list[Segment]:
        output, self._output = self._output, []
        return output if len(output) < 2 else merge_segments(output)

    def _scan(self, final: bool) -> None:
        if self._incoming:
            self._buffer = self._buffer[self._pos:] + "".join(self._incoming)
            self._pos, self._incoming, self._incoming_length = 0, [], 0
        self._retry_length = 0
        state = self._state
        done = True
        while self._pos < len(self._buffer):
            if state.held is not None and state.held.kind == "leading":
                done = self._scan_leading_wait(final)
            elif state.held is not None and state.held.kind == "bare":
                done = self._scan_bare_wait(final)
            elif state.reasoning:
                done = self._scan_reasoning(final)
            elif state.in_fence:
                done = self._scan_fence(final)
            else:
                done = self._scan_normal(final)
            if not done:
                break
        self._compact()
        self._quiet = not (self._buffer or state.reasoning or state.in_fence or state.block_start or state.held)
        if not done:
            self._retry_length = len(self._buffer) + max(_MIN_RETRY_GROWTH, len(self._buffer) // 4)

    def _compact(self) -> None:
        """Drop what was emitted; positions held in the state move with the buffer."""
        if self._pos:
            held = self._state.held
            if held is not None:
                held.search_from = max(0, held.search_from - self._pos)
                if held.detection is not None:
                    held.detection = shifted_detection(held.detection, -self._pos)
            self._buffer, self._pos = self._buffer[self._pos:], 0

    # --- normal text ---------------------------------------------------------------------

    def _scan_normal(self, final: bool) -> bool:
        state = self._state
        if state.block_start:
            result = block_start_markup(self._buffer, self._pos, self._context(final))
            if result is NEED_MORE:
                return False
            state.block_start = False
            if isinstance(result, Markup):
                self._apply_markup(result)
                return True
        self._emit_text(self._table.plain_text_end(self._buffer, self._pos, state.line_start, final))
        return self._pos >= len(self._buffer) or self._decide_at_start(final)

    def _decide_at_start(self, final: bool) -> bool:
        """Handle the candidate at the current position; False when more text is needed."""
        state, position = self._state, self._pos
        if not self._table.trigger_at(self._buffer, position, state.line_start):
            return False  # a partial word marker at the end, held until the next delta
        result = self._table.detect(self._buffer, position, self._context(final), calls_only=False)
        if result is NEED_MORE:
            return False
        if isinstance(result, Markup):
            self._apply_markup(result)
        elif isinstance(result, Detection):
            if state.bare_close_possible and not (final and _BARE_CLOSE not in self._buffer):
                state.held = _Held("bare", result, result.end)
                return self._scan_bare_wait(final)
            else:
                self._accept(result)
        elif state.line_start and self._buffer.startswith(_FENCE, position):
            state.in_fence = True
            self._emit_text(position + len(_FENCE))
        elif self._buffer.startswith("`", position):
            return self._inline_code(final)
        else:
            skip = position + self._table.trigger_length(self._buffer, position)
            self._emit_text(self._table.plain_text_end(self._buffer, skip, False, final))
        return True

    def _apply_markup(self, markup: Markup) -> None:
        state = self._state
        self._pos = markup.end
        state.block_start, state.bare_close_possible = False, False
        if markup.reasoning_closers:
            state.reasoning = markup.reasoning_closers
            return
        if markup.opens_wrapper:
            state.wrappers |= {markup.opens_wrapper}
        if markup.closes_wrapper:
            state.wrappers -= {markup.closes_wrapper}
        if state.turn_start or markup.new_turn:
            self._start_new_turn()

    def _start_new_turn(self) -> None:
        """After reasoning, or framing at a turn start: a fresh line without leading whitespace."""
        state = self._state
        state.line_start, state.turn_start, state.strip_leading_space = True, True, True
        state.prose_before = False
        state.pending_space, state.run_has_text = "", False

    def _context(self, final: bool) -> ScanContext:
        state = self._state
        key = (final, state.line_start, state.turn_start, state.wrappers, state.prose_before)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = ScanContext(self._tools, *key)
        return context

    # --- reasoning -----------------------------------------------------------------------

    def _scan_reasoning(self, final: bool) -> bool:
        """Reasoning until its closer; a call inside waits for the closer (a draft) or the end (an action)."""
        state, held, buffer = self._state, self._state.held, self._buffer
        closer = first_of(buffer, state.reasoning, held.search_from if held else self._pos)
        if closer is not None:
            self._emit_reasoning(closer[0])
            self._pos = closer[1]
            state.reasoning, state.held = (), None
            self._start_new_turn()
            return True
        keep = 0 if final else partial_suffix(buffer, state.reasoning)
        if held is not None and not held.confirmed:
            result = self._table.detect(buffer, self._pos, self._context(final), calls_only=True)
            if not self._usable(result) and result is not NEED_MORE:
                state.held = None
                self._emit_reasoning(self._pos + self._table.trigger_length(buffer, self._pos))
                return True
            held.confirmed = result is not NEED_MORE
        if held is not None:
            if final:
                state.reasoning, state.held = (), None   # never closed: the call ends the reasoning
                return True
            held.search_from = len(buffer) - keep
            return False
        # a call may begin with a word cut by the delta's end ("funct|ools[...]"): that end waits too
        region_end = len(buffer) - (0 if final else max(keep, self._table.partial_tail(buffer, self._pos,
                                                                                          state.line_start)))
        trigger = self._table.next_trigger(buffer, self._pos, region_end, state.line_start)
        if trigger is None:
            self._emit_reasoning(region_end)
            return final and self._pos >= len(buffer)
        self._emit_reasoning(trigger)
        result = self._table.detect(buffer, trigger, self._context(final), calls_only=True)
        usable = self._usable(result)
        if usable and final:
            state.reasoning = ()
        elif result is NEED_MORE or usable:
            state.held = _Held("reasoning", None, trigger, confirmed=usable)
            return False
        else:
            self._emit_reasoning(trigger + self._table.trigger_length(buffer, trigger))
        return True

    def _usable(self, result: DetectorResult) -> bool:
        """A detection with at least one call that would run (in reasoning only such a call ends it)."""
        if not isinstance(result, Detection):
            return False
        return any(isinstance(segment, ToolCall) and not segment.missing
                   for segment in accept_detection(self._buffer, self._pos, result, self._tools, 0))

    def _scan_leading_wait(self, final: bool) -> bool:
        """The start of the text waits: reasoning when a bare </think> comes within reach, otherwise text."""
        return self._wait_for_bare_close(self._pos + self._reasoning_reach, final, None)

    def _scan_bare_wait(self, final: bool) -> bool:
        """A call before any reasoning marker: reasoning if a bare </think> follows, otherwise a call."""
        held = self._state.held
        return self._wait_for_bare_close(held.detection.end + BARE_CLOSE_REACH, final, held.detection)

    def _wait_for_bare_close(self, reach: int, final: bool, detection: Detection | None) -> bool:
        state, held = self._state, self._state.held
        found = first_of(self._buffer, (_BARE_CLOSE, _THINK_OPEN), max(held.search_from, self._pos), reach)
        while found is not None and self._buffer[found[0] - 1:found[0]] == "`":  # `</think>` is a word in prose
            found = first_of(self._buffer, (_BARE_CLOSE, _THINK_OPEN), found[1], reach)
        if found is not None and self._buffer.startswith(_BARE_CLOSE, found[0]):
            self._emit_reasoning(found[0])
            self._pos = found[1]
            state.held, state.bare_close_possible, state.block_start = None, False, False
            self._start_new_turn()
            return True
        if found is not None or final or len(self._buffer) >= reach + len(_BARE_CLOSE):
            state.held = None
            if detection is not None:
                state.bare_close_possible = False
                self._accept(detection)
            return True
        held.search_from = max(held.search_from, len(self._buffer) - len(_BARE_CLOSE) + 1)
        return False

    # --- code fences ---------------------------------------------------------------------

    def _inline_code(self, final: bool) -> bool:
        """`code` on one line is text, markers in it included (answers that talk about tags)."""
        buffer, position = self._buffer, self._pos
        ticks = len(_BACKTICKS.match(buffer, position).group())
        close = buffer.find("`" * ticks, position + ticks)
        newline = buffer.find("\n", position)
        if close >= 0 and (newline < 0 or close < newline) and ticks < 3:
            self._emit_text(close + ticks)
            return True
        if close < 0 and newline < 0 and not final and len(buffer) - position < _INLINE_CODE_REACH and ticks < 3:
            return False
        self._emit_text(position + ticks)
        return True

    def _scan_fence(self, final: bool) -> bool:
        """Inside a code fence everything is text (documentation), up to the closing fence."""
        state, buffer = self._state, self._buffer
        position = self._pos
        while True:
            found = buffer.find(_FENCE, position)
            if found < 0:
                keep = 0 if final else min(2, len(buffer) - len(buffer.rstrip("`")))
                self._emit_text(max(self._pos, len(buffer) - keep))
                return final
            before = buffer[self._pos:found].rstrip(" \t")
            if before.endswith("\n") or not before and state.line_start:
                self._emit_text(found + len(_FENCE))
                state.in_fence = False
                return True
            position = found + 1

    # --- output --------------------------------------------------------------------------

    def _accept(self, detection: Detection) -> None:
        """Calls of a block become ToolCalls; calls that are not usable stay text (the whole block if none is)."""
        state = self._state
        segments = accept_detection(self._buffer, self._pos, detection, self._tools, state.blocks)
        if not any(isinstance(segment, ToolCall) for segment in segments):
            self._emit_text(detection.end)
            return
        state.blocks += 1
        self._pos = detection.end
        state.line_start, state.turn_start, state.block_start = True, False, False
        state.prose_before = False
        state.pending_space, state.run_has_text = "", False
        self._output.extend(segments)

    def _emit_reasoning(self, end: int) -> None:
        if end <= self._pos:
            return
        text, self._pos = self._buffer[self._pos:end], end
        state = self._state
        newline = text.rfind("\n")
        state.line_start = (newline >= 0 or state.line_start) and not text[newline + 1:].strip(" \t")
        self._output.append(ReasoningSegment(text))

    def _emit_text(self, end: int) -> None:
        """Move buffer[pos:end] out as prose."""
        if end > self._pos:
            text, self._pos = self._buffer[self._pos:end], end
            self._state.block_start = False
            self._emit_prose(text)

    def _emit_prose(self, text: str) -> None:
        """Prose out; a run of only whitespace waits to see whether a call follows."""
        state = self._state
        newline = text.rfind("\n")
        state.line_start = (newline >= 0 or state.line_start) and not text[newline + 1:].strip(" \t")
        if state.run_has_text:
            self._output.append(TextSegment(text))
            state.prose_before = state.prose_before or not text.isspace()
        elif text.strip():
            if state.strip_leading_space:
                text, state.pending_space, state.strip_leading_space = text.lstrip(), "", False
            self._output.append(TextSegment(state.pending_space + text))
            state.pending_space, state.run_has_text, state.turn_start = "", True, False
            state.prose_before = True
        else:
            state.pending_space += text


def merge_text_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Join adjacent TextSegments (and adjacent ReasoningSegments)."""
    return merge_segments(segments)


def parse_tool_calls(text: str, tools: Sequence[dict] | ToolIndex | None, mode: str = "auto",
                     reasoning_reach: int = 0) -> list[Segment]:
    """Split answer text into prose, reasoning and tool calls. mode: "auto", "off", or one format name."""
    return StreamingToolCallParser(tools, mode, reasoning_reach).parse_whole(text)
