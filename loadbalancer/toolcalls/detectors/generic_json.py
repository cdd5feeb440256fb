"""JSON call objects without special tokens: on their own line, in a ```json fence, after a label, or Glaive's <functioncall>.

These formats look like ordinary JSON, so they count only at a line start (a JSON array right after
</think> starts a line) and only when the objects name one of the request's tools; a fence whose
content is not all calls is documentation.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.llama_pythonic import json_chain
from loadbalancer.toolcalls.json_values import calls_in_values, json_calls, json_value_after
from loadbalancer.toolcalls.scan import (
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    match_literal,
    skip_space,
)

_GLAIVE_SHAPE = re.compile(r"""\A\{\s*"name"\s*:\s*"([^"]+)"\s*,\s*"arguments"\s*:\s*'(.*)'\s*\}\Z""", re.S)
_FENCE_OPENER = re.compile(r"```[ \t]*(?:json|JSON|tool_call|tool_code)?[ \t]*\n")
_FENCE_PARTIAL = re.compile(r"`{1,3}\Z|```[ \t]*\w*[ \t]*\Z")
_LABEL = "**Tool Call:**"


def detect_glaive(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<functioncall> {"name": …, "arguments": '{…}'} with single-quoted arguments."""
    body_start = match_literal(text, start, ("<functioncall>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    span = json_value_after(text, body_start, context)
    if not isinstance(span, tuple):
        return span
    raw = text[span[0]:span[1]]
    shape = _GLAIVE_SHAPE.match(raw)
    if shape:
        calls: tuple[RawCall, ...] = (RawCall(shape.group(1), shape.group(2)),)
    else:
        calls = json_calls(raw)
    return Detection(span[1], calls, "glaive") if calls else None


def detect_bare_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """A call object or array of them on its own line: G3 {"tool": …}, Llama {"name", "parameters"}, xLAM […]."""
    if not context.line_start:
        return None
    position = skip_space(text, start + 1)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[start] == "[":
        if text[position] != "{":
            return None
        position = skip_space(text, position + 1)
        if position >= len(text):
            return None if context.final else NEED_MORE
    if text[position] != '"':
        return None
    spans = json_chain(text, start, context, MAX_WEAK_CALL_CHARS, chained=True)
    if not isinstance(spans, list):
        return spans
    return _json_detection(text, spans, spans[-1][1])


def _json_detection(text: str, spans: list[tuple[int, int]], end: int) -> Detection | None:
    calls = calls_in_values(text, spans)
    if not calls:
        return None
    first = text[spans[0][0]:spans[0][1]]
    label = "g3_json" if '"tool"' in first[:200] else "llama_json" if '"parameters"' in first else "json"
    return Detection(end, calls, label)


def detect_fenced_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """```json fence whose whole content is one or more call objects."""
    if not context.line_start:
        return None
    opener = _FENCE_OPENER.match(text, start)
    if opener is None:
        partial = not context.final and _FENCE_PARTIAL.match(text, start)
        return NEED_MORE if partial else None
    spans = []
    span = json_value_after(text, opener.end(), context, MAX_WEAK_CALL_CHARS)
    while isinstance(span, tuple):
        spans.append(span)
        span = json_value_after(text, span[1], context, MAX_WEAK_CALL_CHARS)
    if span is not None or not spans:
        return span
    after = skip_space(text, spans[-1][1])
    if text.startswith("```", after):
        end = after + 3
    elif after < len(text) and not "```".startswith(text[after:]):
        return None
    elif not context.final:
        return NEED_MORE
    else:
        end = len(text)
    detection = _json_detection(text, spans, end)
    return Detection(detection.end, detection.calls, "json") if detection else None


def detect_labelled_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """RWKV's `**Tool Call:**` label before a ```json fence or a call object; the label goes with the call."""
    body_start = match_literal(text, start, (_LABEL,), context.final)
    if not isinstance(body_start, int):
        return body_start
    position = skip_space(text, body_start)
    if position >= len(text):
        return None if context.final else NEED_MORE
    inner = ScanContext(context.tools, context.final, True, context.turn_start, context.wrappers)
    if text[position] == "`":
        return detect_fenced_json(text, position, inner)
    span = json_value_after(text, position, context, MAX_WEAK_CALL_CHARS)
    if not isinstance(span, tuple):
        return span
    return _json_detection(text, [span], span[1])
