"""Hermes JSON and Qwen3-Coder XML in <tool_call> (Qwen, Hermes, Seed-OSS), and <function=name> blocks."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.glm import glm_block
from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    MAX_CALL_CHARS,
    NEED_MORE,
    RawCall,
    ScanContext,
    bracket_value_end,
    find_closer,
    json_calls,
    known_properties,
    match_literal,
    skip_space,
    split_tagged_values,
)

_TOOL_CALL_OPENERS = ("<tool_call>", "<seed:tool_call>")
_TOOL_CALL_CLOSER = re.compile(r"</(?:seed:)?tool_call>")
_QWEN_CLOSER = re.compile(r"</function>\s*</(?:seed:)?tool_call>")
_QWEN_FUNCTION = re.compile(r"<function=([^>\n]+)>")
_QWEN_PARAMETER = re.compile(r"<parameter=([^>\n]+)>")
_FUNCTION_OPENER = re.compile(r"<function=([^>\s]+)>")
_FUNCTION_PARTIAL = re.compile(r"<(?:f(?:u(?:n(?:c(?:t(?:i(?:o(?:n(?:=[^>\s]*)?)?)?)?)?)?)?)?)?\Z")
_FUNCTION_CLOSER = re.compile(r"\s*</function>")


def detect_tool_call_tag(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_call> holding Hermes JSON, Qwen3-Coder XML or GLM arg_key pairs."""
    body_start = match_literal(text, start, _TOOL_CALL_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    position = skip_space(text, body_start)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] in "{[":
        return _hermes_json(text, position, context)
    if text.startswith("<function=", position):
        return _qwen_block(text, position, context, _QWEN_CLOSER, "qwen3_coder")
    if "<function=".startswith(text[position:]) and not context.final:
        return NEED_MORE
    return glm_block(text, position, context)


def _hermes_json(text: str, position: int, context: ScanContext) -> DetectorResult:
    json_end = bracket_value_end(text, position, context, MAX_CALL_CHARS)
    if not isinstance(json_end, int):
        return json_end
    closer = find_closer(text, json_end, _TOOL_CALL_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    calls = json_calls(text[position:json_end])
    return Detection(closer[1], calls, "hermes") if calls else None


def _qwen_block(text: str, position: int, context: ScanContext, closer_pattern: re.Pattern, label: str) -> DetectorResult:
    closer = find_closer(text, position, closer_pattern, context.final)
    if not isinstance(closer, tuple):
        return closer
    if closer[0] == len(text):  # cut off: take what is there, up to a bare closing tag if any
        bare = _TOOL_CALL_CLOSER.search(text, position)
        closer = (bare.start(), bare.end()) if bare else closer
    body = text[position:closer[0]]
    calls = []
    functions = list(_QWEN_FUNCTION.finditer(body))
    for index, function in enumerate(functions):
        function_end = functions[index + 1].start() if index + 1 < len(functions) else len(body)
        name = function.group(1).strip()
        arguments = split_tagged_values(body[function.end():function_end], _QWEN_PARAMETER,
                                        "</parameter>", known_properties(context, name))
        calls.append(RawCall(name, arguments, string_values=True))
    return Detection(closer[1], tuple(calls), label) if calls else None


def detect_function_tag(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<function=name>{json}</function>, or a Qwen3-Coder <function=name><parameter=…> without <tool_call>."""
    opener = _FUNCTION_OPENER.match(text, start)
    if opener is None:
        partial = not context.final and _FUNCTION_PARTIAL.match(text, start)
        return NEED_MORE if partial and len(text) - start < 200 else None
    position = skip_space(text, opener.end())
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] == "{":
        json_end = bracket_value_end(text, position, context, MAX_CALL_CHARS)
        if not isinstance(json_end, int):
            return json_end
        closing = _FUNCTION_CLOSER.match(text, json_end)
        if closing is None and not context.final and "</function>".startswith(text[skip_space(text, json_end):]):
            return NEED_MORE
        end = closing.end() if closing else json_end
        return Detection(end, (RawCall(opener.group(1), text[position:json_end]),), "function_json")
    if text.startswith("</function>", position):
        return Detection(position + len("</function>"), (RawCall(opener.group(1), {}),), "function_json")
    if text.startswith("<parameter=", position) or not context.final and "<parameter=".startswith(text[position:]):
        if not text.startswith("<parameter=", position):
            return NEED_MORE
        return _qwen_block(text, start, context, re.compile(r"</function>"), "qwen3_coder")
    return None
