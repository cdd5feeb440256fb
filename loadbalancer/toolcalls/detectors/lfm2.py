"""LiquidAI LFM2 / LFM2.5 <|tool_call_start|>[f(a=1)]<|tool_call_end|>, and openPangu's JSON list in the same tokens.

LFM2 writes Python that is not always valid, so before giving up the body is repaired: string values
with unescaped inner quotes or raw newlines are re-quoted, leading zeros dropped from integers,
Python keywords used as parameter names (from=) renamed for the parse and back. LFM2 also echoes
the body after the end token, capped by a second end token: that echo is dropped.
"""
from __future__ import annotations

import json
import keyword
import re

from loadbalancer.toolcalls.detectors.llama_pythonic import parse_pythonic_calls
from loadbalancer.toolcalls.json_values import calls_in_values, json_value_sequence
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    delimited,
    scan_brackets,
    skip_space,
)

OPENERS = ("<|tool_call_start|>",)
_END = "<|tool_call_end|>"
_CLOSER = re.compile(re.escape(_END))
_UNUSED_CLOSER = re.compile(r"\[unused12\]")
_STRING_VALUE = re.compile(r"""([A-Za-z_]\w*)\s*=\s*(['"])(.*?)\2(?=\s*(?:,\s*[A-Za-z_]\w*\s*=|\)))""", re.S)
_PYTHON_STRING = re.compile(r"""'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*\"""")
_KEYWORD_NAME = re.compile(r"\b(" + "|".join(keyword.kwlist) + r")(\s*=)(?!=)")
_LEADING_ZEROS = re.compile(r"(?<![\w.])0+(?=[1-9]\d*(?![\w.]))")
_RENAMED = "__kw_"
_ECHO_REACH = 64_000


def detect_lfm2(text: str, start: int, context: ScanContext) -> DetectorResult:
    """The LFM2 tokens around a pythonic list, or a JSON list (openPangu v2)."""
    block = delimited(text, start, context, OPENERS, _CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    position = skip_space(text, body_start)
    json_list = text.startswith("[", position) and text[skip_space(text, position + 1):][:1] == "{"
    if json_list or text.startswith("{", position):
        calls = _json_list(text, position, body_end, context)
        label = "pangu"
    else:
        calls = _pythonic(text, body_start, body_end)
        label = "lfm2"
    if not calls:
        return None
    end = _after_echo(text, end, context)
    return end if end is NEED_MORE else Detection(end, calls, label)


def detect_unused_tokens(text: str, start: int, context: ScanContext) -> DetectorResult:
    """openPangu v1: [unused11][{json}][unused12]."""
    block = delimited(text, start, context, ("[unused11]",), _UNUSED_CLOSER)
    if not isinstance(block, tuple):
        return block
    calls = _json_list(text, block[0], block[1], context)
    return Detection(block[2], calls, "pangu") if calls else None


def _json_list(text: str, position: int, body_end: int, context: ScanContext) -> tuple[RawCall, ...]:
    inner = ScanContext(context.tools, True, context.line_start)
    spans = json_value_sequence(text[:body_end], position, inner)
    return calls_in_values(text, spans) if isinstance(spans, list) and spans else ()


def _pythonic(text: str, body_start: int, body_end: int) -> tuple[RawCall, ...]:
    body = text[body_start:body_end]
    calls = parse_pythonic_calls(body, body_start)
    if calls:
        return calls
    return tuple(_restore_keywords(call) for call in parse_pythonic_calls(repair_python(body)))


def repair_python(source: str) -> str:
    """The call list with LFM2's usual mistakes fixed (a no-op on valid Python)."""
    source = _STRING_VALUE.sub(_requote, source)
    parts, position = [], 0
    for found in _PYTHON_STRING.finditer(source):
        parts.append(_repair_code(source[position:found.start()]))
        parts.append(found.group())
        position = found.end()
    parts.append(_repair_code(source[position:]))
    return "".join(parts)


def _requote(found: re.Match) -> str:
    value = found.group(3)
    if "\\" in value:
        return found.group()
    return f"{found.group(1)}={json.dumps(value)}"


def _repair_code(code: str) -> str:
    code = _KEYWORD_NAME.sub(lambda found: _RENAMED + found.group(1) + found.group(2), code)
    return _LEADING_ZEROS.sub("", code)


def _restore_keywords(call: RawCall) -> RawCall:
    if not isinstance(call.arguments, dict):
        return call
    arguments = {key[len(_RENAMED):] if key.startswith(_RENAMED) else key: value
                 for key, value in call.arguments.items()}
    return RawCall(call.name, arguments, call.string_values, True, None)


def _after_echo(text: str, end: int, context: ScanContext) -> int | object:
    """End past LFM2's echo of the body (`[...]<|tool_call_end|>` right after the end token)."""
    position = skip_space(text, end)
    if position >= len(text):
        return end if context.final else NEED_MORE
    if text[position] != "[" or len(text) - position > _ECHO_REACH:
        return end
    echo_end = scan_brackets(text, position, python=True)
    if echo_end is None:
        return end if context.final else NEED_MORE
    after = skip_space(text, echo_end)
    if text.startswith(_END, after):
        return after + len(_END)
    if not context.final and _END.startswith(text[after:]):
        return NEED_MORE
    return end
