"""Claude-style XML: <function_calls> with named or legacy invokes (also MiniMax M2), Cline tool-name tags, <tool_use> blocks."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    RawCall,
    ScanContext,
    find_closer,
    known_properties,
    match_literal,
    skip_space,
    split_tagged_values,
)

_NAMESPACE = "antml" + ":"  # Claude-style output may prefix its tags with this namespace
_INVOKE_OPENERS = ("<function_calls>", f"<{_NAMESPACE}function_calls>", "<minimax:tool_call>")
_INVOKE_CLOSER = re.compile(r"</(?:antml:)?function_calls>|</minimax:tool_call>")
_NAMED_INVOKE = re.compile(r'<(?:antml:)?invoke name="([^"]+)"\s*>')
_INVOKE_PARAMETER = re.compile(r'<(?:antml:)?parameter name="([^"]+)"\s*>')
_LEGACY_NAME = re.compile(r"<tool_name>\s*(.*?)\s*</tool_name>", re.S)
_LEGACY_PARAMETERS = re.compile(r"<parameters>(.*?)(?:</parameters>|\Z)", re.S)
_ANY_TAG = re.compile(r"<([A-Za-z_][\w.-]*)>")
_TAG_NAME = re.compile(r"<([A-Za-z_][\w.-]*)>")
_TAG_NAME_PARTIAL = re.compile(r"<[A-Za-z_][\w.-]*\Z")
_TOOL_USE_CLOSER = re.compile(r"</tool_use>")
_TOOL_USE_NAME = re.compile(r"<name>\s*(.*?)\s*</name>", re.S)
_TOOL_USE_ARGUMENTS = re.compile(r"<arguments>(.*)", re.S)


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
        calls = named_invokes(body, _NAMED_INVOKE, _INVOKE_PARAMETER, "</", context)
    else:
        label, calls = "anthropic_legacy", _legacy_invokes(body, context)
    return Detection(closer[1], calls, label) if calls else None


def named_invokes(body: str, invoke: re.Pattern, parameter: re.Pattern, closer_prefix: str,
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
