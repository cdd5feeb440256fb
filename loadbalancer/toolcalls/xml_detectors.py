"""Detectors for the XML-style text tool-call formats; each looks at one position of the text.

A detector answers a Detection (a block of calls ending at .end), None (not this format), or
NEED_MORE (the text so far could still become a call). An answer other than NEED_MORE never
changes when more text arrives, which is what makes the streaming parser equal the complete one.
"""
from __future__ import annotations

import json
import re

from loadbalancer.toolcalls.arguments import decode_arguments, decode_structure, split_call_object
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    skip_space,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    bracket_value_end,
    find_closer,
    known_properties,
    match_literal,
    split_tagged_values,
)

MAX_CALL_CHARS = 1_000_000       # a marker-delimited call may be large (write_file content)
MAX_WEAK_CALL_CHARS = 64_000     # formats without special markers give up sooner, so prose is not held

_TOOL_CALL_OPENERS = ("<tool_call>", "<seed:tool_call>")
_TOOL_CALL_CLOSER = re.compile(r"</(?:seed:)?tool_call>")
_QWEN_CLOSER = re.compile(r"</function>\s*</(?:seed:)?tool_call>")
_QWEN_FUNCTION = re.compile(r"<function=([^>\n]+)>")
_QWEN_PARAMETER = re.compile(r"<parameter=([^>\n]+)>")
_GLM_NAME = re.compile(r"([^\s<>]+)\s*")
_GLM_PAIR = re.compile(r"<arg_key>\s*(.*?)\s*</arg_key>\s*<arg_value>")
_GLM_ARGUMENTS_CLOSER = re.compile(r"</arg_value>\s*</tool_call>")
_NAMESPACE = "antml" + ":"  # Claude-style output may prefix its tags with this namespace
_INVOKE_OPENERS = ("<function_calls>", f"<{_NAMESPACE}function_calls>", "<minimax:tool_call>")
_INVOKE_CLOSER = re.compile(r"</(?:antml:)?function_calls>|</minimax:tool_call>")
_NAMED_INVOKE = re.compile(r'<(?:antml:)?invoke name="([^"]+)"\s*>')
_INVOKE_PARAMETER = re.compile(r'<(?:antml:)?parameter name="([^"]+)"\s*>')
_LEGACY_NAME = re.compile(r"<tool_name>\s*(.*?)\s*</tool_name>", re.S)
_LEGACY_PARAMETERS = re.compile(r"<parameters>(.*?)(?:</parameters>|\Z)", re.S)
_ANY_TAG = re.compile(r"<([A-Za-z_][\w.-]*)>")
_DSML_OPENERS = ("<｜DSML｜function_calls>", "<|DSML|function_calls>")
_DSML_CLOSER = re.compile(r"</[｜|]DSML[｜|]function_calls>")
_DSML_INVOKE = re.compile(r'<｜DSML｜invoke name="([^"]+)"\s*>')
_DSML_PARAMETER = re.compile(r'<｜DSML｜parameter name="([^"]+)"(?:\s+string="(?:true|false)")?\s*>')
_TAG_NAME = re.compile(r"<([A-Za-z_][\w.-]*)>")
_TAG_NAME_PARTIAL = re.compile(r"<[A-Za-z_][\w.-]*\Z")
_TOOL_USE_CLOSER = re.compile(r"</tool_use>")
_TOOL_USE_NAME = re.compile(r"<name>\s*(.*?)\s*</name>", re.S)
_TOOL_USE_ARGUMENTS = re.compile(r"<arguments>(.*)", re.S)
_FUNCTION_OPENER = re.compile(r"<function=([^>\s]+)>")
_FUNCTION_PARTIAL = re.compile(r"<(?:f(?:u(?:n(?:c(?:t(?:i(?:o(?:n(?:=[^>\s]*)?)?)?)?)?)?)?)?)?\Z")
_FUNCTION_CLOSER = re.compile(r"\s*</function>")
def json_calls(text: str) -> tuple[RawCall, ...]:
    """Calls from a JSON object or array of call objects; () when any item is not a call."""
    if text.lstrip().startswith("["):
        decoded = decode_structure(text, list)
        items = [item for item in decoded or () if isinstance(item, dict)]
        repaired = decoded is not None and _needs_repair(text)
    else:
        value, repaired = decode_arguments(text)
        items = [value] if value is not None else []
    calls = []
    for item in items:
        split = split_call_object(item)
        if split is None:
            return ()
        calls.append(RawCall(split[0], split[1], repaired=repaired))
    return tuple(calls)


