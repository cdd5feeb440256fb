"""JSON call objects: bare or fenced, <tool_calls> arrays, prefixed (Granite, Phi, InternLM, Llama), Glaive."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    MAX_CALL_CHARS,
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    RawCall,
    ScanContext,
    find_closer,
    json_calls,
    json_value_after,
    match_literal,
    optional_trailer,
    skip_space,
)

_CHAIN = re.compile(r"[ \t]*(;)?\s*")
_TOOL_CALLS_CLOSER = re.compile(r"</tool_calls>")
_GLAIVE_SHAPE = re.compile(r"""\A\{\s*"name"\s*:\s*"([^"]+)"\s*,\s*"arguments"\s*:\s*'(.*)'\s*\}\Z""", re.S)
_FENCE_OPENER = re.compile(r"```[ \t]*(?:json|JSON|tool_call|tool_code)?[ \t]*\n")
_FENCE_PARTIAL = re.compile(r"`{1,3}\Z|```[ \t]*\w*[ \t]*\Z")


def detect_tool_calls_array(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_calls>[…]</tool_calls> (Jamba, Hunyuan) or one object per line (MiniMax-M1)."""
    body_start = match_literal(text, start, ("<tool_calls>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    calls: list[RawCall] = []
    position = body_start
    while True:
        span = json_value_after(text, position, context)
        if span is None:
            break
        if not isinstance(span, tuple):
            return span
        found = json_calls(text[span[0]:span[1]])
        if not found:
            return None
        calls.extend(found)
        position = span[1]
    closer = find_closer(text, position, _TOOL_CALLS_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    return Detection(closer[1], tuple(calls), "tool_calls_array") if calls else None


def detect_prefixed_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Granite <|tool_call|>[…], Phi functools[…], InternLM <|action_start|><|plugin|>{…}, Llama <|python_tag|>{…}."""
    prefixes = ("<|tool_call|>", "functools", "<|action_start|><|plugin|>", "<|python_tag|>")
    body_start = match_literal(text, start, prefixes, context.final)
    if not isinstance(body_start, int):
        return body_start
    label = ("internlm" if text.startswith("<|action", start)
             else "llama_json" if text.startswith("<|python_tag|>", start) else "granite")
    spans = _json_chain(text, body_start, context, MAX_CALL_CHARS, chained=label == "llama_json")
    if not isinstance(spans, list):
        return spans
    calls = tuple(call for begin, end in spans for call in json_calls(text[begin:end]))
    if len(calls) < len(spans):
        return None
    trailers = ("<|action_end|>",) if label == "internlm" else ("<|eom_id|>", "<|eot_id|>")
    end = optional_trailer(text, spans[-1][1], trailers, context.final)
    if not isinstance(end, int):
        return end
    return Detection(end, calls, label) if calls else None


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
    if not context.line_start or context.in_fence:
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
    spans = _json_chain(text, start, context, MAX_WEAK_CALL_CHARS, chained=True)
    if not isinstance(spans, list):
        return spans
    return _json_detection(text, spans, spans[-1][1])


def _json_chain(text: str, position: int, context: ScanContext, cap: int, chained: bool) -> list[tuple[int, int]] | DetectorResult:
    """Spans of JSON values joined by "; " (Llama's way of writing several calls)."""
    spans: list[tuple[int, int]] = []
    while True:
        span = json_value_after(text, position, context, cap)
        if not isinstance(span, tuple):
            return span if span is NEED_MORE or not spans else spans
        spans.append(span)
        if not chained:
            return spans
        separator = _CHAIN.match(text, span[1])
        if separator.end() >= len(text):
            return spans if context.final else NEED_MORE
        if not separator.group(1) or text[separator.end()] != "{":
            return spans
        position = separator.end()


def _json_detection(text: str, spans: list[tuple[int, int]], end: int) -> Detection | None:
    calls = [call for begin, finish in spans for call in json_calls(text[begin:finish])]
    if not calls or len(calls) < len(spans):
        return None
    first = text[spans[0][0]:spans[0][1]]
    label = "g3_json" if '"tool"' in first[:200] else "llama_json" if '"parameters"' in first else "json"
    return Detection(end, tuple(calls), label)


def detect_fenced_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """```json fence whose whole content is one or more call objects."""
    if not context.line_start or context.in_fence:
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
