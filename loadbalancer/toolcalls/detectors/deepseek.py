"""DeepSeek tool-call tokens (V3, V3.1, and StepFun Step-3 which borrows them) and DSML invokes (V3.2, V4, GigaChat GCML).

The bars are U+FF5C and the separator U+2581 (Step-3 writes ASCII underscores); ASCII look-alikes
are accepted too. A begin token without any per-call marker is not a call.
"""
from __future__ import annotations

import re

from loadbalancer.toolcalls.detectors.anthropic_xml import named_invokes
from loadbalancer.toolcalls.scan import Detection, DetectorResult, Literals, RawCall, ScanContext, delimited

_BAR, _LOW = "[｜|]", "[▁_]"
DEEPSEEK_OPENERS = tuple(f"<{bar}tool{low}calls{low}begin{bar}>" for bar in "｜|" for low in "▁_")
_DEEPSEEK_CLOSER = re.compile(f"<{_BAR}tool{_LOW}calls{_LOW}end{_BAR}>")
_DEEPSEEK_CALL = re.compile(
    f"<{_BAR}tool{_LOW}call{_LOW}begin{_BAR}>(.*?)(?:<{_BAR}tool{_LOW}call{_LOW}end{_BAR}>|(?=<{_BAR}tool{_LOW}call{_LOW}begin{_BAR}>)|\\Z)",
    re.S)
_SEPARATOR = re.compile(f"<{_BAR}tool{_LOW}sep{_BAR}>")
_FENCED_ARGUMENTS = re.compile(r"\A\s*([^\n]+?)\s*\n\s*```(?:json)?\s*(.*?)\s*(?:```\s*)?\Z", re.S)
_STEPTML_INVOKE = "<steptml:invoke"

DSML_OPENERS = tuple(f"<{bar}{kind}{bar}{wrapper}>" for kind in ("DSML", "GCML") for bar in "｜|"
                     for wrapper in ("function_calls", "tool_calls"))
_DSML_LITERALS = Literals(DSML_OPENERS)
_DSML_CLOSER = re.compile(r"</[｜|](?:DSML|GCML)[｜|](?:function_calls|tool_calls)>")

STEPTML_OPENERS = ("<steptml:toolcall>",)
_STEPTML_CLOSER = re.compile(r"</steptml:toolcall>")


def detect_deepseek(text: str, start: int, context: ScanContext) -> DetectorResult:
    """V3 (function<sep>name + fenced JSON), V3.1 (name<sep>JSON), Step-3 (function<sep><steptml:invoke …>)."""
    block = delimited(text, start, context, DEEPSEEK_OPENERS, _DEEPSEEK_CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    calls: list[RawCall] = []
    label = "deepseek_v31"
    for found in _DEEPSEEK_CALL.finditer(text, body_start, body_end):
        body = found.group(1)
        if body.lstrip().startswith(_STEPTML_INVOKE):  # Step-3 may leave out function<sep>
            calls.extend(named_invokes(body, "steptml:", context, found.start(1)))
            label = "step3"
            continue
        separator = _SEPARATOR.search(body)
        if separator is None:
            continue
        head, arguments = body[:separator.start()].strip(), body[separator.end():]
        if head == "function" and arguments.lstrip().startswith(_STEPTML_INVOKE):
            calls.extend(named_invokes(arguments, "steptml:", context, found.start(1) + separator.end()))
            label = "step3"
            continue
        if head == "function":
            fenced = _FENCED_ARGUMENTS.match(arguments)
            if fenced is None:
                return None
            head, arguments, label = fenced.group(1), fenced.group(2), "deepseek_v3"
        calls.append(RawCall(head, arguments, span=found.span()))
    return Detection(end, tuple(calls), label) if calls else None


def detect_dsml(text: str, start: int, context: ScanContext) -> DetectorResult:
    """DeepSeek V3.2 / V4 DSML invokes (function_calls or tool_calls wrapper) and GigaChat 3.5 GCML."""
    block = delimited(text, start, context, _DSML_LITERALS, _DSML_CLOSER)
    if not isinstance(block, tuple):
        return block
    body_start, body_end, end = block
    kind = "GCML" if "GCML" in text[start:start + 8] else "DSML"
    body = text[body_start:body_end].replace(f"|{kind}|", f"｜{kind}｜")  # same length: spans stay right
    calls = named_invokes(body, f"｜{kind}｜", context, body_start)
    return Detection(end, calls, "deepseek_dsml") if calls else None


def detect_steptml(text: str, start: int, context: ScanContext) -> DetectorResult:
    """Step DeepResearch: <steptml:toolcall> around steptml invokes."""
    block = delimited(text, start, context, STEPTML_OPENERS, _STEPTML_CLOSER)
    if not isinstance(block, tuple):
        return block
    calls = named_invokes(text[block[0]:block[1]], "steptml:", context, block[0])
    return Detection(block[2], calls, "step3") if calls else None
