"""Key/value call bodies: GLM's NAME<arg_key>K</arg_key><arg_value>V</arg_value>, and the families built like it.

GLM-4.5/4.6 (newlines between tags), GLM-4.7/5 (none), Ling3, Poolside, HyperCLOVAX, Spark and
iQuest-Q1 (its own tag) write the GLM body; Hunyuan HY v3/v4 adds <tool_sep> after the name and
per-checkpoint suffixes on every tag (<tool_call:6124c78e>); K2 Horizon prefixes its tags with
ifm|; Solar Open 2 and PLaMo 3 use special tokens for the same name/arguments structure.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

from loadbalancer.toolcalls.json_values import json_calls
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    first_delimited,
    find_closer,
    known_properties,
    split_tagged_values,
)

_SPACE = r"(?:\s|\\n)*"    # some GLM outputs hold the two characters \n instead of a newline
_GLM_NAME = re.compile(rf"([^\s<>\\]+){_SPACE}")
_GLM_PAIR = re.compile(rf"<arg_key>\s*([^<]*?)\s*</arg_key>{_SPACE}<arg_value>")

_SUFFIX = r"(?::[\w-]+)?"
_HY_OPENER = re.compile(rf"<tool_call{_SUFFIX}>\s*([^<\s]+)\s*(?:<tool_sep{_SUFFIX}>)?")
_HY_CLOSER = re.compile(rf"</tool_call{_SUFFIX}>")
_HY_TAG_SUFFIX = re.compile(r"<(/?)(arg_key|arg_value)(?::[\w-]+)>")

_IFM_CALL = re.compile(r"<ifm\|tool_call>(.*?)(?:</ifm\|tool_call>|\Z)", re.S)
_IFM_PAIR = re.compile(r"<ifm\|arg_key>\s*([^<]*?)\s*</ifm\|arg_key>\s*(?:<ifm\|arg_type>\s*(\w+)\s*</ifm\|arg_type>\s*)?"
                       r"<ifm\|arg_value>(.*?)</ifm\|arg_value>", re.S)
_SOLAR_PAIR = re.compile(r"<\|tool_arg:start\|>\s*(.*?)\s*<\|tool_arg:value\|>(.*?)"
                         r"(?:<\|tool_arg:end\|>|(?=<\|tool_arg:start\|>)|\Z)",
                         re.S)
_PLAMO_CALL = re.compile(r"<\|plamo:begin_tool_name:plamo\|>(.*?)<\|plamo:end_tool_name:plamo\|>\s*"
                         r"<\|plamo:begin_tool_arguments:plamo\|>(.*?)(?:<\|plamo:end_tool_arguments:plamo\|>|\Z)", re.S)

# opener -> (closer, label)
_KEYED_BLOCKS = {
    "<ifm|tool_calls>": (re.compile(r"</ifm\|tool_calls>"), "k2_horizon"),
    "<|tool_call:start|>": (re.compile(r"<\|tool_call:end\|>|(?=<\|tool_call:start\|>)"), "solar_open"),
    "<|plamo:begin_tool_requests:plamo|>": (re.compile(r"<\|plamo:end_tool_requests:plamo\|>"), "plamo"),
}
KEYED_TOKEN_OPENERS = tuple(_KEYED_BLOCKS)


@lru_cache(maxsize=16)
def _arguments_closer(closer: str) -> re.Pattern:
    return re.compile(rf"</arg_value>{_SPACE}{re.escape(closer)}")


@lru_cache(maxsize=16)
def _plain_closer(closer: str) -> re.Pattern:
    return re.compile(re.escape(closer))


def glm_block(text: str, position: int, context: ScanContext, closer: str) -> DetectorResult:
    """NAME then <arg_key>/<arg_value> pairs (or nothing) up to the closing tag."""
    name = _GLM_NAME.match(text, position)
    if name is None:
        return None
    after = name.end()
    if not text.startswith(("<arg_key>", closer), after):
        waiting = any(marker.startswith(text[after:after + 12]) for marker in ("<arg_key>", closer))
        return NEED_MORE if waiting and not context.final else None
    pattern = _arguments_closer(closer) if text.startswith("<arg_key>", after) else _plain_closer(closer)
    found = find_closer(text, after, pattern, context.final)
    if not isinstance(found, tuple):
        return found
    arguments = split_tagged_values(text[after:found[0]], _GLM_PAIR, "</arg_value>",
                                    known_properties(context, name.group(1)))
    return Detection(found[1], (RawCall(name.group(1), arguments, string_values=True),), "glm")


def hunyuan_calls(text: str, body_start: int, body_end: int, context: ScanContext) -> tuple[RawCall, ...]:
    """Hunyuan HY: <tool_call>NAME<tool_sep><arg_key>K</arg_key><arg_value>V</arg_value></tool_call>, suffixes allowed.

    A call runs to the next <tool_call> and loses its last closing tag, so a value may quote one.
    """
    openers = list(_HY_OPENER.finditer(text, body_start, body_end))
    calls = []
    for index, found in enumerate(openers):
        section_end = openers[index + 1].start() if index + 1 < len(openers) else body_end
        closers = list(_HY_CLOSER.finditer(text, found.end(), section_end))
        call_end = closers[-1].end() if closers else section_end
        section = _HY_TAG_SUFFIX.sub(r"<\1\2>", text[found.end():closers[-1].start() if closers else section_end])
        arguments = split_tagged_values(section, _GLM_PAIR, "</arg_value>", known_properties(context, found.group(1)))
        calls.append(RawCall(found.group(1), arguments, string_values=True, span=(found.start(), call_end)))
    return tuple(calls)


def detect_keyed_tokens(text: str, start: int, context: ScanContext) -> DetectorResult:
    """K2 Horizon <ifm|…>, Solar Open 2 <|tool_call:start|>, PLaMo 3 <|plamo:…|> blocks."""
    found = first_delimited(text, start, context, {opener: closer for opener, (closer, _) in _KEYED_BLOCKS.items()})
    if not isinstance(found, tuple):
        return found
    opener, (body_start, body_end, end) = found
    label = _KEYED_BLOCKS[opener][1]
    reader = {"k2_horizon": _ifm_calls, "solar_open": _solar_calls, "plamo": _plamo_calls}[label]
    calls = reader(text, body_start, body_end)
    return Detection(end, calls, label) if calls else None


def _ifm_calls(text: str, body_start: int, body_end: int) -> tuple[RawCall, ...]:
    calls = []
    for found in _IFM_CALL.finditer(text, body_start, body_end):
        body = found.group(1)
        if body.lstrip().startswith("{"):
            calls.extend(json_calls(body))
            continue
        name = body.split("<", 1)[0].strip()
        arguments = {key: _typed(value, kind) for key, kind, value in _IFM_PAIR.findall(body)}
        calls.append(RawCall(name, arguments, string_values=True, span=found.span()))
    return tuple(calls)


def _typed(value: str, kind: str) -> object:
    if not kind or kind == "string":
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _solar_calls(text: str, body_start: int, body_end: int) -> tuple[RawCall, ...]:
    body = text[body_start:body_end]
    name = body.split("<|", 1)[0].strip()
    arguments: dict[str, str] = {}
    for key, value in _SOLAR_PAIR.findall(body):
        arguments.setdefault(key, value)  # the first occurrence of a repeated key wins
    return (RawCall(name, arguments, string_values=True),) if name else ()


def _plamo_calls(text: str, body_start: int, body_end: int) -> tuple[RawCall, ...]:
    return tuple(RawCall(found.group(1).strip(), found.group(2), span=found.span())
                 for found in _PLAMO_CALL.finditer(text, body_start, body_end))
