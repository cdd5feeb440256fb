"""Gemma 4 call:name{key:<|"|>value<|"|>} and FunctionGemma's <escape> strings."""
from __future__ import annotations

import json
import re

from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    find_closer,
    match_literal,
)

OPENERS = ("<|tool_call>call:", "<start_function_call>call:")
_GEMMA_NAME = re.compile(r"([\w.\-]+)\s*")
_GEMMA_CLOSER = re.compile(r"<tool_call\|>|<end_function_call>")
_GEMMA_STRING = re.compile(r'<\|"\|>(.*?)<\|"\|>|<escape>(.*?)<escape>', re.S)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_][\w\-]*)\s*:")


def detect_gemma(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Gemma call:name{key:<|"|>value<|"|>} and FunctionGemma's <escape> strings."""
    body_start = match_literal(text, start, OPENERS, context.final)
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