def _needs_repair(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False


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
    return _glm_block(text, position, context)


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


def _glm_block(text: str, position: int, context: ScanContext) -> DetectorResult:
    name = _GLM_NAME.match(text, position)
    if name is None:
        return None
    after = name.end()
    if not text.startswith(("<arg_key>", "</tool_call>"), after):
        waiting = any(marker.startswith(text[after:after + 12]) for marker in ("<arg_key>", "</tool_call>"))
        return NEED_MORE if waiting and not context.final else None
    closer_pattern = _GLM_ARGUMENTS_CLOSER if text.startswith("<arg_key>", after) else _TOOL_CALL_CLOSER
    closer = find_closer(text, after, closer_pattern, context.final)
    if not isinstance(closer, tuple):
        return closer
    body = text[name.end():closer[0]]
    arguments = split_tagged_values(body, _GLM_PAIR, "</arg_value>", known_properties(context, name.group(1)))
    return Detection(closer[1], (RawCall(name.group(1), arguments, string_values=True),), "glm")


def detect_invoke_block(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<function_calls> or <minimax:tool_call> with named invokes, or the legacy <tool_name> form."""
    body_start = match_literal(text, start, _INVOKE_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _INVOKE_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    body = text[body_start:closer[0]]
    if _NAMED_INVOKE.search(body):
        label = "minimax" if text.startswith("<minimax:", start) else "anthropic_invoke"
        calls = _named_invokes(body, _NAMED_INVOKE, _INVOKE_PARAMETER, "</", context)
    else:
        label, calls = "anthropic_legacy", _legacy_invokes(body, context)
    return Detection(closer[1], calls, label) if calls else None


def _named_invokes(body: str, invoke: re.Pattern, parameter: re.Pattern, closer_prefix: str,
                   context: ScanContext) -> tuple[RawCall, ...]:
    calls = []
    invokes = list(invoke.finditer(body))
    for index, found in enumerate(invokes):
        invoke_end = invokes[index + 1].start() if index + 1 < len(invokes) else len(body)
        section = body[found.end():invoke_end].replace(closer_prefix + _NAMESPACE, closer_prefix)
        name = found.group(1).strip()
        arguments = split_tagged_values(section, parameter, closer_prefix + "parameter>",
                                        known_properties(context, name))
        calls.append(RawCall(name, arguments, string_values=True))
    return tuple(calls)


def _legacy_invokes(body: str, context: ScanContext) -> tuple[RawCall, ...]:
    calls = []
    for section in body.split("<invoke>")[1:]:
        name = _LEGACY_NAME.search(section)
        if name is None:
            return ()
        parameters = _LEGACY_PARAMETERS.search(section, name.end())
        known = known_properties(context, name.group(1))
        arguments = split_tagged_values(parameters.group(1), _ANY_TAG, "</{name}>", known) if parameters else {}
        calls.append(RawCall(name.group(1), arguments, string_values=True))
    return tuple(calls)


def detect_dsml(text: str, start: int, context: ScanContext) -> DetectorResult:
    """DeepSeek V3.2 DSML invokes (also with ASCII bars)."""
    body_start = match_literal(text, start, _DSML_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _DSML_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    body = text[body_start:closer[0]].replace("|DSML|", "｜DSML｜")
    calls = _named_invokes(body, _DSML_INVOKE, _DSML_PARAMETER, "</｜DSML｜", context)
    return Detection(closer[1], calls, "deepseek_dsml") if calls else None


def detect_tool_name_tag(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Cline-style <read_file><path>…</path></read_file>, only for the request's tool names."""
    opener = _TAG_NAME.match(text, start)
    if opener is None:
        partial = not context.final and _TAG_NAME_PARTIAL.match(text, start)
        return NEED_MORE if partial and len(text) - start < 80 else None
    name = context.tools.resolve(opener.group(1))
    if name is None:
        return None
    position = skip_space(text, opener.end())
    if position >= len(text):
        return None if context.final else NEED_MORE
    if not text.startswith("<", position):  # prose such as "the <read_file> tool"
        return None
    closer = re.compile("</" + re.escape(opener.group(1)) + ">").search(text, position)
    if closer is None or closer.end() - start > MAX_WEAK_CALL_CHARS:
        waiting = not context.final and len(text) - start <= MAX_WEAK_CALL_CHARS
        return NEED_MORE if waiting else None
    arguments = split_tagged_values(text[position:closer.start()], _ANY_TAG, "</{name}>",
                                    known_properties(context, name))
    return Detection(closer.end(), (RawCall(opener.group(1), arguments, string_values=True),), "tool_name_tags")


def detect_tool_use_block(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_use><name>…</name><arguments>{json}</arguments></tool_use> (prompt-based clients)."""
    body_start = match_literal(text, start, ("<tool_use>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _TOOL_USE_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    body = text[body_start:closer[0]]
    name = _TOOL_USE_NAME.search(body)
    if name is None:
        return None
    arguments = _TOOL_USE_ARGUMENTS.search(body, name.end())
    raw = arguments.group(1) if arguments else None
    if raw is not None and raw.rfind("</arguments>") >= 0:
        raw = raw[:raw.rfind("</arguments>")]
    return Detection(closer[1], (RawCall(name.group(1), raw),), "tool_use_block")


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
