"""Which calls of a detected block become tool calls, and what stays text.

Partial acceptance: a call whose name is not one of the request's tools, or whose arguments are
no object, stays text (the text it was written as) while the good calls of the same block become
calls. A call is never dropped silently. When nothing in a block is usable, the parser keeps the
whole block as text.
"""
from __future__ import annotations

from loadbalancer.toolcalls.arguments import ToolIndex, resolve_arguments
from loadbalancer.toolcalls.scan import Detection
from loadbalancer.toolcalls.segments import Segment, TextSegment, ToolCall


def accept_detection(text: str, start: int, detection: Detection, tools: ToolIndex, block: int) -> list[Segment]:
    """Segments for the block written at text[start:detection.end]: a ToolCall per usable call, the
    text of each unusable one."""
    block_markup = text[start:detection.end]
    single = len(detection.calls) == 1
    segments: list[Segment] = []
    for raw in detection.calls:
        name = tools.resolve(raw.name) if raw.name else None
        arguments = resolve_arguments(raw.arguments, tools.schemas[name], raw.string_values) if name else None
        own_text = block_markup if single or raw.span is None else text[raw.span[0]:raw.span[1]]
        if arguments is None:
            if raw.span is None and not single:
                return []  # cannot tell which text is this call's: the whole block stays text
            segments.append(TextSegment(own_text))
            continue
        segments.append(ToolCall(name, arguments.values, detection.format, arguments.repaired or raw.repaired,
                                 arguments.missing, own_text, block))
    calls = [segment for segment in segments if isinstance(segment, ToolCall)]
    if calls and all(call.missing for call in calls) and len(calls) == len(segments):
        # every call would be rejected: the block comes back as it was written, not in pieces
        segments = [_with_markup(call, block_markup if index == 0 else "") for index, call in enumerate(calls)]
    return segments


def _with_markup(call: ToolCall, markup: str) -> ToolCall:
    return ToolCall(call.name, call.input, call.format, call.repaired, call.missing, markup, call.block)
