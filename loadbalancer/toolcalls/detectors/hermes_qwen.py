"""<tool_call> and its namesakes: Hermes JSON, Qwen3-Coder XML, and the bodies other families put in it.

Hermes / Qwen2.5 / Qwen3 / Granite 3.1 / TNG write JSON (one object, several, or an array); Qwen3-Coder,
Qwen3.5, Step-3.5 and Seed-OSS (<seed:tool_call>) write <function=NAME><parameter=KEY>; GLM writes
NAME<arg_key>…; Step-Audio-2 writes `function\\nNAME\\n{json}`; GLM-5.3-Flash `NAME>{json}`. LongCat,
iQuest-Q1, Nemotron (<TOOLCALL>) and Qwen2.5-Coder (<tools>) use their own tag names around the same bodies.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.glm import glm_block
from loadbalancer.toolcalls.json_values import json_values_until
from loadbalancer.toolcalls.scan import (
    MAX_CALL_CHARS,
    NEED_MORE,
    Detection,
    DetectorResult,
    Literals,
    RawCall,
    ScanContext,
    bracket_value_end,
    find_closer,
    known_properties,
    optional_trailer,
    skip_space,
    split_tagged_values,
)

_TAGS = ("tool_call", "seed:tool_call", "longcat_tool_call", "iquest_tool_call", "TOOLCALL", "tools")
TOOL_CALL_OPENERS = tuple(f"<{tag}>" for tag in _TAGS)
_TOOL_CALL_LITERALS = Literals(TOOL_CALL_OPENERS)
_CLOSERS = {tag: re.compile(f"</{re.escape(tag)}>") for tag in _TAGS}
_QWEN_CLOSERS = {tag: re.compile(rf"</function>\s*</{re.escape(tag)}>") for tag in _TAGS}
_QWEN_FUNCTION = re.compile(r"<function=([^>\n]+)>")
_QWEN_PARAMETER = re.compile(r"<parameter=([^>\n]+)>")
_STEP_AUDIO = re.compile(r"function[ \t]*\n\s*([\w.\-]+)[ \t]*\n\s*")
_STEP_AUDIO_PARTIAL = re.compile(r"f(?:u(?:n(?:c(?:t(?:i(?:o(?:n(?:[ \t]*\n\s*[\w.\-]*[ \t]*)?)?)?)?)?)?)?)?\Z")
_NAME_ARROW = re.compile(r"([\w.\-/]+)>\s*")
_FUNCTION_OPENER = re.compile(r"<function=([^>\s]+)>")
_FUNCTION_PARTIAL = re.compile(r"<(?:f(?:u(?:n(?:c(?:t(?:i(?:o(?:n(?:=[^>\s]*)?)?)?)?)?)?)?)?)?\Z")
_FUNCTION_CLOSER = re.compile(r"\s*</function>")
_BARE_FUNCTION_CLOSER = re.compile(r"</function>")


def detect_tool_call_tag(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_call> (or a namesake) holding JSON, Qwen3-Coder XML, GLM pairs or a name line."""
    body_start = _TOOL_CALL_LITERALS.match(text, start, context.final)
    if not isinstance(body_start, int):
        return body_start
    tag = text[start + 1:body_start - 1]
    position = skip_space(text, body_start)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] in "{[":
        return json_values_until(text, position, context, _CLOSERS[tag], "hermes")
    if text.startswith("<function=", position):
        return qwen_block(text, position, context, _QWEN_CLOSERS[tag], _CLOSERS[tag])
    if not context.final and "<function=".startswith(text[position:]):
        return NEED_MORE
    for pattern in (_STEP_AUDIO, _NAME_ARROW):
        named = pattern.match(text, position)
        if named is not None and named.end() >= len(text):
            return None if context.final else NEED_MORE
        if named is not None and text[named.end()] in "{[":
            return _name_then_json(text, named, context, f"</{tag}>")
    if not context.final and _STEP_AUDIO_PARTIAL.match(text, position):
        return NEED_MORE
    return glm_block(text, position, context, f"</{tag}>")


def _name_then_json(text: str, named: re.Match, context: ScanContext, closer: str) -> DetectorResult:
    """Step-Audio-2 `function\\nNAME\\n{json}` and GLM-5.3-Flash `NAME>{json}` (its closer optional)."""
    json_end = bracket_value_end(text, named.end(), context, MAX_CALL_CHARS)
    if not isinstance(json_end, int):
        return json_end
    end = optional_trailer(text, json_end, (closer,), context.final)
    if not isinstance(end, int):
        return end
    return Detection(end, (RawCall(named.group(1), text[named.end():json_end]),), "hermes")


def qwen_block(text: str, position: int, context: ScanContext, closer_pattern: re.Pattern,
               bare_closer: re.Pattern | None) -> DetectorResult:
    """<function=NAME><parameter=KEY>VALUE</parameter>…</function>, several functions allowed."""
    closer = find_closer(text, position, closer_pattern, context.final)
    if not isinstance(closer, tuple):
        return closer
    if closer[0] == len(text) and bare_closer is not None:  # cut off: up to a bare closing tag if any
        bare = bare_closer.search(text, position)
        closer = (bare.start(), bare.end()) if bare else closer
    calls = []
    functions = list(_QWEN_FUNCTION.finditer(text, position, closer[0]))
    for index, function in enumerate(functions):
        function_end = functions[index + 1].start() if index + 1 < len(functions) else closer[0]
        name = function.group(1).strip()
        arguments = split_tagged_values(text[function.end():function_end], _QWEN_PARAMETER, "</parameter>",
                                        known_properties(context, name))
        calls.append(RawCall(name, arguments, string_values=True, span=(function.start(), function_end)))
    return Detection(closer[1], tuple(calls), "qwen3_coder") if calls else None


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
    if not context.final and "</function>".startswith(text[position:]):
        return NEED_MORE
    if text.startswith("<parameter=", position):
        return qwen_block(text, start, context, _BARE_FUNCTION_CLOSER, None)
    if not context.final and "<parameter=".startswith(text[position:]):
        return NEED_MORE
    return None
