"""Shared pieces of the text tool-call detectors: results, opener and closer matching, bracket scanning."""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from loadbalancer.toolcalls.arguments import ToolIndex, decode_arguments, decode_structure, split_call_object

MAX_CALL_CHARS = 1_000_000       # a marker-delimited call may be large (write_file content)
MAX_WEAK_CALL_CHARS = 64_000     # formats without special markers give up sooner, so prose is not held


class NeedMore:
    """A detector's answer when the text so far could still become a call."""

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = NeedMore()


@dataclass(frozen=True)
class RawCall:
    """A call as written: a name and undecoded arguments (string_values: every value is a string)."""

    name: str
    arguments: object
    string_values: bool = False
    repaired: bool = False      # the text around the arguments already needed repair


@dataclass(frozen=True)
class Detection:
    """A detector's match: the text from the start position to end is one block of calls."""

    end: int
    calls: tuple[RawCall, ...]
    format: str


@dataclass(frozen=True)
class ScanContext:
    """What a detector may know besides the text: the tools, whether the text is complete, where it stands."""

    tools: ToolIndex
    final: bool
    line_start: bool
    in_fence: bool


DetectorResult = Detection | NeedMore | None

_JSON_TOKEN = re.compile(r'[{}\[\]"]')
_JSON_STRING_END = re.compile(r'["\\]')
_PYTHON_TOKEN = re.compile(r"""[{}\[\]()"']""")
_PYTHON_STRING_END = re.compile(r"['\\]")
_OPENING = {"{": "}", "[": "]", "(": ")"}


def match_literal(text: str, start: int, literals: Sequence[str], final: bool) -> int | NeedMore | None:
    """End of the first literal written at start; NEED_MORE when the text ends inside one."""
    waiting = False
    for literal in literals:
        if text.startswith(literal, start):
            return start + len(literal)
        rest = len(text) - start
        if not final and rest < len(literal) and literal.startswith(text[start:]):
            waiting = True
    return NEED_MORE if waiting else None


def find_closer(text: str, position: int, closer: re.Pattern, final: bool) -> tuple[int, int] | NeedMore:
    """(start, end) of the closing marker; at the end of a complete text, the end stands in for it."""
    found = closer.search(text, position)
    if found:
        return found.start(), found.end()
    return (len(text), len(text)) if final else NEED_MORE


def scan_brackets(text: str, start: int, python: bool = False) -> int | None:
    """End of the balanced JSON (or Python literal) value opening at start; None when unbalanced."""
    token = _PYTHON_TOKEN if python else _JSON_TOKEN
    stack: list[str] = []
    position = start
    while True:
        found = token.search(text, position)
        if found is None:
            return None
        char = found.group()
        position = found.end()
        if char in "\"'":
            position = _skip_string(text, position, char)
            if position < 0:
                return None
        elif char in _OPENING:
            stack.append(_OPENING[char])
        elif not stack or stack.pop() != char:
            return None
        if not stack:
            return position


def _skip_string(text: str, position: int, quote: str) -> int:
    """Position after the closing quote, or -1 when the string is not closed."""
    string_end = _JSON_STRING_END if quote == '"' else _PYTHON_STRING_END
    while True:
        found = string_end.search(text, position)
        if found is None:
            return -1
        if found.group() == "\\":
            position = found.end() + 1
            continue
        return found.end()


def bracket_value_end(text: str, start: int, context: ScanContext, cap: int, python: bool = False) -> int | NeedMore | None:
    """End of a bracketed value; at the end of a complete text, the end; None past the size cap."""
    end = scan_brackets(text, start, python)
    if end is not None and end - start <= cap:
        return end
    if end is None and len(text) - start <= cap:
        return len(text) if context.final else NEED_MORE
    return None


def split_tagged_values(body: str, opener: re.Pattern, closer: str, known: frozenset[str] | None) -> dict[str, str]:
    """Values of tags such as <parameter=NAME>…</parameter>, robust to the closing tag inside a value.

    A value runs to the next opener of a known property and loses its last closing tag (closer may
    name the property as {name}), so a literal closing tag inside the value survives.
    """
    openers = [found for found in opener.finditer(body) if known is None or found.group(1) in known]
    values: dict[str, str] = {}
    for index, found in enumerate(openers):
        value_end = openers[index + 1].start() if index + 1 < len(openers) else len(body)
        value = body[found.end():value_end]
        closing = value.rfind(closer.format(name=found.group(1)))
        if closing >= 0:
            value = value[:closing]
        values[found.group(1)] = trim_one_newline(value)
    return values


def trim_one_newline(value: str) -> str:
    """Drop the newline pair that some XML formats put around a value (only when it opens with one)."""
    for newline in ("\r\n", "\n"):
        if value.startswith(newline):
            value = value[len(newline):]
            return value[:-len(newline)] if value.endswith(newline) else value
    return value


def known_properties(context: ScanContext, tool_name: str) -> frozenset[str] | None:
    """Property names of a tool's schema, or None when the schema lists none (any name is accepted)."""
    exact = context.tools.resolve(tool_name)
    schema = context.tools.schemas.get(exact, {}) if exact else {}
    properties = schema.get("properties")
    return frozenset(properties) if isinstance(properties, dict) and properties else None


def optional_trailer(text: str, end: int, trailers: Sequence[str], final: bool) -> int | NeedMore:
    """End after an optional closing marker (after whitespace); NEED_MORE while one may still be arriving."""
    position = end
    while position < len(text) and text[position].isspace():
        position += 1
    for trailer in trailers:
        if text.startswith(trailer, position):
            return position + len(trailer)
    if not final and any(trailer.startswith(text[position:position + len(trailer)]) for trailer in trailers):
        return NEED_MORE
    return end


_WHITESPACE = re.compile(r"\s*")


def skip_space(text: str, position: int) -> int:
    """The first position at or after `position` that is not whitespace."""
    return _WHITESPACE.match(text, position).end()


def json_value_after(text: str, position: int, context: ScanContext, cap: int = MAX_CALL_CHARS) -> tuple[int, int] | DetectorResult:
    """(start, end) of the JSON value after optional whitespace; None when none starts there."""
    position = skip_space(text, position)
    if position >= len(text):
        return None if context.final else NEED_MORE
    if text[position] not in "{[":
        return None
    end = bracket_value_end(text, position, context, cap)
    return (position, end) if isinstance(end, int) else end


def json_calls(text: str) -> tuple[RawCall, ...]:
    """Calls from a JSON object or array of call objects; () when any item is not a call."""
    if text.lstrip().startswith("["):
        decoded = decode_structure(text, list)
        items = [item for item in decoded or () if isinstance(item, dict)]
        repaired = decoded is not None and _needs_repair(text)
    else:
        value, repaired = decode_arguments(text)
        items = [value] if value is not None else []
    calls = []
    for item in items:
        split = split_call_object(item)
        if split is None:
            return ()
        calls.append(RawCall(split[0], split[1], repaired=repaired))
    return tuple(calls)


def _needs_repair(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return True
    return False
