"""IBM Granite JSON calls: <|tool_call|>[…] (3.0), granite-20b-functioncalling's <function_call> {…}, and
Phi-4-mini's functools[…]. Granite 3.1's <tool_call>[…] is read with the Hermes tag; its pythonic
lines and reasoning labels live in llama_pythonic and reasoning.
"""
from __future__ import annotations

from loadbalancer.toolcalls.json_values import calls_in_values, json_value_after, json_value_sequence
from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    ScanContext,
    match_literal,
)

OPENERS = ("<|tool_call|>", "<function_call>")


def detect_granite(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<|tool_call|> then a JSON array (or objects); <function_call> then one JSON object."""
    body_start = match_literal(text, start, OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    if text.startswith("<function_call>", start):
        span = json_value_after(text, body_start, context)
        spans = [span] if isinstance(span, tuple) else span
    else:
        spans = json_value_sequence(text, body_start, context)
    if not isinstance(spans, list) or not spans:
        return spans or None
    calls = calls_in_values(text, spans)
    return Detection(spans[-1][1], calls, "granite") if calls else None


def detect_functools(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Phi-4-mini: functools[{"name": …, "arguments": …}, …]."""
    body_start = match_literal(text, start, ("functools",), context.final)
    if not isinstance(body_start, int):
        return body_start
    span = json_value_after(text, body_start, context)
    if not isinstance(span, tuple):
        return span
    if text[span[0]] != "[":
        return None
    calls = calls_in_values(text, [span])
    return Detection(span[1], calls, "granite") if calls else None
