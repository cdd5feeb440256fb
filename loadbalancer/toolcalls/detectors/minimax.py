"""MiniMax M2 <minimax:tool_call> invokes, MiniMax M3's namespaced tags, dots.llm and MiniCPM5 XML calls.

M2 (and dots) write <invoke name=F><parameter name=K>V</parameter></invoke>, names quoted or not.
M3 puts the token ]<]minimax[>[ before every tag and names each parameter's tag after the
parameter (<city>Lviv</city>), nesting tags for objects and <item> for array elements. MiniCPM5
writes <function name="F"><param name="K">V</param></function>, values possibly in CDATA.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.anthropic_xml import named_invokes
from loadbalancer.toolcalls.json_values import json_calls
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    delimited,
    first_delimited,
    known_properties,
    match_literal,
    split_tagged_values,
)

OPENERS = ("<minimax:tool_call>", "<dots_function_call>")
_CLOSERS = {"<minimax:tool_call>": re.compile(r"</minimax:tool_call>"),
            "<dots_function_call>": re.compile(r"</dots_function_call>")}

_M3_TOKEN = "]<]minimax[>["
M3_OPENERS = (_M3_TOKEN,)
_M3_OPENER = re.compile(re.escape(_M3_TOKEN) + r"\s*<tool_call>")
_M3_OPENER_PARTIAL = re.compile(r"\s*<?(?:t(?:o(?:o(?:l(?:_(?:c(?:a(?:l(?:l>?)?)?)?)?)?)?)?)?)?")
_M3_CLOSER = re.compile(re.escape(_M3_TOKEN) + r"\s*</tool_call>")
_M3_TOKEN_BEFORE_TAG = re.compile(re.escape(_M3_TOKEN) + r"\s*(?=<)")
_M3_INVOKE = re.compile(r"""<invoke\s+name\s*=\s*["']?([^"'\s>]+)["']?\s*>(.*?)(?:</invoke>|\Z)""", re.S)
_XML_CHILD = re.compile(r"<([A-Za-z_][\w.\-]*)>(.*?)</\1>", re.S)

FUNCTION_PARAM_OPENERS = ("<function name=", "<functionname=")
_FUNCTION_HEAD = re.compile(r"""<function\s*name\s*=\s*["']?([^"'\s>]+)["']?\s*>""")
_FUNCTION_CLOSER = re.compile(r"</function>")
_PARAM = re.compile(r"""<param\s*name\s*=\s*["']?([^"'\s>]+)["']?\s*>""")
_CDATA = re.compile(r"\A\s*<!\[CDATA\[(.*)\]\]>\s*\Z", re.S)


def detect_minimax(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<minimax:tool_call> or dots' <dots_function_call> around invokes (or a JSON call object for dots)."""
    found = first_delimited(text, start, context, _CLOSERS)
    if not isinstance(found, tuple):
        return found
    opener, (body_start, body_end, end) = found
    calls = named_invokes(text[body_start:body_end], "", context, body_start)
    if not calls and opener.startswith("<dots"):
        calls = json_calls(text[body_start:body_end].strip())
    return Detection(end, calls, "minimax") if calls else None


def detect_minimax_m3(text: str, start: int, context: ScanContext) -> DetectorResult:
    """MiniMax M3: namespace tokens before every tag; parameter tags named after the parameter."""
    opener = _M3_OPENER.match(text, start)
    if opener is None:
        after = text[start + len(_M3_TOKEN):] if text.startswith(_M3_TOKEN, start) else ""
        partial = after and _M3_OPENER_PARTIAL.fullmatch(after)
        waiting = not context.final and (_M3_TOKEN.startswith(text[start:]) or partial)
        return NEED_MORE if waiting else None
    found = _M3_CLOSER.search(text, opener.end())
    if found is None and not context.final:
        return NEED_MORE
    body_end, end = (found.start(), found.end()) if found else (len(text), len(text))
    body = _M3_TOKEN_BEFORE_TAG.sub("", text[opener.end():body_end])
    calls = []
    for invoke in _M3_INVOKE.finditer(body):
        structured = _structured_properties(context, invoke.group(1))
        arguments = {name: _xml_value(value) if name in structured else value.strip("\n")
                     for name, value in _XML_CHILD.findall(invoke.group(2))}
        calls.append(RawCall(invoke.group(1), arguments, string_values=True))
    return Detection(end, tuple(calls), "minimax") if calls else None


def _structured_properties(context: ScanContext, tool_name: str) -> frozenset[str]:
    """Properties whose schema is an object or an array: only their nested tags are structure."""
    exact = context.tools.resolve(tool_name)
    properties = context.tools.schemas.get(exact, {}).get("properties") if exact else None
    if not isinstance(properties, dict):
        return frozenset()
    return frozenset(name for name, schema in properties.items()
                     if isinstance(schema, dict) and schema.get("type") in ("object", "array"))


def _xml_value(value: str) -> object:
    """A parameter's text, or the object / array its nested tags spell (<item> for array elements)."""
    children = _XML_CHILD.findall(value)
    if not children or _XML_CHILD.sub("", value).strip():
        return value.strip("\n")
    if all(name == "item" for name, _ in children):
        return [_xml_value(child) for _, child in children]
    return {name: _xml_value(child) for name, child in children}


def detect_function_param(text: str, start: int, context: ScanContext) -> DetectorResult:
    """MiniCPM5: <function name="F"><param name="K">V</param>…</function>."""
    opened = match_literal(text, start, FUNCTION_PARAM_OPENERS, context.final)
    if not isinstance(opened, int):
        return opened
    head = _FUNCTION_HEAD.match(text, start)
    if head is None:
        return NEED_MORE if not context.final and ">" not in text[start:start + 200] else None
    block = delimited(text, start, context, (head.group(),), _FUNCTION_CLOSER)
    if not isinstance(block, tuple):
        return block
    body = text[block[0]:block[1]]
    values = split_tagged_values(body, _PARAM, "</param>", known_properties(context, head.group(1)))
    arguments = {key: _without_cdata(value) for key, value in values.items()}
    return Detection(block[2], (RawCall(head.group(1), arguments, string_values=True),), "minicpm")


def _without_cdata(value: str) -> str:
    found = _CDATA.match(value)
    return found.group(1) if found else value
