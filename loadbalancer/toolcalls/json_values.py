"""JSON call values in text: where they are, and the calls they hold (with the span of each)."""
from __future__ import annotations

import json
import re
from collections.abc import Sequence

from loadbalancer.toolcalls.arguments import decode_arguments, decode_structure, split_call_object
from loadbalancer.toolcalls.scan import (
    MAX_CALL_CHARS,
    NEED_MORE,
    Detection,
    DetectorResult,
    NeedMore,
    RawCall,
    ScanContext,
    array_items,
    bracket_value_end,
    find_closer,
    optional_trailer,
    skip_space,
)


def json_value_after(text: str, position: int, context: ScanContext, cap: int = MAX_CALL_CHARS) -> tuple[int, int] | DetectorResult:
    """(start, end) of the JSON value after optional whitespace; None when none starts there."""
    position = skip_space(text, position)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] not in "{[":
        return None
    end = bracket_value_end(text, position, context, cap)
    return (position, end) if isinstance(end, int) else end


def json_calls(text: str, offset: int = 0) -> tuple[RawCall, ...]:
    """Calls from a JSON object or array of call objects (text starts at offset of the whole text).

    An array item that is not a call object comes back as a call without a name, so the parser
    keeps it as text while the good items become calls; () when nothing here is a call at all.
    """
    stripped = text.lstrip()
    if stripped.startswith("["):
        decoded = decode_structure(text, list)
        if decoded is None:
            return ()
        repaired = _needs_repair(text)
        spans = array_items(text, len(text) - len(stripped), len(text)) if len(decoded) > 1 else []
        if len(spans) != len(decoded):
            spans = [None] * len(decoded)  # one item (its span is the whole block), or not splittable
        calls = [_call_from_item(item, repaired, span, offset) for item, span in zip(decoded, spans)]
    else:
        value, repaired = decode_arguments(text)
        calls = [_call_from_item(value, repaired, None, offset)] if value is not None else []
    return tuple(calls) if any(call.name for call in calls) else ()


_VALUE_SEPARATOR = re.compile(r"\s*[,;]?\s*")


def json_value_sequence(text: str, position: int, context: ScanContext) -> list[tuple[int, int]] | NeedMore:
    """Spans of consecutive JSON values (separated by whitespace, commas or semicolons) from position."""
    spans: list[tuple[int, int]] = []
    while True:
        span = json_value_after(text, position, context)
        if span is NEED_MORE:
            return NEED_MORE
        if not isinstance(span, tuple):
            return spans
        spans.append(span)
        position = _VALUE_SEPARATOR.match(text, span[1]).end()
        if position >= len(text) and not context.final:
            return NEED_MORE


def json_values_until(text: str, position: int, context: ScanContext, closer: re.Pattern,
                      label: str) -> DetectorResult:
    """One or several JSON call values from position, then the closer (or the end of a complete text)."""
    spans = json_value_sequence(text, position, context)
    if not isinstance(spans, list) or not spans:
        return spans or None
    found = find_closer(text, spans[-1][1], closer, context.final)
    if not isinstance(found, tuple):
        return found
    calls = calls_in_values(text, spans)
    return Detection(found[1], calls, label) if calls else None


def json_value_then(text: str, position: int, context: ScanContext,
                    trailers: Sequence[str]) -> tuple[tuple[int, int], int] | DetectorResult:
    """((start, end) of the JSON value after position, end after an optional trailer)."""
    span = json_value_after(text, position, context)
    if not isinstance(span, tuple):
        return span
    end = optional_trailer(text, span[1], trailers, context.final)
    return (span, end) if isinstance(end, int) else end


def calls_in_values(text: str, spans: Sequence[tuple[int, int]]) -> tuple[RawCall, ...]:
    """The calls of several JSON values, each with the span it was written in; () when none is a call."""
    calls: list[RawCall] = []
    for begin, end in spans:
        found = json_calls(text[begin:end], begin)
        if len(spans) == 1:
            calls.extend(found)
        elif not found:
            calls.append(RawCall("", None, span=(begin, end)))
        else:
            calls.extend(call if call.span else RawCall(call.name, call.arguments, call.string_values,
                                                        call.repaired, (begin, end)) for call in found)
    return tuple(calls) if any(call.name for call in calls) else ()


def _call_from_item(item: object, repaired: bool, span: tuple[int, int] | None, offset: int) -> RawCall:
    split = split_call_object(item) if isinstance(item, dict) else None
    where = (offset + span[0], offset + span[1]) if span else None
    if split is None:
        return RawCall("", None, span=where)
    return RawCall(split[0], split[1], repaired=repaired, span=where)


def _needs_repair(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False
