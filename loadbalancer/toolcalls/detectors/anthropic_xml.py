"""Claude-style XML: <function_calls> with named or legacy invokes, bare <invoke>, Cline tool-name tags, <tool_use>.

`named_invokes` is the invoke/parameter reader shared with every family that writes the same
shape under its own prefix (MiniMax, DeepSeek DSML, GigaChat GCML, StepFun steptml, Muse atem).
Olmo 3 writes pythonic call lines inside <function_calls>; those are read here too.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

from loadbalancer.toolcalls.detectors.llama_pythonic import parse_call_lines
from loadbalancer.toolcalls.scan import (
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    delimited,
    find_closer,
    known_properties,
    match_literal,
    skip_space,
    split_tagged_values,
)

_NAMESPACE = "antml" + ":"  # Claude-style output may prefix its tags with this namespace
FUNCTION_CALLS_OPENERS = ("<function_calls>", f"<{_NAMESPACE}function_calls>")
_FUNCTION_CALLS_CLOSER = re.compile(r"</(?:antml:)?function_calls>")
BARE_INVOKE_OPENERS = ("<invoke ", f"<{_NAMESPACE}invoke ")
_BARE_INVOKE_CLOSER = re.compile(r"</(?:antml:)?invoke>")
_LEGACY_NAME = re.compile(r"<tool_name>\s*(.*?)\s*</tool_name>", re.S)
_LEGACY_PARAMETERS = re.compile(r"<parameters>(.*?)(?:</parameters>|\Z)", re.S)
_ANY_TAG = re.compile(r"<([A-Za-z_][\w.-]*)>")
_TAG_NAME = re.compile(r"<([A-Za-z_][\w.-]*)>")
_TAG_NAME_PARTIAL = re.compile(r"<[A-Za-z_][\w.-]*\Z")
_TOOL_USE_CLOSER = re.compile(r"</tool_use>")
_TOOL_USE_NAME = re.compile(r"<name>\s*(.*?)\s*</name>", re.S)
_TOOL_USE_ARGUMENTS = re.compile(r"<arguments>(.*)", re.S)
_ATTRIBUTE_VALUE = r"""\s*=\s*["']?([^"'\s>]+)["']?"""


@lru_cache(maxsize=32)
def _invoke_patterns(prefix: str) -> tuple[re.Pattern, re.Pattern]:
    """The invoke and parameter openers of one prefix (the prefix itself optional on parameters)."""
    escaped = re.escape(prefix)
    invoke = re.compile(rf"<{escaped}invoke\s+name{_ATTRIBUTE_VALUE}\s*>")
    parameter = re.compile(rf"<(?:{escaped})?parameter\s+name{_ATTRIBUTE_VALUE}"
                           rf"""(?:\s+string\s*=\s*["']?(true|false)["']?)?\s*>""")
    return invoke, parameter


def named_invokes(body: str, prefix: str, context: ScanContext, offset: int, spans: bool = True) -> tuple[RawCall, ...]:
    """Calls written <PREFIXinvoke name="F"><PREFIXparameter name="K">V</PREFIXparameter>…</PREFIXinvoke>.

    Names may be quoted or not; string="false" marks a JSON value (DeepSeek DSML); closing tags may
    lack the prefix; an invoke whose body is a JSON object takes it as the arguments.
    """
    invoke, parameter = _invoke_patterns(prefix)
    invokes = list(invoke.finditer(body))
    calls = []
    for index, found in enumerate(invokes):
        section_end = invokes[index + 1].start() if index + 1 < len(invokes) else len(body)
        section = body[found.end():section_end]
        closing = max((section.rfind(closer), closer) for closer in (f"</{prefix}invoke>", "</invoke>"))
        call_end = found.end() + closing[0] + len(closing[1]) if closing[0] >= 0 else section_end
        section = section[:closing[0]] if closing[0] >= 0 else section
        if prefix:
            section = section.replace(f"</{prefix}", "</")
        name = found.group(1)
        span = (offset + found.start(), offset + call_end) if spans else None
        if parameter.search(section) is None and section.strip().startswith("{"):
            calls.append(RawCall(name, section.strip(), span=span))
            continue
        arguments: dict[str, object] = dict(split_tagged_values(section, parameter, "</parameter>",
                                                                known_properties(context, name)))
        for flagged in parameter.finditer(section):
            if flagged.group(2) == "false" and flagged.group(1) in arguments:
                arguments[flagged.group(1)] = _json_or_text(arguments[flagged.group(1)])
        calls.append(RawCall(name, arguments, string_values=True, span=span))
    return tuple(calls)


def _json_or_text(value: object) -> object:
    try:
        return json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return value


def detect_function_calls(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<function_calls> with named invokes, the legacy <tool_name> form, or Olmo 3's pythonic lines."""
    block = delimited(text, start, context, FUNCTION_CALLS_OPENERS, _FUNCTION_CALLS_CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    body = text[body_start:body_end]
    prefix = _NAMESPACE if text.startswith(f"<{_NAMESPACE}", start) else ""
    calls = named_invokes(body, prefix, context, body_start)
    if calls:
        return Detection(end, calls, "anthropic_invoke")
    if "<invoke>" in body:
        calls = _legacy_invokes(body, context)
        return Detection(end, calls, "anthropic_legacy") if calls else None
    calls = parse_call_lines(body, body_start)
    return Detection(end, calls, "olmo3") if calls else None


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


def detect_bare_invoke(text: str, start: int, context: ScanContext) -> DetectorResult:
    """A named <invoke> written without <function_calls> around it (only for the request's tools)."""
    opened = match_literal(text, start, BARE_INVOKE_OPENERS, context.final)
    if not isinstance(opened, int):
        return opened
    prefix = _NAMESPACE if text.startswith(f"<{_NAMESPACE}", start) else ""
    invoke, _ = _invoke_patterns(prefix)
    head = invoke.match(text, start)
    if head is None:
        waiting = not context.final and ">" not in text[start:start + 200] and len(text) - start < 200
        return NEED_MORE if waiting else None
    if context.tools.resolve(head.group(1)) is None:
        return None
    closer = find_closer(text, head.end(), _BARE_INVOKE_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    calls = named_invokes(text[start:closer[1]], prefix, context, start, spans=False)
    return Detection(closer[1], calls, "anthropic_invoke") if calls else None


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
    known = known_properties(context, name)
    closer = _tool_closer(text, position, opener.group(1), known, context.final)
    if closer is None or closer - start > MAX_WEAK_CALL_CHARS:
        waiting = not context.final and len(text) - start <= MAX_WEAK_CALL_CHARS
        return NEED_MORE if waiting else None
    body_end = closer - len(f"</{opener.group(1)}>")
    arguments = split_tagged_values(text[position:body_end], _ANY_TAG, "</{name}>", known)
    return Detection(closer, (RawCall(opener.group(1), arguments, string_values=True),), "tool_name_tags")


def _tool_closer(text: str, position: int, tag: str, known: frozenset[str] | None, final: bool) -> int | None:
    """End of the tool's closing tag: the first one after which no parameter is left open.

    A value may quote the tool's own closing tag (write_file content), so a closing tag inside an
    open parameter does not count; in a complete text the first closing tag is the fallback.
    """
    closing = f"</{tag}>"
    first = None
    found = text.find(closing, position)
    while found >= 0:
        first = found if first is None else first
        if _parameters_closed(text[position:found], known):
            return found + len(closing)
        found = text.find(closing, found + 1)
    return first + len(closing) if final and first is not None else None


def _parameters_closed(body: str, known: frozenset[str] | None) -> bool:
    opened = [(body.rfind(f"<{name}>"), name) for name in known or ()]
    position, name = max(opened, default=(-1, ""))
    return position < 0 or body.find(f"</{name}>", position) >= 0


def detect_tool_use_block(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_use><name>…</name><arguments>{json}</arguments></tool_use> (prompt-based clients)."""
    block = delimited(text, start, context, ("<tool_use>",), _TOOL_USE_CLOSER)
    if not isinstance(block, tuple):
        return block
    body = text[block[0]:block[1]]
    name = _TOOL_USE_NAME.search(body)
    if name is None:
        return None
    arguments = _TOOL_USE_ARGUMENTS.search(body, name.end())
    raw = arguments.group(1) if arguments else None
    if raw is not None and raw.rfind("</arguments>") >= 0:
        raw = raw[:raw.rfind("</arguments>")]
    return Detection(block[2], (RawCall(name.group(1), raw),), "tool_use_block")
