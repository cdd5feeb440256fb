"""Pythonic calls: [name(key=value), …] (Llama 3.2, ToolACE) and Llama 4's <|python_start|> wrapper."""
from __future__ import annotations

import ast
import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    MAX_WEAK_CALL_CHARS,
    NEED_MORE,
    RawCall,
    ScanContext,
    bracket_value_end,
    match_literal,
    optional_trailer,
    skip_space,
)

_PYTHONIC_NAME = re.compile(r"\[\s*([A-Za-z_][\w.\-]*)\s*\(")
_PYTHONIC_PARTIAL = re.compile(r"\[\s*[A-Za-z_][\w.\-]*\s*\Z|\[\s*\Z")


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
