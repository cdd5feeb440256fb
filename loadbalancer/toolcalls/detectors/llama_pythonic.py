"""Llama JSON (<|python_tag|>, `; ` between calls) and pythonic calls: [f(a=1)] lists, Llama 4's
<|python_start|>, Olmo 3's call lines (inside <function_calls>) and Granite's bare call lines.

Python literals are read with `ast` (never evaluated); JSON's true/false/null are accepted too. A
list element that is not a call with literal keyword arguments stays text, the others are calls.
"""
from __future__ import annotations

import ast
import re

from loadbalancer.toolcalls.json_values import calls_in_values, json_value_after
from loadbalancer.toolcalls.scan import (
    MAX_CALL_CHARS,
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    bracket_value_end,
    match_literal,
    optional_trailer,
    skip_space,
)

PYTHON_TAG_OPENERS = ("<|python_tag|>",)
PYTHONIC_OPENERS = ("<|python_start|>",)
_CHAIN = re.compile(r"[ \t]*(;)?\s*")
_PYTHONIC_NAME = re.compile(r"\[\s*([A-Za-z_][\w.\-]*)\s*\(")
_PYTHONIC_PARTIAL = re.compile(r"\[\s*[A-Za-z_][\w.\-]*\s*\Z|\[\s*\Z")
_CALL_LINE = re.compile(r"[ \t]*([A-Za-z_][\w.]*)[ \t]*\(")
_JSON_NAMES = {"true": True, "false": False, "null": None}


def json_chain(text: str, position: int, context: ScanContext, cap: int,
               chained: bool) -> list[tuple[int, int]] | DetectorResult:
    """Spans of JSON values joined by "; " (Llama's way of writing several calls)."""
    spans: list[tuple[int, int]] = []
    while True:
        span = json_value_after(text, position, context, cap)
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


def detect_python_tag(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Llama 3.x <|python_tag|>{"name": …, "parameters": …}; {…} then an optional <|eom_id|>."""
    body_start = match_literal(text, start, PYTHON_TAG_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    spans = json_chain(text, body_start, context, MAX_CALL_CHARS, chained=True)
    if not isinstance(spans, list):
        return spans
    calls = calls_in_values(text, spans)
    end = optional_trailer(text, spans[-1][1], ("<|eom_id|>", "<|eot_id|>"), context.final)
    if not isinstance(end, int):
        return end
    return Detection(end, calls, "llama_json") if calls else None


def detect_pythonic(text: str, start: int, context: ScanContext) -> DetectorResult:
    """[name(key=value), …] at a line start, or wrapped in Llama 4's <|python_start|>…<|python_end|>."""
    wrapped = match_literal(text, start, PYTHONIC_OPENERS, context.final)
    if wrapped is NEED_MORE:
        return wrapped
    position = skip_space(text, wrapped) if isinstance(wrapped, int) else start
    if wrapped is None and not context.line_start:
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
    calls = parse_pythonic_calls(text[position:end], position)
    if not calls:
        return None
    if isinstance(wrapped, int):
        end = optional_trailer(text, end, ("<|python_end|>",), context.final)
        if not isinstance(end, int):
            return end
    return Detection(end, calls, "pythonic")


def parse_pythonic_calls(source: str, offset: int | None = None) -> tuple[RawCall, ...]:
    """Calls from a Python list of calls with keyword literal arguments; () when it is not one.

    offset (where source starts in the whole text) gives every call its span; an element that is
    not a usable call comes back without a name, so it stays text beside the good ones.
    """
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError):
        return ()
    if not isinstance(tree.body, ast.List):
        return ()
    lead = len(source) - len(source.lstrip())
    lines = source.strip().splitlines(keepends=True)
    calls = []
    for element in tree.body.elts:
        span = None
        if offset is not None and len(tree.body.elts) > 1:  # one call: its span is the whole block
            span = (offset + lead + _char_offset(lines, element.lineno, element.col_offset),
                    offset + lead + _char_offset(lines, element.end_lineno, element.end_col_offset))
        calls.append(_call_from_node(element, span))
    return tuple(calls) if any(call.name for call in calls) else ()


def _call_from_node(node: ast.expr, span: tuple[int, int] | None) -> RawCall:
    if not isinstance(node, ast.Call) or node.args or not isinstance(node.func, (ast.Name, ast.Attribute)):
        return RawCall("", None, span=span)
    try:
        arguments = {keyword.arg: _literal(keyword.value) for keyword in node.keywords if keyword.arg}
    except ValueError:
        return RawCall("", None, span=span)
    name = node.func.id if isinstance(node.func, ast.Name) else ast.unparse(node.func)
    return RawCall(name, arguments, span=span)


def _json_value(value: object) -> object:
    """A literal as JSON can hold it (tuples and sets become lists); ValueError for bytes, infinities and the like."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("not a finite number")
        return value
    if isinstance(value, (list, tuple, set)):
        return [_json_value(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json_value(item) for key, item in value.items()}
    raise ValueError(f"{type(value).__name__} is not a JSON value")


def _char_offset(lines: list[str], lineno: int, col_offset: int) -> int:
    """Character offset in the joined lines of an ast position (line 1-based, column in UTF-8 bytes)."""
    before = sum(len(line) for line in lines[:lineno - 1])
    return before + len(lines[lineno - 1].encode()[:col_offset].decode(errors="ignore"))


def _literal(node: ast.expr) -> object:
    """A Python literal, also accepting JSON's true/false/null; sets and tuples become lists."""
    try:
        return _json_value(ast.literal_eval(node))
    except ValueError:
        return _json_value(_literal_with_json_names(node))


def _literal_with_json_names(node: ast.expr) -> object:
    if isinstance(node, ast.Name) and node.id in _JSON_NAMES:
        return _JSON_NAMES[node.id]
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        return [_literal_with_json_names(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        return {_literal_with_json_names(key): _literal_with_json_names(value)
                for key, value in zip(node.keys, node.values) if key is not None}
    return ast.literal_eval(node)


def parse_call_lines(body: str, offset: int) -> tuple[RawCall, ...]:
    """Olmo 3: one pythonic call per line (no list brackets); a line that is not one stays text."""
    calls, position = [], 0
    for line in body.splitlines(keepends=True):
        stripped = line.strip()
        if stripped:
            start = offset + position + line.index(stripped[0])
            found = parse_pythonic_calls(f"[{stripped}]")
            call = found[0] if len(found) == 1 else RawCall("", None)
            calls.append(RawCall(call.name, call.arguments, span=(start, start + len(stripped))))
        position += len(line)
    return tuple(calls) if any(call.name for call in calls) else ()


def detect_python_line(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Granite 3.3 / 4.0: a line that is exactly `name(key=value, …)` for one of the request's tools."""
    if not context.line_start:
        return None
    head = _CALL_LINE.match(text, start)
    if head is None or context.tools.resolve(head.group(1)) is None:
        return None
    line_end = text.find("\n", start)
    if line_end < 0:
        if not context.final:
            return NEED_MORE if len(text) - start < MAX_WEAK_CALL_CHARS else None
        line_end = len(text)
    line = text[start:line_end].rstrip()
    calls = parse_pythonic_calls(f"[{line.strip()}]")
    if len(calls) != 1 or not calls[0].name:
        return None
    return Detection(start + len(line), calls, "granite_pythonic")
