"""Detectors for the text tool-call formats whose arguments are JSON (or Python/Gemma literals).

Same contract as toolcall_formats: Detection, None or NEED_MORE, stable once not NEED_MORE.
"""
from __future__ import annotations

import ast
import json
import re

from loadbalancer.toolcalls.xml_detectors import MAX_CALL_CHARS, MAX_WEAK_CALL_CHARS, json_calls
from loadbalancer.toolcalls.scan import (
    NEED_MORE,
    skip_space,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    bracket_value_end,
    find_closer,
    match_literal,
    optional_trailer,
)

_BAR, _LOW = "[｜|]", "[▁_]"
_DEEPSEEK_OPENERS = tuple(f"<{bar}tool{low}calls{low}begin{bar}>" for bar in "｜|" for low in "▁_")
_DEEPSEEK_CLOSER = re.compile(f"<{_BAR}tool{_LOW}calls{_LOW}end{_BAR}>")
_DEEPSEEK_CALL = re.compile(
    f"<{_BAR}tool{_LOW}call{_LOW}begin{_BAR}>(.*?)<{_BAR}tool{_LOW}sep{_BAR}>(.*?)(?:<{_BAR}tool{_LOW}call{_LOW}end{_BAR}>|\\Z)",
    re.S)
_FENCED_ARGUMENTS = re.compile(r"\A\s*([^\n]+?)\s*\n\s*```(?:json)?\s*(.*?)\s*(?:```\s*)?\Z", re.S)
_KIMI_CLOSER = re.compile(r"<\|tool_calls_section_end\|>")
_KIMI_CALL = re.compile(
    r"<\|tool_call_begin\|>\s*(.*?)\s*<\|tool_call_argument_begin\|>(.*?)(?:<\|tool_call_end\|>|\Z)", re.S)
_HARMONY_MESSAGE = re.compile(r"<\|message\|>")
_HARMONY_RECIPIENT = re.compile(r"to=([\w.:\-]+)")
_HARMONY_CLOSER = re.compile(r"<\|call\|>|<\|end\|>|<\|return\|>")
_TOOL_CALLS_CLOSER = re.compile(r"</tool_calls>")
_GEMMA_OPENERS = ("<|tool_call>call:", "<start_function_call>call:")
_GEMMA_NAME = re.compile(r"([\w.\-]+)\s*")
_GEMMA_CLOSER = re.compile(r"<tool_call\|>|<end_function_call>")
_GEMMA_STRING = re.compile(r'<\|"\|>(.*?)<\|"\|>|<escape>(.*?)<escape>', re.S)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w\-]*)\s*:")
_GLAIVE_SHAPE = re.compile(r"""\A\{\s*"name"\s*:\s*"([^"]+)"\s*,\s*"arguments"\s*:\s*'(.*)'\s*\}\Z""", re.S)
_MISTRAL_NAME = re.compile(r"([\w.\-]+)(?:\[CALL_ID\][\w\-]*)?(?:\[ARGS\])?\s*")
_CHAIN = re.compile(r"[ \t]*(;)?\s*")
_PYTHONIC_NAME = re.compile(r"\[\s*([A-Za-z_][\w.\-]*)\s*\(")
_PYTHONIC_PARTIAL = re.compile(r"\[\s*[A-Za-z_][\w.\-]*\s*\Z|\[\s*\Z")
_FENCE_OPENER = re.compile(r"```[ \t]*(?:json|JSON|tool_call|tool_code)?[ \t]*\n")
_FENCE_PARTIAL = re.compile(r"`{1,3}\Z|```[ \t]*\w*[ \t]*\Z")
def _json_after(text: str, position: int, context: ScanContext, cap: int = MAX_CALL_CHARS) -> tuple[int, int] | DetectorResult:
    """(start, end) of the JSON value after optional whitespace; None when none starts there."""
    position = skip_space(text, position)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] not in "{[":
        return None
    end = bracket_value_end(text, position, context, cap)
    return (position, end) if isinstance(end, int) else end


