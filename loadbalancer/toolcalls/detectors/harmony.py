"""gpt-oss Harmony: commentary messages addressed to=functions.NAME."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    NEED_MORE,
    RawCall,
    ScanContext,
    find_closer,
    match_literal,
)

_HARMONY_MESSAGE = re.compile(r"<\|message\|>")
_HARMONY_RECIPIENT = re.compile(r"to=([\w.:\-]+)")
_HARMONY_CLOSER = re.compile(r"<\|call\|>|<\|end\|>|<\|return\|>")


def detect_harmony(text: str, start: int, context: ScanContext) -> DetectorResult:
    """gpt-oss Harmony: a commentary message addressed to=functions.name."""
    opened = match_literal(text, start, ("<|start|>assistant", "<|channel|>"), context.final)
    if not isinstance(opened, int):
        return opened
    message = _HARMONY_MESSAGE.search(text, opened, opened + 300)
    if message is None:
        return NEED_MORE if not context.final and len(text) - opened < 300 else None
    recipient = _HARMONY_RECIPIENT.search(text, start, message.start())
    if recipient is None:
        return None  # analysis or final channel: reasoning or prose, not a call
    closer = find_closer(text, message.end(), _HARMONY_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    return Detection(closer[1], (RawCall(recipient.group(1), text[message.end():closer[0]]),), "harmony")
