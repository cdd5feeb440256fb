"""Cohere Command R7B / Command A: <|START_ACTION|>[{"tool_call_id", "tool_name", "parameters"}, …]<|END_ACTION|>.

Their reasoning (<|START_THINKING|>) and answer blocks (<|START_RESPONSE|>, <|START_TEXT|>, citations)
are markup read in reasoning.py. A cut-off action (no <|END_ACTION|>) is repaired as partial JSON.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.json_values import json_calls
from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    ScanContext,
    delimited,
    skip_space,
)

OPENERS = ("<|START_ACTION|>",)
_CLOSER = re.compile(r"<\|END_ACTION\|>")


def detect_cohere_action(text: str, start: int, context: ScanContext) -> DetectorResult:
    """An action block: a JSON array of calls, one span per call."""
    block = delimited(text, start, context, OPENERS, _CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    position = skip_space(text, body_start)
    calls = json_calls(text[position:body_end].rstrip(), position)
    return Detection(end, calls, "cohere") if calls else None
