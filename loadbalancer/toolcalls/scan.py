"""Shared pieces of the text tool-call detectors: results, opener and closer matching, bracket scanning
(JSON values and the calls in them: json_values.py).

A detector looks at one position of the text and answers a Detection (a block of calls), a Markup
(protocol framing to drop, or the opening of a reasoning section), None (not its format) or
NEED_MORE (the text so far could still become one). An answer other than NEED_MORE never changes
when more text arrives, which is what makes the streaming parser equal the complete one.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from loadbalancer.toolcalls.arguments import ToolIndex

MAX_CALL_CHARS = 1_000_000       # a marker-delimited call may be large (write_file content)
MAX_WEAK_CALL_CHARS = 64_000     # formats without special markers give up sooner, so prose is not held


class NeedMore:
    """A detector's answer when the text so far could still become a call."""

    def __repr__(self) -> str:
        return "NEED_MORE"


NEED_MORE = NeedMore()


class RawCall(NamedTuple):
    """A call as written: a name and undecoded arguments (string_values: every value is a string)."""

    name: str
    arguments: object
    string_values: bool = False
    repaired: bool = False      # the text around the arguments already needed repair
    span: tuple[int, int] | None = None   # where this call is written, when a block holds several


class Detection(NamedTuple):
    """A detector's match: the text from the start position to end is one block of calls."""

    end: int
    calls: tuple[RawCall, ...]
    format: str


class Markup(NamedTuple):
    """Protocol markup that is not a call: framing to drop, or where a reasoning section opens."""

    end: int
    reasoning_closers: tuple[str, ...] = ()   # non-empty: reasoning runs until the first of these
    opens_wrapper: str | None = None          # e.g. "answer": its closing tag is framing too
    closes_wrapper: str | None = None
    new_turn: bool = False                    # what follows starts afresh (after a reasoning closer)


class ScanContext(NamedTuple):
    """What a detector may know besides the text: the tools, whether the text is complete, where it stands."""

    tools: ToolIndex
    final: bool
    line_start: bool
    turn_start: bool = False                  # nothing but whitespace since the start or the last reasoning
    wrappers: frozenset[str] = frozenset()    # wrapper tags opened and not yet closed
    prose_before: bool = False                # prose since the start, the last reasoning or the last call


DetectorResult = Detection | Markup | NeedMore | None

_JSON_TOKEN = re.compile(r'[{}\[\]"]')
_JSON_STRING_END = re.compile(r'["\\]')
_PYTHON_TOKEN = re.compile(r"""[{}\[\]()"']""")
_PYTHON_STRING_END = re.compile(r"['\\]")
_OPENING = {"{": "}", "[": "]", "(": ")"}
_WHITESPACE = re.compile(r"\s*")
_ITEM_END = re.compile(r"[,\]]")


def match_literal(text: str, start: int, literals: Sequence[str] | Literals, final: bool) -> int | NeedMore | None:
    """End of the first literal written at start; NEED_MORE when the text ends inside one."""
    if isinstance(literals, Literals):
        return literals.match(text, start, final)
    waiting = False
    for literal in literals:
        if text.startswith(literal, start):
            return start + len(literal)
        rest = len(text) - start
        if not final and rest < len(literal) and literal.startswith(text[start:]):
            waiting = True
    return NEED_MORE if waiting else None


class Literals:
    """Literal markers looked up by their first two characters (cheaper than trying each in turn)."""

    def __init__(self, literals: Sequence[str]) -> None:
        self.literals = tuple(literals)
        self._by_prefix: dict[str, list[str]] = {}
        for literal in self.literals:
            self._by_prefix.setdefault(literal[:2], []).append(literal)
        self._prefixes = {literal[:size] for literal in self.literals for size in range(1, len(literal))}
        self._longest = max(map(len, self.literals))

    def match(self, text: str, start: int, final: bool) -> int | NeedMore | None:
        """End of the first literal written at start; NEED_MORE when the text ends inside one."""
        for literal in self._by_prefix.get(text[start:start + 2], ()):
            if text.startswith(literal, start):
                return start + len(literal)
        if not final and len(text) - start < self._longest and text[start:] in self._prefixes:
            return NEED_MORE
        return None


def find_closer(text: str, position: int, closer: re.Pattern, final: bool) -> tuple[int, int] | NeedMore:
    """(start, end) of the closing marker; at the end of a complete text, the end stands in for it."""
    found = closer.search(text, position)
    if found:
        return found.start(), found.end()
    return (len(text), len(text)) if final else NEED_MORE


