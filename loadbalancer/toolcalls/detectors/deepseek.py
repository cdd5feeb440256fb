"""DeepSeek V3 / V3.1 tool-call tokens and V3.2 DSML invokes."""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.anthropic_xml import named_invokes
from loadbalancer.toolcalls.scan import (
    Detection,
    DetectorResult,
    RawCall,
    ScanContext,
    find_closer,
    match_literal,
)

_BAR, _LOW = "[｜|]", "[▁_]"
_DEEPSEEK_OPENERS = tuple(f"<{bar}tool{low}calls{low}begin{bar}>" for bar in "｜|" for low in "▁_")
_DEEPSEEK_CLOSER = re.compile(f"<{_BAR}tool{_LOW}calls{_LOW}end{_BAR}>")
_DEEPSEEK_CALL = re.compile(
    f"<{_BAR}tool{_LOW}call{_LOW}begin{_BAR}>(.*?)<{_BAR}tool{_LOW}sep{_BAR}>(.*?)(?:<{_BAR}tool{_LOW}call{_LOW}end{_BAR}>|\\Z)",
    re.S)
_FENCED_ARGUMENTS = re.compile(r"\A\s*([^\n]+?)\s*\n\s*```(?:json)?\s*(.*?)\s*(?:```\s*)?\Z", re.S)
_DSML_OPENERS = ("<｜DSML｜function_calls>", "<|DSML|function_calls>")
_DSML_CLOSER = re.compile(r"</[｜|]DSML[｜|]function_calls>")
_DSML_INVOKE = re.compile(r'<｜DSML｜invoke name="([^"]+)"\s*>')
_DSML_PARAMETER = re.compile(r'<｜DSML｜parameter name="([^"]+)"(?:\s+string="(?:true|false)")?\s*>')


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


def detect_dsml(text: str, start: int, context: ScanContext) -> DetectorResult:
    """DeepSeek V3.2 DSML invokes (also with ASCII bars)."""
    body_start = match_literal(text, start, _DSML_OPENERS, context.final)
    if not isinstance(body_start, int):
        return body_start
    closer = find_closer(text, body_start, _DSML_CLOSER, context.final)
    if not isinstance(closer, tuple):
        return closer
    body = text[body_start:closer[0]].replace("|DSML|", "｜DSML｜")
    calls = named_invokes(body, _DSML_INVOKE, _DSML_PARAMETER, "</｜DSML｜", context)
    return Detection(closer[1], calls, "deepseek_dsml") if calls else None
