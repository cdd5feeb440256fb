"""GigaChat 3 / 3.1: `<|message_sep|>\\n\\nfunction call<|role_sep|>\\n{json}` and `<|function_call|>{json}`.

A <|message_sep|> that does not open a function call is framing; the trailing </s> is dropped by
reasoning.py. GigaChat 3.5's GCML invokes are read with DeepSeek's DSML.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.json_values import calls_in_values, json_value_after
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    Detection,
    DetectorResult,
    Markup,
    ScanContext,
    match_literal,
)

_SEPARATOR = "<|message_sep|>"
_INLINE = "<|function_call|>"
OPENERS = (_SEPARATOR, _INLINE)
_HEADER = re.compile(r"\s*function call\s*<\|role_sep\|>")
_HEADER_TEXT = "function call<|role_sep|>"


def detect_gigachat(text: str, start: int, context: ScanContext) -> DetectorResult:
    """A function-call message after <|message_sep|>, or GigaChat 3.1's inline token."""
    body_start = match_literal(text, start, OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    if text.startswith(_SEPARATOR, start):
        header = _HEADER.match(text, body_start)
        if header is None:
            rest = text[body_start:].lstrip()
            if not context.final and (_HEADER_TEXT.startswith(rest) or rest.startswith("function call")
                                      and len(rest) < 40):
                return NEED_MORE
            return Markup(body_start)
        body_start = header.end()
    span = json_value_after(text, body_start, context)
    if not isinstance(span, tuple):
        return span
    calls = calls_in_values(text, [span])
    return Detection(span[1], calls, "gigachat") if calls else None
