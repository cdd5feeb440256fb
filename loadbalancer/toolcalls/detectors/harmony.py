"""gpt-oss Harmony framing: analysis = reasoning, commentary to=functions.NAME = a call, final = text.

A message is `[<|start|>ROLE[ to=R]]<|channel|>CHANNEL[ to=R][ <|constrain|>json]<|message|>BODY`
ended by <|end|>, <|call|> or <|return|>. The header never reaches the client: a call becomes a
tool call, analysis a reasoning section, any other channel (final, a commentary preamble) prose.
Muse Glimmer uses the same framing with <atem:function_calls> invokes as the body.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.anthropic_xml import named_invokes
from loadbalancer.toolcalls.scan import NEED_MORE, Detection, DetectorResult, Markup, RawCall, ScanContext, match_literal

OPENERS = ("<|start|>", "<|channel|>")
_MESSAGE = "<|message|>"
_HEADER_REACH = 300
_RECIPIENT = re.compile(r"\bto=([^\s<]+)")
_CHANNEL = re.compile(r"<\|channel\|>\s*(\w+)")
_BODY_END = re.compile(r"<\|call\|>|<\|end\|>|<\|return\|>|<\|eom\|>|<\|eot\|>|<\|start\|>")
_ATEM = "<atem:function_calls>"
_ATEM_CLOSER = "</atem:function_calls>"


def detect_harmony(text: str, start: int, context: ScanContext) -> DetectorResult:
    """One Harmony message header, with the call body when it is addressed to a function."""
    opened = match_literal(text, start, OPENERS, context.final)
    if not isinstance(opened, int):
        return opened
    message = text.find(_MESSAGE, opened, start + _HEADER_REACH)
    if message < 0:
        return NEED_MORE if not context.final and len(text) - start < _HEADER_REACH else None
    header = text[start:message]
    body_start = message + len(_MESSAGE)
    recipient = _RECIPIENT.search(header)
    if recipient is not None:
        return _call_message(text, body_start, recipient.group(1), context)
    channel = _CHANNEL.search(header)
    if channel is not None and channel.group(1) == "analysis":
        return Markup(body_start, reasoning_closers=("<|end|>",))
    return Markup(body_start)


def _call_message(text: str, body_start: int, recipient: str, context: ScanContext) -> DetectorResult:
    found = _BODY_END.search(text, body_start)
    if found is None and not context.final:
        return NEED_MORE
    body_end = found.start() if found else len(text)
    end = body_end if found is None or found.group() == "<|start|>" else found.end()
    body = text[body_start:body_end]
    if body.lstrip().startswith(_ATEM):
        inner = body[body.index(_ATEM) + len(_ATEM):]
        inner = inner[:inner.rfind(_ATEM_CLOSER)] if _ATEM_CLOSER in inner else inner
        calls = named_invokes(inner, "atem:", context, 0, spans=False)
        return Detection(end, calls, "harmony") if calls else None
    return Detection(end, (RawCall(recipient, body),), "harmony")
