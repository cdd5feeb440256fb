"""gpt-oss Harmony framing: analysis = reasoning, commentary to=functions.NAME = a call, final = text.

A message is `[<|start|>ROLE[ to=R]]<|channel|>CHANNEL[ to=R][ <|constrain|>json]<|message|>BODY`
ended by <|end|>, <|call|> or <|return|>. The header never reaches the client: a call becomes a
tool call, analysis a reasoning section, any other channel (final, a commentary preamble) prose;
messages of other roles (a rendered conversation's system, user and tool turns) are dropped.
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
_ROLE = re.compile(r"<\|start\|>\s*([^\s<]+)")
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
    role = _ROLE.match(header)
    if role is not None and role.group(1) != "assistant":
        return _drop_message(text, body_start, context)
    recipient = _RECIPIENT.search(header)
    if recipient is not None and recipient.group(1) != "assistant":
        return _call_message(text, body_start, recipient.group(1), context)
    channel = _CHANNEL.search(header)
    if channel is not None and channel.group(1) == "analysis":
        return Markup(body_start, reasoning_closers=("<|end|>",))
    return Markup(body_start)


def _drop_message(text: str, body_start: int, context: ScanContext) -> DetectorResult:
    """A message of another role (system, developer, user, a tool's result) in the rendered text: not the answer."""
    found = _BODY_END.search(text, body_start)
    if found is None:
        return Markup(len(text)) if context.final else NEED_MORE
    return Markup(found.start() if found.group() == "<|start|>" else found.end())


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
