"""Kimi K2 tool-call sections."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    find_closer,
    match_literal,
)

_KIMI_CLOSER = re.compile(r"<\|tool_calls_section_end\|>")
_KIMI_CALL = re.compile(
    r"<\|tool_call_begin\|>\s*(.*?)\s*<\|tool_call_argument_begin\|>(.*?)(?:<\|tool_call_end\|>|\Z)", re.S)


def detect_kimi(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Kimi K2 sections: functions.name:0 then the JSON arguments."""
    body_start = match_literal(text, start, ("<|tool_calls_section_begin|>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _KIMI_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    calls = tuple(RawCall(found.group(1), found.group(2))
                  for found in _KIMI_CALL.finditer(text, body_start, closer[0]))
    return Detection(closer[1], calls, "kimi") if calls else None
