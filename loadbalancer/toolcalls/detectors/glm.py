"""GLM-4.5/4.6/4.7 <tool_call>NAME<arg_key>K</arg_key><arg_value>V</arg_value></tool_call>."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    NEED_MORE,
    RawCall,
    ScanContext,
    find_closer,
    known_properties,
    split_tagged_values,
)

_TOOL_CALL_CLOSER = re.compile(r"</(?:seed:)?tool_call>")
_GLM_NAME = re.compile(r"([^\s<>]+)\s*")
_GLM_PAIR = re.compile(r"<arg_key>\s*(.*?)\s*</arg_key>\s*<arg_value>")
_GLM_ARGUMENTS_CLOSER = re.compile(r"</arg_value>\s*</tool_call>")


def glm_block(text: str, position: int, context: ScanContext) -> DetectorResult:
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
