"""Split model answer text into prose and tool calls, for a complete text or a stream of deltas.

One scanner serves both: parse_tool_calls feeds the whole text at once. The scanner emits text up
to the first position where a call marker could start and asks the detectors about that position;
a detector that needs more text holds the rest back until it can decide.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from loadbalancer.toolcalls.arguments import ToolIndex, build_tool_index, resolve_arguments
from loadbalancer.toolcalls.detectors import DETECTORS_BY_CHAR, FORMATS, Detector
from loadbalancer.toolcalls.scan import NEED_MORE, Detection, DetectorResult, ScanContext, match_literal

_TRIGGER = re.compile(r"[<\[{`]|functools")
_MARKER_CHARS = re.compile(r"[<\[{`f]")
_FUNCTOOLS_PARTIAL = re.compile(r"f(?:u(?:n(?:c(?:t(?:o(?:o(?:l)?)?)?)?)?)?)?\Z")
_THINK_OPEN, _THINK_CLOSE = "<think>", "</think>"
_MIN_RETRY_GROWTH = 8
_EAGER_RETRY_LIMIT = 4096          # below this, a delta that may close a call is checked at once
_CLOSING_CHARS = re.compile(r"[>\]})\n]")


@dataclass(frozen=True)
class TextSegment:
    """Prose of the answer."""

    text: str


@dataclass(frozen=True)
class ToolCall:
    """A tool call found in the text; markup is the text it was written as (the whole block)."""

    name: str
    input: dict
    format: str
    repaired: bool
    missing: tuple[str, ...]
    markup: str = field(default="", compare=False)
    block: int = field(default=0, compare=False)


Segment = TextSegment | ToolCall


def _select_detectors(mode: str) -> dict[str, tuple[tuple[Detector, frozenset[str]], ...]]:
    """The detector table for a mode: every format, or only the detectors that can report one."""
    if mode == "auto":
        return DETECTORS_BY_CHAR
    if mode not in FORMATS:
        raise ValueError(f"unknown tool-call format {mode!r}; expected auto, off or one of {sorted(FORMATS)}")
    return {char: tuple(entry for entry in table if mode in entry[1])
            for char, table in DETECTORS_BY_CHAR.items()}


class StreamingToolCallParser:
    """Incremental version: feed text deltas, get segments as soon as they are certain."""

    def __init__(self, tools: Sequence[dict] | None, mode: str = "auto") -> None:
        self._tools: ToolIndex = build_tool_index(tools)
        self._mode = mode
        self._enabled = mode != "off" and bool(self._tools.schemas)
        self._detectors = _select_detectors(mode) if self._enabled else {}
        self._buffer = ""
        self._incoming: list[str] = []
        self._incoming_length = 0
        self._retry_length = 0
        self._line_start = True
        self._in_fence = False
        self._in_think = False
        self._pending_space = ""
        self._run_has_text = False
        self._blocks = 0
        self._output: list[Segment] = []

    def feed(self, delta: str) -> list[Segment]:
        """Segments that became certain with this delta."""
        if not delta:
            return []
        if not self._enabled:
            return [TextSegment(delta)]
        if not (self._buffer or self._incoming or self._in_think) and _MARKER_CHARS.search(delta) is None:
            self._buffer = delta  # fast path: nothing held and nothing in this delta could start a call
            self._emit_text(len(delta))
            return self._take_output()
        self._incoming.append(delta)
        self._incoming_length += len(delta)
        held = len(self._buffer) + self._incoming_length
        # a held candidate is re-checked as it grows geometrically (not on every delta, which would be
        # quadratic), and at once when a small one may just have been closed
        if held >= self._retry_length or (held < _EAGER_RETRY_LIMIT and _CLOSING_CHARS.search(delta)):
            self._scan(final=False)
        return self._take_output()

    def finish(self) -> list[Segment]:
        """Flush everything at the end of the text block; the scanner treats the end as closing open calls."""
        if self._enabled:
            self._scan(final=True)
            self._pending_space = ""
        return self._take_output()

    def _take_output(self) -> list[Segment]:
        output, self._output = self._output, []
        return output

    def _scan(self, final: bool) -> None:
        if self._incoming:
            self._buffer += "".join(self._incoming)
            self._incoming, self._incoming_length = [], 0
        self._retry_length = 0
        while self._buffer:
            if self._in_think:
                if not self._scan_think(final):
                    return
                continue
            trigger = _TRIGGER.search(self._buffer)
            if trigger is None:
                partial = None if final else _FUNCTOOLS_PARTIAL.search(self._buffer, max(0, len(self._buffer) - 9))
                self._emit_text(len(self._buffer) - (len(partial.group()) if partial else 0))
                return
            self._emit_text(trigger.start())
            if not self._decide_at_start(final):
                self._retry_length = len(self._buffer) + max(_MIN_RETRY_GROWTH, len(self._buffer) // 4)
                return

    def _scan_think(self, final: bool) -> bool:
        """Reasoning is not action: pass text through until </think>; False when waiting for more."""
        closing = self._buffer.find(_THINK_CLOSE)
        if closing >= 0:
            self._in_think = False
            self._emit_text(closing + len(_THINK_CLOSE))
            return True
        keep = 0
        if not final:
            keep = next((size for size in range(len(_THINK_CLOSE) - 1, 0, -1)
                         if self._buffer.endswith(_THINK_CLOSE[:size])), 0)
        self._emit_text(len(self._buffer) - keep)
        return False

    def _decide_at_start(self, final: bool) -> bool:
        """Handle the candidate at the buffer start; False when more text is needed."""
        think = match_literal(self._buffer, 0, (_THINK_OPEN,), final)
        if think is NEED_MORE:
            return False
        if isinstance(think, int):
            self._in_think = True
            self._emit_text(think)
            return True
        context = ScanContext(self._tools, final, self._line_start, self._in_fence)
        result = self._detect(context)
        if result is NEED_MORE:
            return False
        if isinstance(result, Detection):
            self._accept(result)
        elif self._line_start and self._buffer.startswith("```"):
            self._in_fence = not self._in_fence
            self._emit_text(3)
        else:
            self._emit_text(len(_TRIGGER.match(self._buffer).group()))
        return True

    def _detect(self, context: ScanContext) -> DetectorResult:
        for detector, _labels in self._detectors.get(self._buffer[0], ()):
            result = detector(self._buffer, 0, context)
            if result is NEED_MORE:
                return result
            if isinstance(result, Detection) and (self._mode == "auto" or result.format == self._mode):
                return result
        return None

    def _accept(self, detection: Detection) -> None:
        """Turn a detection into ToolCalls, or keep the whole block as text when a name or argument is not usable."""
        markup = self._buffer[:detection.end]
        calls = []
        for raw in detection.calls:
            name = self._tools.resolve(raw.name)
            arguments = resolve_arguments(raw.arguments, self._tools.schemas[name], raw.string_values) if name else None
            if arguments is None:
                self._emit_text(detection.end)
                return
            calls.append(ToolCall(name, arguments.values, detection.format, arguments.repaired or raw.repaired,
                                  arguments.missing, markup, self._blocks))
        self._blocks += 1
        self._buffer = self._buffer[detection.end:]
        self._line_start = True
        self._pending_space, self._run_has_text = "", False
        self._output.extend(calls)

    def _emit_text(self, end: int) -> None:
        """Move buffer[:end] out as prose; a run of only whitespace waits to see whether a call follows."""
        if end <= 0:
            return
        text, self._buffer = self._buffer[:end], self._buffer[end:]
        newline = text.rfind("\n")
        tail = text[newline + 1:] if newline >= 0 else text
        self._line_start = (newline >= 0 or self._line_start) and not tail.strip(" \t")
        if self._run_has_text:
            self._output.append(TextSegment(text))
        elif text.strip():
            self._output.append(TextSegment(self._pending_space + text))
            self._pending_space, self._run_has_text = "", True
        else:
            self._pending_space += text


def merge_text_segments(segments: Sequence[Segment]) -> list[Segment]:
    """Join adjacent TextSegments."""
    merged: list[Segment] = []
    for segment in segments:
        if isinstance(segment, TextSegment) and merged and isinstance(merged[-1], TextSegment):
            merged[-1] = TextSegment(merged[-1].text + segment.text)
        else:
            merged.append(segment)
    return merged


def parse_tool_calls(text: str, tools: Sequence[dict] | None, mode: str = "auto") -> list[Segment]:
    """Split answer text into prose and tool calls. mode: "auto" (every known format), "off", or one format name."""
    parser = StreamingToolCallParser(tools, mode)
    return merge_text_segments(parser.feed(text) + parser.finish())
