"""Kimi K2 tool-call sections and Kimi K3 XTML tool channels."""
from __future__ import annotations

import html
import json
import re

from loadbalancer.toolcalls.scan import Detection, DetectorResult, RawCall, ScanContext, delimited

K2_OPENERS = ("<|tool_calls_section_begin|>", "<|tool_call_section_begin|>")
_K2_CLOSER = re.compile(r"<\|tool_calls?_section_end\|>")
_K2_CALL = re.compile(
    r"<\|tool_call_begin\|>\s*(.*?)\s*<\|tool_call_argument_begin\|>(.*?)(?:<\|tool_call_end\|>|\Z)", re.S)

K3_OPENERS = ("<|open|>tools<|sep|>",)
_K3_CLOSER = re.compile(r"<\|close\|>tools<\|sep\|>")
_K3_CALL = re.compile(r"<\|open\|>call\b([^<]*)<\|sep\|>(.*?)(?:<\|close\|>call<\|sep\|>|\Z)", re.S)
_K3_ARGUMENT = re.compile(r"<\|open\|>argument\b([^<]*)<\|sep\|>(.*?)<\|close\|>argument<\|sep\|>", re.S)
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')


def detect_kimi(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Kimi K2 sections: functions.name:0 then the JSON arguments, one span per call."""
    block = delimited(text, start, context, K2_OPENERS, _K2_CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    calls = tuple(RawCall(found.group(1), found.group(2), span=found.span())
                  for found in _K2_CALL.finditer(text, body_start, body_end))
    return Detection(end, calls, "kimi") if calls else None


def detect_kimi_k3(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Kimi K3: <|open|>call tool="F"<|sep|> with typed <|open|>argument key="K" type="T"<|sep|>V arguments."""
    block = delimited(text, start, context, K3_OPENERS, _K3_CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    calls = []
    for found in _K3_CALL.finditer(text, body_start, body_end):
        attributes = {key: html.unescape(value) for key, value in _ATTRIBUTE.findall(found.group(1))}
        arguments = {}
        for argument in _K3_ARGUMENT.finditer(found.group(2)):
            details = {key: html.unescape(value) for key, value in _ATTRIBUTE.findall(argument.group(1))}
            arguments[details.get("key", "")] = _typed(argument.group(2), details.get("type", "string"))
        calls.append(RawCall(attributes.get("tool", ""), arguments, string_values=True, span=found.span()))
    return Detection(end, tuple(calls), "kimi_k3") if calls else None


def _typed(value: str, kind: str) -> object:
    """type="string" is raw text; every other type is written as JSON."""
    if kind == "string":
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
