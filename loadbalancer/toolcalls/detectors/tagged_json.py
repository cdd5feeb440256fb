"""JSON calls inside family-specific tags and tokens.

<tool_calls> holds a JSON array (Jamba, Hunyuan-A13B), one object per line (MiniMax-M1) or Hunyuan
HY's <tool_call>NAME<tool_sep> pairs; InternLM / Intern-S1 write <|action_start|><|plugin|>{json};
Apertus <|tools_prefix|>[{"NAME": {args}}]; Inkling <|message_model|>NAME<|content_invoke_tool_json|>{json};
Meta CWM <tool: LABEL>\\nNAME rest\\n</tool>.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.arguments import decode_structure
from loadbalancer.toolcalls.detectors.glm import hunyuan_calls
from loadbalancer.toolcalls.json_values import calls_in_values, json_value_after, json_value_then, json_values_until
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    array_items,
    find_closer,
    skip_space,
)

_TOOL_CALLS_OPENER = re.compile(r"<tool_calls(?::[\w-]+)?>")
_TOOL_CALLS_PARTIAL = re.compile(r"<(?:t(?:o(?:o(?:l(?:_(?:c(?:a(?:l(?:l(?:s(?::[\w-]*)?)?)?)?)?)?)?)?)?)?)?\Z")
_TOOL_CALLS_CLOSER = re.compile(r"</tool_calls(?::[\w-]+)?>")
_INTERNLM = "<|action_start|><|plugin|>"
_APERTUS = "<|tools_prefix|>"
_INKLING = "<|message_model|>"
_INKLING_CALL = re.compile(r"<\|message_model\|>\s*([\w.\-]+)\s*<\|content_invoke_tool_json\|>")
_INKLING_CLOSER = re.compile(r"<\|end_message\|>")
OPENERS = ("<tool_calls", _INTERNLM, _APERTUS, _INKLING)
_CWM_OPENER = re.compile(r"<tool: *([^>\n]*)>[ \t]*\n?")
_CWM_CLOSER = re.compile(r"\n?</tool>")


def detect_tagged_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """The JSON-in-a-tag families of this module, by their opener."""
    if text.startswith("<t", start):
        return _tool_calls(text, start, context)
    for opener, reader in ((_INTERNLM, _internlm), (_APERTUS, _apertus), (_INKLING, _inkling)):
        if text.startswith(opener, start):
            return reader(text, start, context)
    rest = text[start:]
    waiting = not context.final and any(opener.startswith(rest) for opener in (_INTERNLM, _APERTUS, _INKLING))
    return NEED_MORE if waiting else None


def _tool_calls(text: str, start: int, context: ScanContext) -> DetectorResult:
    opener = _TOOL_CALLS_OPENER.match(text, start)
    if opener is None:
        return NEED_MORE if not context.final and _TOOL_CALLS_PARTIAL.match(text, start) else None
    position = skip_space(text, opener.end())
    if position >= len(text) or not context.final and "<tool_call".startswith(text[position:]):
        return None if context.final else NEED_MORE
    if text.startswith("<tool_call", position):
        found = find_closer(text, position, _TOOL_CALLS_CLOSER, context.final)
        if not isinstance(found, tuple):
            return found
        calls = hunyuan_calls(text, position, found[0], context)
        return Detection(found[1], calls, "hunyuan") if calls else None
    return json_values_until(text, position, context, _TOOL_CALLS_CLOSER, "tool_calls_array")


def _internlm(text: str, start: int, context: ScanContext) -> DetectorResult:
    found = json_value_then(text, start + len(_INTERNLM), context, ("<|action_end|>",))
    if not isinstance(found, tuple):
        return found
    span, end = found
    calls = calls_in_values(text, [span])
    return Detection(end, calls, "internlm") if calls else None


def _apertus(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Apertus: each call is a one-key object {NAME: arguments}; the suffix is optional when cut off."""
    found = json_value_then(text, start + len(_APERTUS), context, ("<|tools_suffix|>",))
    if not isinstance(found, tuple):
        return found
    span, end = found
    decoded = decode_structure(text[span[0]:span[1]], list)
    if not decoded:
        return None
    items = array_items(text, span[0], span[1])
    items = items if len(items) == len(decoded) else [None] * len(decoded)
    calls = []
    for item, where in zip(decoded, items):
        if isinstance(item, dict) and len(item) == 1:
            name, arguments = next(iter(item.items()))
            calls.append(RawCall(str(name), arguments, span=where))
        else:
            calls.append(RawCall("", None, span=where))
    return Detection(end, tuple(calls), "apertus") if any(call.name for call in calls) else None


def _inkling(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Inkling: the header names the tool, the payload repeats it with its args."""
    head = _INKLING_CALL.match(text, start)
    if head is None:
        rest = text[start + len(_INKLING):]
        waiting = not context.final and len(rest) < 120 and re.fullmatch(r"\s*[\w.\-]*\s*(?:<[|\w]*)?", rest)
        return NEED_MORE if waiting else None
    span = json_value_after(text, head.end(), context)
    if not isinstance(span, tuple):
        return span
    found = find_closer(text, span[1], _INKLING_CLOSER, context.final)
    if not isinstance(found, tuple):
        return found
    calls = calls_in_values(text, [span]) or (RawCall(head.group(1), text[span[0]:span[1]]),)
    return Detection(found[1], calls, "inkling")


def detect_cwm(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Meta CWM: the first word of the body names the tool; the rest is JSON or the command itself."""
    opener = _CWM_OPENER.match(text, start)
    if opener is None:
        waiting = not context.final and "\n" not in text[start:] and len(text) - start < 80
        return NEED_MORE if waiting else None
    found = find_closer(text, opener.end(), _CWM_CLOSER, context.final)
    if not isinstance(found, tuple):
        return found
    body = text[opener.end():found[0]].strip()
    name, _, rest = body.partition(" ")
    tool = context.tools.resolve(name)
    if tool is None:
        return None
    rest = rest.strip()
    if rest.startswith("{"):
        arguments: object = rest
    else:
        field = _command_field(context.tools.schemas[tool])
        if field is None:
            return None
        arguments = {field: rest}
    return Detection(found[1], (RawCall(name, arguments),), "cwm")


def _command_field(schema: dict) -> str | None:
    """Where a plain-text body goes: a `command` property, or the one required property."""
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    if "command" in properties:
        return "command"
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    return required[0] if len(required) == 1 and isinstance(required[0], str) else None
