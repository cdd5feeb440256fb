"""Mistral [TOOL_CALLS]: name[ARGS]{json} (v11+, Magistral, Devstral) or a JSON array (pre-v11).

Magistral's [THINK]…[/THINK] reasoning is read in reasoning.py.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.json_values import json_calls, json_value_after
from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    NEED_MORE,
    RawCall,
    ScanContext,
    match_literal,
    skip_space,
)

_MISTRAL_NAME = re.compile(r"([\w.\-]+)(?:\[CALL_ID\][\w\-]*)?(?:\[ARGS\])?\s*")


def detect_mistral(text: str, start: int, context: ScanContext) -> DetectorResult:
    """[TOOL_CALLS]name[ARGS]{…} (v11+) or [TOOL_CALLS] [{…}] (pre-v11)."""
    body_start = match_literal(text, start, ("[TOOL_CALLS]",), context.final)
    if not isinstance(body_start, int):
        return body_start
    position = skip_space(text, body_start)
    if position < len(text) and text[position] in "[{":
        span = json_value_after(text, position, context)
        if not isinstance(span, tuple):
            return span
        calls = json_calls(text[span[0]:span[1]], span[0])
        return Detection(span[1], calls, "mistral_legacy") if calls else None
    name = _MISTRAL_NAME.match(text, position)
    if name is None or name.end() >= len(text):
        return None if context.final or name is None and position < len(text) else NEED_MORE
    span = json_value_after(text, name.end(), context)
    if not isinstance(span, tuple):
        return span
    return Detection(span[1], (RawCall(name.group(1), text[span[0]:span[1]]),), "mistral")