def detect_mistral(text: str, start: int, context: ScanContext) -> DetectorResult:
    """[TOOL_CALLS]name[ARGS]{…} (v11+) or [TOOL_CALLS] [{…}] (pre-v11)."""
    body_start = match_literal(text, start, ("[TOOL_CALLS]",), context.final)
    if not isinstance(body_start, int):
        return body_start
    position = skip_space(text, body_start)
    if position < len(text) and text[position] in "[{":
        span = _json_after(text, position, context)
        if not isinstance(span, tuple):
            return span
        calls = json_calls(text[span[0]:span[1]])
        return Detection(span[1], calls, "mistral_legacy") if calls else None
    name = _MISTRAL_NAME.match(text, position)
    if name is None or name.end() >= len(text):
        return None if context.final or name is None and position < len(text) else NEED_MORE
    span = _json_after(text, name.end(), context)
    if not isinstance(span, tuple):
        return span
    return Detection(span[1], (RawCall(name.group(1), text[span[0]:span[1]]),), "mistral")


def detect_deepseek(text: str, start: int, context: ScanContext) -> DetectorResult:
    """DeepSeek V3 (function<sep>name + fenced JSON) and V3.1 (name<sep>JSON), ASCII look-alikes too."""
    body_start = match_literal(text, start, _DEEPSEEK_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _DEEPSEEK_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    calls, label = [], "deepseek_v31"
    for found in _DEEPSEEK_CALL.finditer(text, body_start, closer[0]):
        head, arguments = found.group(1).strip(), found.group(2)
        if head == "function":
            fenced = _FENCED_ARGUMENTS.match(arguments)
            if fenced is None:
                return None
            head, arguments, label = fenced.group(1), fenced.group(2), "deepseek_v3"
        calls.append(RawCall(head, arguments))
    return Detection(closer[1], tuple(calls), label) if calls else None


def detect_kimi(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Kimi K2 sections: functions.name:0 then the JSON arguments."""
    body_start = match_literal(text, start, ("<|tool_calls_section_begin|>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _KIMI_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    calls = tuple(RawCall(found.group(1), found.group(2))
                  for found in _KIMI_CALL.finditer(text, body_start, closer[0]))
    return Detection(closer[1], calls, "kimi") if calls else None


def detect_harmony(text: str, start: int, context: ScanContext) -> DetectorResult:
    """gpt-oss Harmony: a commentary message addressed to=functions.name."""
    opened = match_literal(text, start, ("<|start|>assistant", "<|channel|>"), context.final)
    if not isinstance(opened, int):
        return opened
    message = _HARMONY_MESSAGE.search(text, opened, opened + 300)
    if message is None:
        return NEED_MORE if not context.final and len(text) - opened < 300 else None
    recipient = _HARMONY_RECIPIENT.search(text, start, message.start())
    if recipient is None:
        return None  # analysis or final channel: reasoning or prose, not a call
    closer = find_closer(text, message.end(), _HARMONY_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    return Detection(closer[1], (RawCall(recipient.group(1), text[message.end():closer[0]]),), "harmony")


def detect_tool_calls_array(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<tool_calls>[…]</tool_calls> (Jamba, Hunyuan) or one object per line (MiniMax-M1)."""
    body_start = match_literal(text, start, ("<tool_calls>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    calls: list[RawCall] = []
    position = body_start
    while True:
        span = _json_after(text, position, context)
        if span is None:
            break
        if not isinstance(span, tuple):
            return span
        found = json_calls(text[span[0]:span[1]])
        if not found:
            return None
        calls.extend(found)
        position = span[1]
    closer = find_closer(text, position, _TOOL_CALLS_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    return Detection(closer[1], tuple(calls), "tool_calls_array") if calls else None


def detect_prefixed_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Granite <|tool_call|>[…], Phi functools[…], InternLM <|action_start|><|plugin|>{…}, Llama <|python_tag|>{…}."""
    prefixes = ("<|tool_call|>", "functools", "<|action_start|><|plugin|>", "<|python_tag|>")
    body_start = match_literal(text, start, prefixes, context.final)
    if not isinstance(body_start, int):
        return body_start
    label = ("internlm" if text.startswith("<|action", start)
             else "llama_json" if text.startswith("<|python_tag|>", start) else "granite")
    spans = _json_chain(text, body_start, context, MAX_CALL_CHARS, chained=label == "llama_json")
    if not isinstance(spans, list):
        return spans
    calls = tuple(call for begin, end in spans for call in json_calls(text[begin:end]))
    if len(calls) < len(spans):
        return None
    trailers = ("<|action_end|>",) if label == "internlm" else ("<|eom_id|>", "<|eot_id|>")
    end = optional_trailer(text, spans[-1][1], trailers, context.final)
    if not isinstance(end, int):
        return end
    return Detection(end, calls, label) if calls else None


def detect_gemma(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Gemma call:name{key:<|"|>value<|"|>} and FunctionGemma's <escape> strings."""
    body_start = match_literal(text, start, _GEMMA_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _GEMMA_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    name = _GEMMA_NAME.match(text, body_start, closer[0])
    if name is None:
        return None
    arguments = gemma_arguments_to_json(text[name.end():closer[0]])
    return Detection(closer[1], (RawCall(name.group(1), arguments),), "gemma")


def gemma_arguments_to_json(body: str) -> str:
    """Rewrite Gemma's {key:<|"|>text<|"|>,n:5} as JSON text (strings quoted, bare keys quoted)."""
    parts, position = [], 0
    for found in _GEMMA_STRING.finditer(body):
        parts.append(_BARE_KEY.sub(r'\1"\2":', body[position:found.start()]))
        parts.append(json.dumps(found.group(1) if found.group(1) is not None else found.group(2)))
        position = found.end()
    parts.append(_BARE_KEY.sub(r'\1"\2":', body[position:]))
    return "".join(parts).strip() or "{}"


def detect_glaive(text: str, start: int, context: ScanContext) -> DetectorResult:
    """<functioncall> {"name": …, "arguments": '{…}'} with single-quoted arguments."""
    body_start = match_literal(text, start, ("<functioncall>",), context.final)
    if not isinstance(body_start, int):
        return body_start
    span = _json_after(text, body_start, context)
    if not isinstance(span, tuple):
        return span
    raw = text[span[0]:span[1]]
    shape = _GLAIVE_SHAPE.match(raw)
    if shape:
        calls: tuple[RawCall, ...] = (RawCall(shape.group(1), shape.group(2)),)
    else:
        calls = json_calls(raw)
    return Detection(span[1], calls, "glaive") if calls else None


def detect_pythonic(text: str, start: int, context: ScanContext) -> DetectorResult:
    """[name(key=value), …] at a line start, or wrapped in Llama 4's <|python_start|>…<|python_end|>."""
    wrapped = match_literal(text, start, ("<|python_start|>",), context.final)
    if wrapped is NEED_MORE:
        return wrapped
    position = skip_space(text, wrapped) if isinstance(wrapped, int) else start
    if wrapped is None and (not context.line_start or context.in_fence):
        return None
    if position >= len(text):
        return None if context.final else NEED_MORE
    name = _PYTHONIC_NAME.match(text, position)
    if name is None:
        partial = not context.final and _PYTHONIC_PARTIAL.match(text, position)
        return NEED_MORE if partial and len(text) - position < 100 else None
    if context.tools.resolve(name.group(1)) is None:
        return None
    end = bracket_value_end(text, position, context, MAX_WEAK_CALL_CHARS, python=True)
    if not isinstance(end, int):
        return end
    calls = parse_pythonic_calls(text[position:end])
    if not calls:
        return None
    if isinstance(wrapped, int):
        end = optional_trailer(text, end, ("<|python_end|>",), context.final)
        if not isinstance(end, int):
            return end
    return Detection(end, calls, "pythonic")


def parse_pythonic_calls(source: str) -> tuple[RawCall, ...]:
    """Calls from a Python list of calls with keyword literal arguments; () when it is not one."""
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError:
        return ()
    if not isinstance(tree.body, ast.List):
        return ()
    calls = []
    for element in tree.body.elts:
        if not isinstance(element, ast.Call) or element.args or not isinstance(element.func, (ast.Name, ast.Attribute)):
            return ()
        try:
            arguments = {keyword.arg: _literal(keyword.value) for keyword in element.keywords}
        except ValueError:
            return ()
        calls.append(RawCall(ast.unparse(element.func), arguments))
    return tuple(calls)


def _literal(node: ast.expr) -> object:
    """A Python literal, also accepting JSON's true/false/null."""
    if isinstance(node, ast.Name) and node.id in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[node.id]
    return ast.literal_eval(node)


def detect_bare_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """A call object or array of them on its own line: G3 {"tool": …}, Llama {"name", "parameters"}, xLAM […]."""
    if not context.line_start or context.in_fence:
        return None
    position = skip_space(text, start + 1)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[start] == "[":
        if text[position] != "{":
            return None
        position = skip_space(text, position + 1)
        if position >= len(text):
            return None if context.final else NEED_MORE
    if text[position] != '"':
        return None
    spans = _json_chain(text, start, context, MAX_WEAK_CALL_CHARS, chained=True)
    if not isinstance(spans, list):
        return spans
    return _json_detection(text, spans, spans[-1][1])


def _json_chain(text: str, position: int, context: ScanContext, cap: int, chained: bool) -> list[tuple[int, int]] | DetectorResult:
    """Spans of JSON values joined by "; " (Llama's way of writing several calls)."""
    spans: list[tuple[int, int]] = []
    while True:
        span = _json_after(text, position, context, cap)
        if not isinstance(span, tuple):
            return span if span is NEED_MORE or not spans else spans
        spans.append(span)
        if not chained:
            return spans
        separator = _CHAIN.match(text, span[1])
        if separator.end() >= len(text):
            return spans if context.final else NEED_MORE
        if not separator.group(1) or text[separator.end()] != "{":
            return spans
        position = separator.end()


def _json_detection(text: str, spans: list[tuple[int, int]], end: int) -> Detection | None:
    calls = [call for begin, finish in spans for call in json_calls(text[begin:finish])]
    if not calls or len(calls) < len(spans):
        return None
    first = text[spans[0][0]:spans[0][1]]
    label = "g3_json" if '"tool"' in first[:200] else "llama_json" if '"parameters"' in first else "json"
    return Detection(end, tuple(calls), label)


def detect_fenced_json(text: str, start: int, context: ScanContext) -> DetectorResult:
    """```json fence whose whole content is one or more call objects."""
    if not context.line_start or context.in_fence:
        return None
    opener = _FENCE_OPENER.match(text, start)
    if opener is None:
        partial = not context.final and _FENCE_PARTIAL.match(text, start)
        return NEED_MORE if partial else None
    spans = []
    span = _json_after(text, opener.end(), context, MAX_WEAK_CALL_CHARS)
    while isinstance(span, tuple):
        spans.append(span)
        span = _json_after(text, span[1], context, MAX_WEAK_CALL_CHARS)
    if span is not None or not spans:
        return span
    after = skip_space(text, spans[-1][1])
    if text.startswith("```", after):
        end = after + 3
    elif after < len(text) and not "```".startswith(text[after:]):
        return None
    elif not context.final:
        return NEED_MORE
    else:
        end = len(text)
    detection = _json_detection(text, spans, end)
    return Detection(detection.end, detection.calls, "json") if detection else None