def delimited(text: str, start: int, context: ScanContext, openers: Sequence[str] | Literals,
              closer: re.Pattern) -> tuple[int, int, int] | NeedMore | None:
    """(body start, body end, block end) of a block opened by one of the literals and ended by closer."""
    body_start = match_literal(text, start, openers, context.final)
    if not isinstance(body_start, int):
        return body_start
    found = find_closer(text, body_start, closer, context.final)
    if not isinstance(found, tuple):
        return found
    return body_start, found[0], found[1]


def first_delimited(text: str, start: int, context: ScanContext,
                    closers: dict[str, re.Pattern]) -> tuple[str, tuple[int, int, int]] | NeedMore | None:
    """(opener, (body start, body end, block end)) of the first opener of the table written at start."""
    for opener, closer in closers.items():
        block = delimited(text, start, context, (opener,), closer)
        if block is not None:
            return block if block is NEED_MORE else (opener, block)
    return None


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


def bracket_value_end(text: str, start: int, context: ScanContext, cap: int,
                      python: bool = False) -> int | NeedMore | None:
    """End of a bracketed value; at the end of a complete text, the end; None past the size cap."""
    end = scan_brackets(text, start, python)
    if end is not None and end - start <= cap:
        return end
    if end is None and len(text) - start <= cap:
        return len(text) if context.final else NEED_MORE
    return None


def array_items(text: str, start: int, end: int, python: bool = False) -> list[tuple[int, int]]:
    """(start, end) of each top-level item of the array text[start:end]; [] when it cannot be split."""
    items, position = [], skip_space(text, start + 1)
    while position < end and text[position] != "]":
        if text[position] in "{[(":
            item_end = scan_brackets(text, position, python)
        else:
            stop = _ITEM_END.search(text, position, end)
            item_end = stop.start() if stop else None
        if item_end is None or item_end > end:
            return []
        items.append((position, item_end))
        position = skip_space(text, item_end)
        if text.startswith(",", position):
            position = skip_space(text, position + 1)
    return items


def split_tagged_values(body: str, opener: re.Pattern, closer: str, known: frozenset[str] | None) -> dict[str, str]:
    """Values of tags such as <parameter=NAME>…</parameter>, robust to the closing tag inside a value.

    A value runs to the next opener and loses its last closing tag (closer may name the property as
    {name}), so a literal closing tag inside the value survives. An opener of a name the schema does
    not declare counts only where a value was just closed, so it is kept as an argument of its own
    but a value that merely quotes such a tag is not cut.
    """
    openers = []
    for found in opener.finditer(body):
        name = found.group(1)
        if known is None or name in known:
            openers.append(found)
            continue
        before = body[:found.start()].rstrip()
        previous = openers[-1] if openers else None
        if not before or previous is not None and before.endswith(closer.format(name=previous.group(1))):
            openers.append(found)
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
    position = skip_space(text, end)
    for trailer in trailers:
        if text.startswith(trailer, position):
            return position + len(trailer)
    if not final and any(trailer.startswith(text[position:position + len(trailer)]) for trailer in trailers):
        return NEED_MORE
    return end


def skip_space(text: str, position: int) -> int:
    """The first position at or after `position` that is not whitespace."""
    return _WHITESPACE.match(text, position).end()


def shifted_detection(detection: Detection, offset: int) -> Detection:
    """The same detection in a buffer that lost (or gained) offset characters at its start."""
    calls = tuple(call if call.span is None else
                  RawCall(call.name, call.arguments, call.string_values, call.repaired,
                             (call.span[0] + offset, call.span[1] + offset)) for call in detection.calls)
    return Detection(detection.end + offset, calls, detection.format)


def first_of(text: str, literals: Sequence[str], start: int, end: int | None = None) -> tuple[int, int] | None:
    """(start, end) of the earliest occurrence of any literal starting in text[start:end]."""
    best: tuple[int, int] | None = None
    for literal in literals:
        found = text.find(literal, start) if end is None else text.find(literal, start, end + len(literal))
        if found >= 0 and (best is None or found < best[0]):
            best = (found, found + len(literal))
    return best


def partial_suffix(text: str, literals: Sequence[str]) -> int:
    """Length of the longest end of text that is the beginning of one of the literals."""
    longest = 0
    for literal in literals:
        for size in range(min(len(literal) - 1, len(text)), longest, -1):
            if text.endswith(literal[:size]):
                longest = size
                break
    return longest
